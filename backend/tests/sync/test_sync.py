"""GET /sync: first syncs, changes and deletions since a cursor, pages, isolation,
cursors refused and expired, and the change log's purge."""

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.schemas import utcnow
from app.sync import cursor as cursors
from app.sync import service
from tests.conftest import UserHandle
from tests.sync.replica import SYNC, Replica, assert_replica_matches, sync
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import PROJECTS, TAGS, TASKS


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


def nothing(body: dict[str, Any]) -> bool:
    return not (body["tasks"] or body["projects"] or body["tags"] or any(body["deleted"].values()))


class TestFirstSync:
    async def test_an_empty_account(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        body = await sync(client, user)
        assert nothing(body)
        assert body["has_more"] is False
        assert isinstance(body["cursor"], str)
        assert body["cursor"]

    async def test_everything_exactly_as_the_routes_answer_it(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        project_factory: TaskFactory,
    ) -> None:
        project = await project_factory(name="Home")
        await task_factory(title="a", tags=["Work", "home"], project_id=project["id"])
        await task_factory(title="b", tags=["work"], due_date="2026-12-24", priority="high")
        body = await sync(client, user)
        listed = (await client.get(TASKS, headers=user.headers)).json()["items"]
        assert sorted(body["tasks"], key=lambda t: t["id"]) == sorted(listed, key=lambda t: t["id"])
        got = (await client.get(f"{PROJECTS}/{project['id']}", headers=user.headers)).json()
        assert body["projects"] == [got]
        assert sorted(body["tags"], key=lambda t: t["name"]) == sorted(
            (await client.get(TAGS, headers=user.headers)).json(), key=lambda t: t["name"]
        )
        assert body["tags"] == [
            {"name": "Work", "usage_count": 2},
            {"name": "home", "usage_count": 1},
        ]


class TestChanges:
    async def test_nothing_changed_is_an_empty_answer(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        first = await sync(client, user)
        again = await sync(client, user, first["cursor"])
        assert nothing(again)
        assert again["has_more"] is False

    async def test_created_changed_and_deleted_since_the_cursor(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        project_factory: TaskFactory,
    ) -> None:
        kept = await task_factory(title="kept")
        changed = await task_factory(title="changed")
        gone = await task_factory(title="gone")
        project = await project_factory(name="P")
        cursor = (await sync(client, user))["cursor"]

        new = await task_factory(title="new", project_id=project["id"])
        patched = await client.patch(
            f"{TASKS}/{changed['id']}", json={"title": "changed!"}, headers=user.headers
        )
        await client.delete(f"{TASKS}/{gone['id']}", headers=user.headers)

        body = await sync(client, user, cursor)
        assert ids(body["tasks"]) == {new["id"], changed["id"]}
        assert patched.json() in body["tasks"]
        assert kept["id"] not in ids(body["tasks"])
        assert body["deleted"]["tasks"] == [gone["id"]]
        # The project's task_count changed (a task filed in it).
        assert [p["task_count"] for p in body["projects"]] == [1]
        assert nothing(await sync(client, user, body["cursor"]))

    async def test_tag_usage_rename_and_deletion(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        one = await task_factory(tags=["work"])
        two = await task_factory(tags=["work", "home"])
        cursor = (await sync(client, user))["cursor"]

        await client.patch(f"{TAGS}/work", json={"name": "job"}, headers=user.headers)
        body = await sync(client, user, cursor)
        assert body["deleted"]["tags"] == ["work"]
        assert body["tags"] == [{"name": "job", "usage_count": 2}]
        assert ids(body["tasks"]) == {one["id"], two["id"]}
        assert all("job" in t["tags"] for t in body["tasks"])

        await client.patch(f"{TAGS}/job", json={"name": "Job"}, headers=user.headers)  # respelt
        body = await sync(client, user, body["cursor"])
        assert body["deleted"]["tags"] == ["job"]
        assert body["tags"] == [{"name": "Job", "usage_count": 2}]

        await client.delete(f"{TAGS}/home", headers=user.headers)
        body = await sync(client, user, body["cursor"])
        assert body["deleted"]["tags"] == ["home"]
        assert body["tags"] == []
        assert ids(body["tasks"]) == {two["id"]}
        assert body["tasks"][0]["tags"] == ["Job"]

        await client.patch(f"{TASKS}/{one['id']}", json={"tags": []}, headers=user.headers)
        body = await sync(client, user, body["cursor"])
        assert body["tags"] == [{"name": "Job", "usage_count": 1}]

    async def test_a_merge_reports_the_old_name_gone_and_the_target_changed(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory(tags=["a"])
        await task_factory(tags=["b"])
        cursor = (await sync(client, user))["cursor"]
        await client.patch(f"{TAGS}/a", json={"name": "b"}, headers=user.headers)
        body = await sync(client, user, cursor)
        assert body["deleted"]["tags"] == ["a"]
        assert body["tags"] == [{"name": "b", "usage_count": 2}]

    @pytest.mark.parametrize("delete_tasks", [False, True])
    async def test_deleting_a_project(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        project_factory: TaskFactory,
        delete_tasks: bool,
    ) -> None:
        project = await project_factory(name="P")
        filed = await task_factory(project_id=project["id"], tags=["t"])
        cursor = (await sync(client, user))["cursor"]
        response = await client.delete(
            f"{PROJECTS}/{project['id']}",
            params={"delete_tasks": str(delete_tasks).lower()},
            headers=user.headers,
        )
        assert response.status_code == 204
        body = await sync(client, user, cursor)
        assert body["deleted"]["projects"] == [project["id"]]
        if delete_tasks:
            assert body["deleted"]["tasks"] == [filed["id"]]
            assert body["tags"] == [{"name": "t", "usage_count": 0}]
        else:
            assert [(t["id"], t["project_id"]) for t in body["tasks"]] == [(filed["id"], None)]

    async def test_moving_a_task_changes_both_projects_counts(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        project_factory: TaskFactory,
    ) -> None:
        a, b = await project_factory(name="A"), await project_factory(name="B")
        task = await task_factory(project_id=a["id"])
        cursor = (await sync(client, user))["cursor"]
        await client.patch(
            f"{TASKS}/{task['id']}", json={"project_id": b["id"]}, headers=user.headers
        )
        body = await sync(client, user, cursor)
        counts = {p["id"]: p["task_count"] for p in body["projects"]}
        assert counts == {a["id"]: 0, b["id"]: 1}


class TestPages:
    async def test_every_object_once_across_the_pages(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        made = [await task_factory(title=f"t{i}", tags=[f"tag{i % 3}"]) for i in range(7)]
        replica, seen = Replica(), []
        while True:
            body = await sync(client, user, replica.cursor, limit=3)
            assert len(body["tasks"]) + len(body["tags"]) <= 3
            seen += [t["id"] for t in body["tasks"]] + [t["name"] for t in body["tags"]]
            replica.apply(body)
            if not body["has_more"]:
                break
        assert replica.pages == 4  # 3 tags + 7 tasks, 3 a page
        assert len(seen) == len(set(seen)) == 10
        assert set(replica.tasks) == ids(made)
        await assert_replica_matches(replica, client, user)

    async def test_changes_made_while_paging_come_in_this_sync_or_the_next(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        made = [await task_factory(title=f"t{i}") for i in range(6)]
        by_id = sorted(made, key=lambda t: t["id"])
        replica = Replica()
        replica.apply(await sync(client, user, limit=2))  # the first two (by id)
        # Changed behind the pages (already listed) and ahead of them, and a new one.
        early, late = by_id[0], by_id[-1]
        for task in (early, late):
            await client.patch(f"{TASKS}/{task['id']}", json={"title": "x"}, headers=user.headers)
        await task_factory(title="new")
        await client.delete(f"{TASKS}/{by_id[3]['id']}", headers=user.headers)
        await replica.sync(client, user, limit=2)
        await replica.sync(client, user, limit=2)  # the next sync catches what was behind
        await assert_replica_matches(replica, client, user)
        assert replica.tasks[early["id"]]["title"] == "x"


class TestIsolation:
    async def test_another_users_changes_never_appear(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        other_user: UserHandle,
        task_factory: TaskFactory,
    ) -> None:
        mine = await task_factory(tags=["shared-name"])
        cursor = (await sync(client, user))["cursor"]
        theirs = await task_factory(owner=other_user, tags=["shared-name"])
        await client.patch(f"{TAGS}/shared-name", json={"name": "x"}, headers=other_user.headers)
        await client.delete(f"{TASKS}/{theirs['id']}", headers=other_user.headers)
        assert nothing(await sync(client, user, cursor))
        first = await sync(client, user)
        assert ids(first["tasks"]) == {mine["id"]}
        assert first["tags"] == [{"name": "shared-name", "usage_count": 1}]

    async def test_another_users_cursor_is_422(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        cursor = (await sync(client, user))["cursor"]
        response = await client.get(SYNC, params={"cursor": cursor}, headers=other_user.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_cursor"

    async def test_a_deleted_account_leaves_no_change_log(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory, app: FastAPI
    ) -> None:
        await task_factory(tags=["a"])
        async with app.state.database.connection() as conn:
            assert await conn.fetchval(
                "SELECT count(*) FROM sync_change WHERE user_id = $1", uuid.UUID(user.id)
            )
        response = await client.request(
            "DELETE", "/api/v1/auth/me", json={"password": user.password}, headers=user.headers
        )
        assert response.status_code == 204, response.text
        async with app.state.database.connection() as conn:
            left = await conn.fetchval(
                "SELECT count(*) FROM sync_change WHERE user_id = $1", uuid.UUID(user.id)
            )
        assert left == 0


def _forged(payload: dict[str, Any]) -> str:
    import base64

    import orjson

    return base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=").decode()


class TestCursorRefused:
    @pytest.mark.parametrize(
        "value",
        [
            "x",
            "not-base64!",
            "AAAA",
            _forged([1, 2]),
            _forged({"u": "0" * 16, "s": "1:1:", "st": 0}),
        ],
    )
    async def test_malformed(self, client: httpx.AsyncClient, user: UserHandle, value: str) -> None:
        response = await client.get(SYNC, params={"cursor": value}, headers=user.headers)
        assert response.status_code == 422
        body = response.json()
        assert body["code"] in {"invalid_cursor", "validation_error"}
        assert response.headers["content-type"] == "application/problem+json"

    @pytest.mark.parametrize(
        "changes",
        [
            {"s": "5:3:"},  # xmin > xmax
            {"s": "3:9:10"},  # in progress beyond xmax
            {"s": "3:9:5,4"},  # not ascending
            {"s": "0:0:"},
            {"s": "3:9:", "st": "soon"},
            {"s": "3:9:", "st": 2**62},
            {"k": 9, "p": "x", "b": "3:9:", "bt": 0},
            {"k": 3, "p": "not-a-uuid", "b": "3:9:", "bt": 0},
            {"k": 3, "p": str(uuid.uuid4()).upper(), "b": "3:9:", "bt": 0},
            {"extra": 1},
        ],
    )
    async def test_forged_fields(
        self, client: httpx.AsyncClient, user: UserHandle, changes: dict[str, Any]
    ) -> None:
        now = round(utcnow().timestamp() * 1_000_000)
        payload = {"u": cursors._owner_tag(uuid.UUID(user.id)), "s": "3:9:", "st": now}
        value = _forged(payload | changes)
        response = await client.get(SYNC, params={"cursor": value}, headers=user.headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_cursor"

    async def test_a_respelling_in_the_spare_bits_is_refused(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        import base64

        from tests.tasks.test_cursors import respellings

        await task_factory()
        cursor = (await sync(client, user))["cursor"]
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        respelt = 0
        for spaces in range(3):  # the same JSON, 0-2 bytes longer: every length mod 3
            token = base64.urlsafe_b64encode(b"{" + b" " * spaces + raw[1:]).rstrip(b"=")
            ok = await client.get(SYNC, params={"cursor": token.decode()}, headers=user.headers)
            assert ok.status_code == 200, ok.text
            for other in respellings(token.decode()):
                response = await client.get(SYNC, params={"cursor": other}, headers=user.headers)
                assert response.status_code == 422, response.text
                assert response.json()["code"] == "invalid_cursor"
                respelt += 1
        assert respelt >= 2 + 14  # 2 bytes past a group leave 2 spare bits, 1 byte 4

    @pytest.mark.parametrize("limit", ["0", "1001", "x"])
    async def test_a_bad_limit(
        self, client: httpx.AsyncClient, user: UserHandle, limit: str
    ) -> None:
        response = await client.get(SYNC, params={"limit": limit}, headers=user.headers)
        assert response.status_code == 422

    async def test_without_a_token_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(SYNC)).status_code == 401


class TestRetention:
    async def test_a_cursor_older_than_the_retention_is_410(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        body = await sync(client, user)
        decoded = cursors.decode(body["cursor"], uuid.UUID(user.id))
        assert decoded.seen is not None
        old = cursors.Snapshot(decoded.seen.text, utcnow() - timedelta(days=31))
        expired = cursors.encode(cursors.Cursor(old), uuid.UUID(user.id))
        response = await client.get(SYNC, params={"cursor": expired}, headers=user.headers)
        assert response.status_code == 410
        assert response.json()["code"] == "sync_cursor_expired"
        recent = cursors.Snapshot(decoded.seen.text, utcnow() - timedelta(days=29))
        fine = cursors.encode(cursors.Cursor(recent), uuid.UUID(user.id))
        response = await client.get(SYNC, params={"cursor": fine}, headers=user.headers)
        assert response.status_code == 200

    async def test_the_purge_removes_only_rows_past_the_retention(
        self, task_factory: TaskFactory, app: FastAPI
    ) -> None:
        old, recent = await task_factory(title="old"), await task_factory(title="recent")
        async with app.state.database.connection() as conn:
            await conn.execute(
                "UPDATE sync_change SET created_at = now() - interval '32 days' WHERE key = $1",
                old["id"],
            )
            assert await service.purge(conn, retention_days=30) == 1
            keys = {r[0] for r in await conn.fetch("SELECT key FROM sync_change")}
        assert keys == {recent["id"]}


class TestDueTimesAndRecurrence:
    async def test_a_recurring_completion_comes_as_a_change_with_its_new_due(
        self, client: httpx.AsyncClient, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(
            due_at="2026-12-01T09:00:00+01:00", time_zone="Europe/Paris", recurrence="FREQ=DAILY"
        )
        first = await sync(client, user)
        assert first["tasks"] == [task]
        moved = await client.patch(f"{TASKS}/{task['id']}/complete", headers=user.headers)
        body = await sync(client, user, first["cursor"])
        assert body["tasks"] == [moved.json()]
        assert body["tasks"][0]["due_at"] == "2026-12-02T08:00:00.000000Z"
        assert body["tasks"][0]["completed"] is False
