"""The per-user task counter (`task_count`, kept by triggers from migration 0004): after
every way tasks come and go over HTTP, the sum of a user's counter rows equals the
number of their tasks."""

import asyncio
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import func, insert, select, text

from app.tasks.models import Task, TaskCount
from tests.conftest import UserFactory, UserHandle, alembic_config, is_postgres
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import PROJECTS, TASKS, create_task, list_tasks

SHARDS = range(16)


async def counter_and_tasks(app: FastAPI, user: UserHandle) -> tuple[int, int]:
    """(sum of the user's counter rows, number of the user's tasks), read directly."""
    user_id = uuid.UUID(user.id)
    async with app.state.engine.connect() as conn:
        counted = await conn.scalar(
            select(func.coalesce(func.sum(TaskCount.n), 0)).where(TaskCount.user_id == user_id)
        )
        tasks = await conn.scalar(
            select(func.count()).select_from(Task).where(Task.user_id == user_id)
        )
    return int(counted), int(tasks)


async def counter_rows(app: FastAPI, user: UserHandle) -> list[tuple[int, int]]:
    """The user's (shard, n) rows."""
    async with app.state.engine.connect() as conn:
        result = await conn.execute(
            select(TaskCount.shard, TaskCount.n)
            .where(TaskCount.user_id == uuid.UUID(user.id))
            .order_by(TaskCount.shard)
        )
        return [(shard, n) for shard, n in result.all()]


async def delete_task(client: httpx.AsyncClient, user: UserHandle, task_id: str) -> None:
    response = await client.delete(f"{TASKS}/{task_id}", headers=user.headers)
    assert response.status_code == 204, response.text


class TestTaskCount:
    async def test_new_user_has_no_counter_rows(self, app: FastAPI, user: UserHandle) -> None:
        assert await counter_rows(app, user) == []
        assert await counter_and_tasks(app, user) == (0, 0)

    async def test_counts_created_tasks(
        self, app: FastAPI, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        for i in range(5):
            await task_factory(title=f"t{i}", tags=["x"])
        assert await counter_and_tasks(app, user) == (5, 5)
        assert all(shard in SHARDS for shard, _ in await counter_rows(app, user))

    async def test_counts_deleted_tasks(
        self, client, app: FastAPI, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        tasks = [await task_factory(title=f"t{i}") for i in range(5)]
        for task in tasks[:2]:
            await delete_task(client, user, task["id"])
        assert await counter_and_tasks(app, user) == (3, 3)
        for task in tasks[2:]:
            await delete_task(client, user, task["id"])
        assert await counter_and_tasks(app, user) == (0, 0)

    async def test_a_failed_delete_changes_nothing(
        self, client, app: FastAPI, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        await delete_task(client, user, task["id"])
        again = await client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
        assert again.status_code == 404
        assert await counter_and_tasks(app, user) == (0, 0)

    async def test_changes_keep_the_count(
        self, client, app: FastAPI, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        patched = await client.patch(
            f"{TASKS}/{task['id']}", json={"title": "v2", "completed": True}, headers=user.headers
        )
        assert patched.status_code == 200, patched.text
        replaced = await client.put(
            f"{TASKS}/{task['id']}", json={"title": "v3"}, headers=user.headers
        )
        assert replaced.status_code == 200, replaced.text
        assert await counter_and_tasks(app, user) == (1, 1)

    async def test_idempotent_retry_is_counted_once(
        self, client, app: FastAPI, user: UserHandle
    ) -> None:
        headers = {**user.headers, "Idempotency-Key": "count-once"}
        for _ in range(3):
            response = await client.post(TASKS, json={"title": "Pay rent"}, headers=headers)
            assert response.status_code == 201, response.text
        assert await counter_and_tasks(app, user) == (1, 1)

    async def test_users_are_counted_apart(
        self, client, app: FastAPI, user_factory: UserFactory
    ) -> None:
        alice, bob = await user_factory(), await user_factory()
        for _ in range(3):
            await create_task(client, alice)
        bobs = [await create_task(client, bob) for _ in range(2)]
        await delete_task(client, bob, bobs[0]["id"])
        assert await counter_and_tasks(app, alice) == (3, 3)
        assert await counter_and_tasks(app, bob) == (1, 1)

    @pytest.mark.parametrize(
        ("params", "left"),
        [({}, 4), ({"delete_tasks": "true"}, 1)],
        ids=["tasks-kept", "tasks-deleted"],
    )
    async def test_project_deletion(
        self,
        client,
        app: FastAPI,
        user: UserHandle,
        project_factory,
        task_factory,
        params: dict,
        left: int,
    ) -> None:
        """Deleting a project keeps its tasks counted, or uncounts them with them."""
        project = await project_factory()
        for _ in range(3):
            await task_factory(project_id=project["id"])
        await task_factory()
        response = await client.delete(
            f"{PROJECTS}/{project['id']}", params=params, headers=user.headers
        )
        assert response.status_code == 204
        assert await counter_and_tasks(app, user) == (left, left)
        assert (await list_tasks(client, user))["total"] == left

    async def test_account_deletion_removes_the_counter(
        self, client, app: FastAPI, user_factory: UserFactory
    ) -> None:
        leaving, staying = await user_factory(), await user_factory()
        for _ in range(3):
            await create_task(client, leaving)
            await create_task(client, staying)
        deleted = await client.request(
            "DELETE",
            "/api/v1/auth/me",
            headers=leaving.headers,
            json={"password": leaving.password},
        )
        assert deleted.status_code == 204, deleted.text
        assert await counter_rows(app, leaving) == []
        assert await counter_and_tasks(app, leaving) == (0, 0)
        assert await counter_and_tasks(app, staying) == (3, 3)

    async def test_concurrent_creates_and_deletes(
        self, client, app: FastAPI, user: UserHandle
    ) -> None:
        # On PostgreSQL the requests run on several connections, i.e. several shards.
        responses = await asyncio.gather(
            *(client.post(TASKS, json={"title": f"c{i}"}, headers=user.headers) for i in range(40))
        )
        assert [r.status_code for r in responses] == [201] * 40
        assert await counter_and_tasks(app, user) == (40, 40)
        doomed = [r.json()["id"] for r in responses[:15]]
        mixed = await asyncio.gather(
            *(client.delete(f"{TASKS}/{task_id}", headers=user.headers) for task_id in doomed),
            *(client.post(TASKS, json={"title": f"d{i}"}, headers=user.headers) for i in range(5)),
        )
        assert sorted(r.status_code for r in mixed) == [201] * 5 + [204] * 15
        assert await counter_and_tasks(app, user) == (30, 30)
        rows = await counter_rows(app, user)
        assert all(shard in SHARDS for shard, _ in rows)
        if not is_postgres():  # one writer: everything in shard 0
            assert rows == [(0, 30)]


class TestMigration:
    """0004 counts the tasks that exist when it runs, and reverses cleanly (SQLite file;
    the PostgreSQL schema is migrated by the test session itself)."""

    def test_backfills_and_reverses(self, tmp_path: Path) -> None:
        path = tmp_path / "backfill.db"
        config = alembic_config(f"sqlite+aiosqlite:///{path}")
        command.upgrade(config, "0003")
        users = [uuid.uuid4().hex for _ in range(3)]
        with sqlite3.connect(path) as db:
            db.executemany(
                "INSERT INTO user_account (id, email, hashed_password, created_at, updated_at) "
                "VALUES (?, ?, 'x', '2026-01-01', '2026-01-01')",
                [(u, f"{u}@example.com") for u in users],
            )
            db.executemany(
                "INSERT INTO task (id, user_id, title, title_key, search_text, completed, "
                "priority, created_at, updated_at, version) "
                "VALUES (?, ?, 't', 't', 't', 0, 1, '2026-01-01', '2026-01-01', 1)",
                [(uuid.uuid4().hex, users[i % 2]) for i in range(5)],
            )
        db.close()
        expected = {users[0]: 3, users[1]: 2}
        command.upgrade(config, "head")
        assert _counters(path) == expected
        command.downgrade(config, "0003")
        assert _objects(path) == set()
        command.upgrade(config, "head")
        assert _counters(path) == expected
        assert _objects(path) == {"task_count", "task_count_insert", "task_count_delete"}


def _counters(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT user_id, sum(n) FROM task_count GROUP BY user_id").fetchall()
    db.close()
    return dict(rows)


def _objects(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'task_count%'")
        names = {name for (name,) in rows}
    db.close()
    return names


@pytest.mark.skipif(not is_postgres(), reason="the shards are PostgreSQL's")
class TestShards:
    async def test_each_connection_writes_the_shard_of_its_backend(
        self, app: FastAPI, user: UserHandle
    ) -> None:
        user_id = uuid.UUID(user.id)
        pids = []
        # Both connections held at once, so they are two backends (the pool would
        # otherwise hand the same one back); each commits before the other writes.
        async with app.state.engine.connect() as first, app.state.engine.connect() as second:
            for conn in (first, second):
                pids.append(await conn.scalar(select(func.pg_backend_pid())))
                await conn.execute(
                    insert(Task).values(
                        id=uuid.uuid4(), user_id=user_id, title="t", title_key="t",
                        search_text="t", completed=False, priority=1, version=1,
                        created_at=func.now(), updated_at=func.now(),
                    )
                )  # fmt: skip
                await conn.commit()
        assert pids[0] != pids[1]
        rows = await counter_rows(app, user)
        assert {shard for shard, _ in rows} == {pid % 16 for pid in pids}
        assert sum(n for _, n in rows) == 2

    async def test_truncating_tasks_empties_the_counters(
        self, app: FastAPI, user: UserHandle, task_factory: TaskFactory, client: httpx.AsyncClient
    ) -> None:
        for _ in range(3):
            await task_factory()
        async with app.state.engine.begin() as conn:
            await conn.execute(text("TRUNCATE task CASCADE"))
        assert await counter_and_tasks(app, user) == (0, 0)
        assert (await list_tasks(client, user))["total"] == 0
