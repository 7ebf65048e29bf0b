"""Sync never skips a change, whatever order transactions commit in.

The deterministic tests hold a writer's transaction open on a connection of their own
while a sync reads past it; the randomized one races writers (HTTP requests on the
app's pool, and slow transactions of their own) against a reader that syncs in a
loop, then compares the reader's copy, built only from sync answers, with the
server's state."""

import asyncio
import os
import random
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.config import Settings
from tests.conftest import UserHandle, connect
from tests.sync.replica import Replica, assert_replica_matches, sync
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import PROJECTS, TAGS, TASKS

_HOLD = (
    "UPDATE task SET title = $2, version = version + 1, updated_at = now() "
    "WHERE id = $1 RETURNING version"
)


class TestHeldTransactions:
    async def test_a_change_committed_after_a_sync_read_past_it_comes_next_time(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        settings: Settings,
    ) -> None:
        held, quick = await task_factory(title="held"), await task_factory(title="quick")
        cursor = (await sync(client, user))["cursor"]
        writer = await connect(settings.DATABASE_URL)
        try:
            transaction = writer.transaction()
            await transaction.start()
            # The first writer writes, and stays open...
            await writer.fetchval(_HOLD, uuid.UUID(held["id"]), "held, committed last")
            # ...a second one starts after it and commits first.
            patched = await client.patch(
                f"{TASKS}/{quick['id']}", json={"title": "quick!"}, headers=user.headers
            )
            assert patched.status_code == 200
            body = await sync(client, user, cursor=cursor)
            assert [t["title"] for t in body["tasks"]] == ["quick!"]
            await transaction.commit()
        finally:
            await writer.close()
        body = await sync(client, user, cursor=body["cursor"])
        assert [t["title"] for t in body["tasks"]] == ["held, committed last"]
        assert (await sync(client, user, cursor=body["cursor"]))["tasks"] == []

    async def test_a_deletion_held_open_while_a_sync_pages(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        settings: Settings,
    ) -> None:
        made = sorted([await task_factory(title=f"t{i}") for i in range(4)], key=lambda t: t["id"])
        replica = Replica()
        await replica.sync(client, user)
        writer = await connect(settings.DATABASE_URL)
        try:
            transaction = writer.transaction()
            await transaction.start()
            await writer.execute("DELETE FROM task WHERE id = $1", uuid.UUID(made[0]["id"]))
            # A sync pages past the deleted task's key while the deletion is in flight.
            await client.patch(
                f"{TASKS}/{made[3]['id']}", json={"title": "late"}, headers=user.headers
            )
            replica.apply(await sync(client, user, cursor=replica.cursor, limit=1))
            await transaction.commit()
        finally:
            await writer.close()
        await replica.sync(client, user, limit=1)  # the rest of that sync
        await replica.sync(client, user, limit=1)  # and the next one
        assert made[0]["id"] not in replica.tasks
        assert replica.tasks[made[3]["id"]]["title"] == "late"
        await assert_replica_matches(replica, client, user)


class Writers:
    """Random writes by one user over HTTP, and slow transactions of their own."""

    def __init__(self, client: httpx.AsyncClient, user: UserHandle, rng: random.Random) -> None:
        self.client, self.user, self.rng = client, user, rng
        self.tags = [f"tag{i}" for i in range(6)]
        self.statuses: list[int] = []
        self.conflicts = 0  # 503 database_conflict answers, retried

    async def _ids(self, path: str) -> list[str]:
        response = await self.client.get(path, params={"limit": 100}, headers=self.user.headers)
        return [item["id"] for item in response.json()["items"]]

    async def _send(self, method: str, path: str, **kwargs: Any) -> None:
        for _ in range(3):  # as a client does on 503 + Retry-After (a deadlock broken)
            response = await self.client.request(method, path, headers=self.user.headers, **kwargs)
            if response.status_code != 503 or response.json()["code"] != "database_conflict":
                break
            self.conflicts += 1
        self.statuses.append(response.status_code)
        # Lost races (another writer deleted the object, took the name) are fine.
        assert response.status_code in {200, 201, 204, 404, 409, 422}, response.text

    async def one(self, held_writer: asyncpg.Connection | None) -> None:
        rng, tags = self.rng, self.tags
        tasks = await self._ids(TASKS)
        projects = await self._ids(PROJECTS)
        op = rng.choice(
            ["create"] * 4 + ["patch"] * 4 + ["complete", "delete", "move", "rename_tag",
             "delete_tag", "project", "rename_project", "delete_project", "slow", "restore",
             "reorder", "parent", "bulk", "purge"]
        )  # fmt: skip
        if op == "create" or not tasks:
            body: dict[str, Any] = {"title": f"t{rng.random():.6f}", "tags": rng.sample(tags, 2)}
            if projects and rng.random() < 0.5:
                body["project_id"] = rng.choice(projects)
            if rng.random() < 0.3:  # completing it moves its due day, not its state
                body |= {"due_at": "2026-03-28T09:00:00+01:00", "time_zone": "Europe/Paris",
                         "recurrence": "FREQ=DAILY;COUNT=3"}  # fmt: skip
            await self._send("POST", TASKS, json=body)
        elif op == "restore":
            trashed = await self._ids(f"{TASKS}/trash")
            if trashed:
                await self._send("POST", f"{TASKS}/{rng.choice(trashed)}/restore")
        elif op == "purge":
            trashed = await self._ids(f"{TASKS}/trash")
            target = rng.choice(trashed or tasks)
            await self._send("DELETE", f"{TASKS}/{target}", params={"permanent": "true"})
        elif op == "reorder":  # another task as the anchor: a sibling, or 422 invalid_position
            moved, anchor = rng.choice(tasks), rng.choice(tasks)
            side = rng.choice(["before", "after"])
            await self._send("POST", f"{TASKS}/{moved}/move", json={side: anchor})
        elif op == "parent":  # a subtask, or back to the top (422 on a cycle or depth)
            parent = rng.choice([*tasks, None])
            await self._send("PATCH", f"{TASKS}/{rng.choice(tasks)}", json={"parent_id": parent})
        elif op == "bulk":
            operations = [
                {"op": "create", "ref": "a", "data": {"title": "b1", "tags": rng.sample(tags, 1)}},
                {"op": "create", "ref": "b", "data": {"title": "b2", "parent_id": "a"}},
                {"op": "update", "id": rng.choice(tasks), "data": {"tags": rng.sample(tags, 2)}},
                {"op": "complete", "id": rng.choice(tasks)},
                {"op": "delete", "id": rng.choice([*tasks, "b"])},
            ]
            body = {"operations": operations, "atomic": rng.random() < 0.5}
            await self._send("POST", f"{TASKS}/bulk", json=body)
        elif op == "patch":
            change = rng.choice(
                [{"title": f"p{rng.random():.6f}"}, {"tags": rng.sample(tags, rng.randint(0, 3))},
                 {"priority": rng.choice(["low", "high"])}]
            )  # fmt: skip
            await self._send("PATCH", f"{TASKS}/{rng.choice(tasks)}", json=change)
        elif op == "complete":
            await self._send("PATCH", f"{TASKS}/{rng.choice(tasks)}/complete")
        elif op == "delete":
            await self._send("DELETE", f"{TASKS}/{rng.choice(tasks)}")
        elif op == "move":
            target = rng.choice([*projects, None])
            await self._send("PATCH", f"{TASKS}/{rng.choice(tasks)}", json={"project_id": target})
        elif op == "rename_tag":
            old, new = rng.sample(tags, 2)  # often a merge into an existing tag
            await self._send("PATCH", f"{TAGS}/{old}", json={"name": new})
        elif op == "delete_tag":
            await self._send("DELETE", f"{TAGS}/{rng.choice(tags)}")
        elif op == "project":
            await self._send("POST", PROJECTS, json={"name": f"P{rng.randint(0, 5)}"})
        elif op == "rename_project" and projects:
            name = f"P{rng.randint(0, 9)}"
            await self._send("PATCH", f"{PROJECTS}/{rng.choice(projects)}", json={"name": name})
        elif op == "delete_project" and projects:
            params = {"delete_tasks": rng.choice(["true", "false"])}
            await self._send("DELETE", f"{PROJECTS}/{rng.choice(projects)}", params=params)
        elif op == "slow" and held_writer is not None:
            # A transaction that starts now and commits later than others started after it.
            async with held_writer.transaction():
                await held_writer.fetchval(_HOLD, uuid.UUID(rng.choice(tasks)), "slow")
                await asyncio.sleep(rng.uniform(0.005, 0.05))


@pytest.mark.parametrize("seed", [int(os.environ.get("SYNC_SEED", "0")) or random.randrange(10**6)])
async def test_a_replica_built_from_syncs_equals_the_server(
    client: httpx.AsyncClient, user: UserHandle, settings: Settings, seed: int
) -> None:
    """Writers race (4 on the app's pool over HTTP, 2 slow transactions of their own)
    while a reader syncs in a loop with small pages; afterwards the reader's copy
    equals the server's state exactly, every task, project and tag. The seed is in
    the test id (SYNC_SEED=<n> replays one)."""
    rng = random.Random(seed)
    writers = Writers(client, user, rng)
    for _ in range(8):
        await writers.one(None)
    done = asyncio.Event()
    replica = Replica()
    syncs = 0

    async def write(n: int, held: bool) -> None:
        conn = await connect(settings.DATABASE_URL) if held else None
        try:
            for _ in range(n):
                await writers.one(conn)
        finally:
            if conn is not None:
                await conn.close()

    async def read() -> None:
        # One page at a time, as a client polling would, so the reads interleave with
        # the writes page by page (a whole sync of small pages can outlast them all).
        nonlocal syncs
        while not done.is_set():
            replica.apply(await sync(client, user, replica.cursor, limit=rng.randint(1, 12)))
            syncs += 1
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    await asyncio.gather(*(write(30, held=i >= 4) for i in range(6)))
    done.set()
    await reader
    # The reader may have stopped in the middle of a sync: its last pages, then one sync
    # that began after every write (changes made while a sync pages come in the next).
    await replica.sync(client, user, limit=7)
    await replica.sync(client, user, limit=7)
    assert syncs >= 5, syncs
    assert sum(s in (200, 201, 204) for s in writers.statuses) >= 60, writers.statuses
    assert writers.conflicts <= 5, writers.conflicts  # rare, never a storm
    await assert_replica_matches(replica, client, user)
