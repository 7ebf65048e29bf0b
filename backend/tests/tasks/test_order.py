"""Manual order: positions, POST /tasks/{id}/move, sort_by=position (with cursors)."""

import asyncio
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.tasks import order as order_module
from app.tasks import positions
from tests.conftest import UserHandle
from tests.tasks.helpers import MISSING_ID, TASKS, create_project, create_task, list_tasks


async def move(
    client: httpx.AsyncClient, user: UserHandle, task_id: str, **where: str
) -> httpx.Response:
    return await client.post(f"{TASKS}/{task_id}/move", json=where, headers=user.headers)


async def order(client: httpx.AsyncClient, user: UserHandle, **params: Any) -> list[str]:
    listed = await list_tasks(client, user, sort_by="position", sort_direction="asc", **params)
    return [t["id"] for t in listed["items"]]


class TestPositions:
    def test_between(self) -> None:
        rng = random.Random(7)
        keys = [positions.between(None, None)]
        for _ in range(2000):
            i = rng.randrange(len(keys) + 1)
            low = keys[i - 1] if i > 0 else None
            high = keys[i] if i < len(keys) else None
            key = positions.between(low, high)
            assert low is None or low < key
            assert high is None or key < high
            assert not key.endswith("0") or len(key) == 2
            keys.insert(i, key)
        assert keys == sorted(keys)

    def test_a_thousand_moves_into_one_gap(self) -> None:
        low, high = "a0", "a1"
        for _ in range(1000):
            high = positions.between(low, high)
        assert low < high
        assert len(high) < 200

    def test_out_of_order(self) -> None:
        with pytest.raises(ValueError, match="order"):
            positions.between("a1", "a0")

    async def test_key_at_is_the_databases(self, app: FastAPI) -> None:
        async with app.state.database.connection() as conn:
            for _ in range(50):
                at = datetime.fromtimestamp(random.uniform(0, 4e9), UTC)
                salt = uuid.uuid4()
                expected = await conn.fetchval("SELECT task_position_key($1, $2)", at, salt)
                assert positions.key_at(at, salt) == expected


class TestNewTasks:
    async def test_go_last(self, client, user: UserHandle) -> None:
        ids = [(await create_task(client, user, title=f"t{i}"))["id"] for i in range(5)]
        assert await order(client, user) == ids


class TestMove:
    async def test_before_and_after(self, client, user: UserHandle) -> None:
        a, b, c = [(await create_task(client, user, title=t))["id"] for t in "abc"]
        response = await move(client, user, c, before=a)
        assert response.status_code == 200, response.text
        assert response.headers["ETag"] == f'"{response.json()["version"]}"'
        assert await order(client, user) == [c, a, b]
        assert (await move(client, user, c, after=b)).status_code == 200
        assert await order(client, user) == [a, b, c]
        assert (await move(client, user, a, after=b)).status_code == 200
        assert await order(client, user) == [b, a, c]
        descending = await list_tasks(client, user, sort_by="position")
        assert [t["id"] for t in descending["items"]] == [c, a, b]

    async def test_only_among_siblings(
        self, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        project = await create_project(client, user)
        task = await create_task(client, user)
        filed = await create_task(client, user, project_id=project["id"])
        child = await create_task(client, user, parent_id=task["id"])
        foreign = await create_task(client, other_user)
        for anchor in (filed["id"], child["id"], foreign["id"], MISSING_ID, task["id"]):
            response = await move(client, user, task["id"], before=anchor)
            assert response.status_code == 422
            assert response.json()["code"] == "invalid_position"
        assert (await move(client, user, MISSING_ID, before=task["id"])).status_code == 404
        assert (await move(client, other_user, task["id"], before=foreign["id"])).status_code == (
            404
        )

    async def test_body(self, client, user: UserHandle) -> None:
        a, b = [(await create_task(client, user))["id"] for _ in range(2)]
        bodies = ({}, {"before": b, "after": b}, {"before": "x"}, {"under": b}, {"before": None})
        for body in (*bodies, {"before": None, "after": b}):
            response = await client.post(f"{TASKS}/{a}/move", json=body, headers=user.headers)
            assert response.status_code == 422

    async def test_if_match(self, client, user: UserHandle) -> None:
        a = await create_task(client, user)
        b = await create_task(client, user)
        url = f"{TASKS}/{a['id']}/move"
        stale = {**user.headers, "If-Match": '"5"'}
        response = await client.post(url, json={"after": b["id"]}, headers=stale)
        assert response.status_code == 412
        fresh = {**user.headers, "If-Match": f'"{a["version"]}"'}
        response = await client.post(url, json={"after": b["id"]}, headers=fresh)
        assert response.status_code == 200
        assert response.json()["version"] == a["version"] + 1

    async def test_a_thousand_moves_into_the_same_gap(self, client, user: UserHandle) -> None:
        a, b = [(await create_task(client, user, title=t))["id"] for t in "ab"]
        x, y = [(await create_task(client, user, title=t))["id"] for t in "xy"]
        for i in range(1000):
            response = await move(client, user, x if i % 2 else y, after=a)
            assert response.status_code == 200, response.text
            assert len(response.json()["position"]) <= order_module.MAX_KEY
        assert await order(client, user) == [a, x, y, b]

    async def test_concurrent_moves_into_one_gap(self, client, user: UserHandle) -> None:
        """Without the tree lock both moves compute the same position (a tie); with it
        the second goes between the first and its neighbour."""
        a, b = [(await create_task(client, user, title=t))["id"] for t in "ab"]
        movers = [(await create_task(client, user, title=f"m{i}"))["id"] for i in range(6)]
        responses = await asyncio.gather(*(move(client, user, m, after=a) for m in movers))
        assert [r.status_code for r in responses] == [200] * 6
        keys = [r.json()["position"] for r in responses]
        assert len(set(keys)) == 6
        listed = await order(client, user)
        assert listed[0] == a
        assert listed[-1] == b
        assert set(listed[1:-1]) == set(movers)

    async def test_renumbering_keeps_the_order_and_short_keys(
        self, client, user: UserHandle, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(order_module, "MAX_KEY", 12)
        ids = [(await create_task(client, user, title=f"t{i}"))["id"] for i in range(4)]
        for _ in range(20):  # the last one after the first: that gap halves every time
            response = await move(client, user, ids[-1], after=ids[0])
            assert response.status_code == 200
            ids = [ids[0], ids[-1], *ids[1:-1]]
        listed = await list_tasks(client, user, sort_by="position", sort_direction="asc")
        assert [t["id"] for t in listed["items"]] == ids
        assert all(len(t["position"]) <= 12 for t in listed["items"])

    async def test_between_equal_keys(self, app: FastAPI, client, user: UserHandle) -> None:
        a, b, c = [(await create_task(client, user, title=t))["id"] for t in "abc"]
        async with app.state.database.connection() as conn:
            await conn.execute("UPDATE task SET position = 'a0' WHERE id = ANY($1::uuid[])", [a, b])
        first, second = sorted([a, b])
        response = await move(client, user, c, after=first)
        assert response.status_code == 200, response.text
        assert await order(client, user) == [first, c, second]
        listed = await list_tasks(client, user)
        assert len({t["position"] for t in listed["items"]}) == 3


class TestSortByPosition:
    async def test_cursor_pages(self, client, user: UserHandle) -> None:
        ids = [(await create_task(client, user, title=f"t{i}"))["id"] for i in range(7)]
        await move(client, user, ids[6], before=ids[0])
        expected = [ids[6], *ids[:6]]
        seen: list[str] = []
        params: dict[str, Any] = {"sort_by": "position", "sort_direction": "asc", "limit": 3}
        while True:
            page = await list_tasks(client, user, **params)
            seen += [t["id"] for t in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == expected


class TestMoveRacingADeletion:
    async def test_a_deletion_committed_while_the_move_waits_is_404_not_412(
        self, app: FastAPI, client, user: UserHandle
    ) -> None:
        """No If-Match sent, so never 412: the move reads the task locked, so a
        deletion in flight makes it wait and then find nothing. (Read unlocked, the move
        wrote nothing and answered 412, found by the randomized sync test.)"""
        from tests.conftest import wait_for_a_lock_wait

        task, anchor = await create_task(client, user), await create_task(client, user)
        async with app.state.database.connection() as deleter, deleter.transaction():
            await deleter.execute("DELETE FROM task_row WHERE id = $1", uuid.UUID(task["id"]))
            pending = asyncio.create_task(move(client, user, task["id"], before=anchor["id"]))
            await wait_for_a_lock_wait(app)
        response = await pending
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "task_not_found"
