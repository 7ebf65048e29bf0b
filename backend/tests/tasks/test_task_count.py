"""The per-user task counter (`task_count`, kept by triggers from migration 0004): after
every way tasks come and go over HTTP, the sum of a user's counter rows equals the
number of their tasks."""

import asyncio
import uuid

import httpx
import pytest
from alembic import command
from fastapi import FastAPI

from app.core.migrations import alembic_config
from tests.conftest import POOLER, UserFactory, UserHandle, connect
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import PROJECTS, TASKS, create_task, list_tasks
from tests.tasks.test_migrations import _sibling_database

SHARDS = range(16)


async def counter_and_tasks(app: FastAPI, user: UserHandle) -> tuple[int, int]:
    """(sum of the user's counter rows, number of the user's tasks), read directly."""
    user_id = uuid.UUID(user.id)
    async with app.state.database.connection() as conn:
        counted = await conn.fetchval(
            "SELECT coalesce(sum(n), 0) FROM task_count WHERE user_id = $1", user_id
        )
        tasks = await conn.fetchval("SELECT count(*) FROM task WHERE user_id = $1", user_id)
    return int(counted), int(tasks)


async def counter_rows(app: FastAPI, user: UserHandle) -> list[tuple[int, int]]:
    """The user's (shard, n) rows."""
    async with app.state.database.connection() as conn:
        rows = await conn.fetch(
            "SELECT shard, n FROM task_count WHERE user_id = $1 ORDER BY shard",
            uuid.UUID(user.id),
        )
    return [(row["shard"], row["n"]) for row in rows]


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
        # The requests run on several connections, i.e. several shards.
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


_INSERT_TASK = """
INSERT INTO task (id, user_id, title, title_key, search_text, completed, priority,
                  created_at, updated_at, version, position)
VALUES ($1, $2, 't', 't', 't', false, 1, now(), now(), 1, 'a0')
"""
# The same before migration 0009 (no position yet).
_INSERT_TASK_0003 = """
INSERT INTO task (id, user_id, title, title_key, search_text, completed, priority,
                  created_at, updated_at, version)
VALUES ($1, $2, 't', 't', 't', false, 1, now(), now(), 1)
"""


class TestMigration:
    """0004 counts the tasks that exist when it runs, and reverses cleanly (on a
    database of its own beside the test database)."""

    def test_backfills_and_reverses(self, migrated_url: str) -> None:
        name = f"todo_backfill_{uuid.uuid4().hex[:8]}"
        url = _sibling_database(migrated_url, name)
        try:
            config = alembic_config(url)
            command.upgrade(config, "0003")
            users = [uuid.uuid4() for _ in range(3)]
            asyncio.run(_seed(url, users))
            expected = {users[0]: 3, users[1]: 2}
            command.upgrade(config, "head")
            assert asyncio.run(_counters(url)) == expected
            command.downgrade(config, "0003")
            assert asyncio.run(_objects(url)) == set()
            command.upgrade(config, "head")
            assert asyncio.run(_counters(url)) == expected
            assert asyncio.run(_objects(url)) == {
                "task_count",
                "task_count_insert",
                "task_count_delete",
                "task_count_truncate",
                "task_count_trash",
            }
        finally:
            _sibling_database(migrated_url, name, drop=True)


async def _seed(url: str, users: list[uuid.UUID]) -> None:
    conn = await connect(url)
    try:
        await conn.executemany(
            "INSERT INTO user_account (id, email, hashed_password, created_at, updated_at) "
            "VALUES ($1, $2, 'x', now(), now())",
            [(u, f"{u}@example.com") for u in users],
        )
        await conn.executemany(_INSERT_TASK_0003, [(uuid.uuid4(), users[i % 2]) for i in range(5)])
    finally:
        await conn.close()


async def _counters(url: str) -> dict[uuid.UUID, int]:
    conn = await connect(url)
    try:
        rows = await conn.fetch("SELECT user_id, sum(n) FROM task_count GROUP BY user_id")
    finally:
        await conn.close()
    return {row[0]: int(row[1]) for row in rows}


async def _objects(url: str) -> set[str]:
    """The counter's table and triggers, by name."""
    conn = await connect(url)
    try:
        rows = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relname LIKE 'task_count%' AND relkind = 'r' "
            "UNION SELECT tgname FROM pg_trigger WHERE tgname LIKE 'task_count%'"
        )
    finally:
        await conn.close()
    return {row[0] for row in rows}


class TestShards:
    @pytest.mark.skipif(
        POOLER == "transaction",
        reason="through a transaction pooler a client connection has no backend of its own",
    )
    async def test_each_connection_writes_the_shard_of_its_backend(
        self, app: FastAPI, user: UserHandle
    ) -> None:
        user_id = uuid.UUID(user.id)
        pids = []
        # Both connections held at once, so they are two backends (the pool would
        # otherwise hand the same one back); each commits before the other writes.
        database = app.state.database
        async with database.connection() as first, database.connection() as second:
            for conn in (first, second):
                pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
                await conn.execute(_INSERT_TASK, uuid.uuid4(), user_id)
        assert pids[0] != pids[1]
        rows = await counter_rows(app, user)
        assert {shard for shard, _ in rows} == {pid % 16 for pid in pids}
        assert sum(n for _, n in rows) == 2

    async def test_truncating_tasks_empties_the_counters(
        self, app: FastAPI, user: UserHandle, task_factory: TaskFactory, client: httpx.AsyncClient
    ) -> None:
        for _ in range(3):
            await task_factory()
        async with app.state.database.connection() as conn:
            await conn.execute("TRUNCATE task_row CASCADE")
        assert await counter_and_tasks(app, user) == (0, 0)
        assert (await list_tasks(client, user))["total"] == 0
