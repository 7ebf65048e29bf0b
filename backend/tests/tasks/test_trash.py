"""The trash: DELETE /tasks/{id} trashes, GET /tasks/trash, POST /tasks/{id}/restore,
DELETE /tasks/{id}?permanent=true, and the purge."""

import asyncio
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from app.core.schemas import utcnow
from app.maintenance import run_once
from tests.conftest import UserHandle
from tests.tasks.helpers import (
    MISSING_ID,
    PROJECTS,
    TASKS,
    count_rows,
    create_project,
    create_task,
    etag,
    get_task,
    list_tasks,
    tag_usage,
)

TRASH = f"{TASKS}/trash"


async def trash_ids(client: httpx.AsyncClient, user: UserHandle) -> list[str]:
    response = await client.get(TRASH, headers=user.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return [task["id"] for task in body["items"]]


async def delete(client: httpx.AsyncClient, user: UserHandle, task_id: str, **params: str) -> int:
    response = await client.delete(f"{TASKS}/{task_id}", params=params, headers=user.headers)
    return response.status_code


async def restore(client: httpx.AsyncClient, user: UserHandle, task_id: str) -> httpx.Response:
    return await client.post(f"{TASKS}/{task_id}/restore", headers=user.headers)


class TestTrashing:
    async def test_a_trashed_task_is_invisible(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        task = await create_task(client, user, tags=["home"], project_id=project["id"])
        kept = await create_task(client, user)
        assert await delete(client, user, task["id"]) == 204
        assert (await get_task(client, user, task["id"])).status_code == 404
        for method in ("PUT", "PATCH"):
            response = await client.request(
                method, f"{TASKS}/{task['id']}", json={"title": "x"}, headers=user.headers
            )
            assert response.status_code == 404
        response = await client.patch(f"{TASKS}/{task['id']}/complete", headers=user.headers)
        assert response.status_code == 404
        assert await delete(client, user, task["id"]) == 404
        listed = await list_tasks(client, user)
        assert [t["id"] for t in listed["items"]] == [kept["id"]]
        assert listed["total"] == 1
        assert (await list_tasks(client, user, search="task"))["total"] == 1
        assert await tag_usage(client, user) == {"home": 0}
        response = await client.get(f"{PROJECTS}/{project['id']}", headers=user.headers)
        assert response.json()["task_count"] == 0

    async def test_listed_newest_first(self, client, user: UserHandle) -> None:
        first = await create_task(client, user, title="first")
        second = await create_task(client, user, title="second")
        await delete(client, user, first["id"])
        await delete(client, user, second["id"])
        response = await client.get(TRASH, params={"limit": 1}, headers=user.headers)
        body = response.json()
        assert body["total"] == 2
        assert body["limit"] == 1
        assert body["offset"] == 0
        assert [t["id"] for t in body["items"]] == [second["id"]]
        item = body["items"][0]
        assert item["deleted_at"].endswith("Z")
        assert {k: v for k, v in item.items() if k != "deleted_at"} == second
        assert await trash_ids(client, user) == [second["id"], first["id"]]

    async def test_bad_paging_is_422(self, client, user: UserHandle) -> None:
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
            response = await client.get(TRASH, params=params, headers=user.headers)
            assert response.status_code == 422

    async def test_if_match(self, client, user: UserHandle) -> None:
        task = await create_task(client, user)
        headers = {**user.headers, "If-Match": '"7"'}
        response = await client.delete(f"{TASKS}/{task['id']}", headers=headers)
        assert response.status_code == 412
        response = await client.delete(
            f"{TASKS}/{task['id']}", headers={**user.headers, **etag(task)}
        )
        assert response.status_code == 204


class TestRestore:
    async def test_restores(self, client, user: UserHandle) -> None:
        task = await create_task(client, user, tags=["home"])
        await delete(client, user, task["id"])
        response = await restore(client, user, task["id"])
        assert response.status_code == 200, response.text
        restored = response.json()
        assert restored["version"] == task["version"] + 1
        assert response.headers["ETag"] == f'"{restored["version"]}"'
        assert restored["tags"] == ["home"]
        assert (await get_task(client, user, task["id"])).json() == restored
        assert await trash_ids(client, user) == []
        assert await tag_usage(client, user) == {"home": 1}

    async def test_only_what_is_in_the_trash(
        self, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        task = await create_task(client, user)
        assert (await restore(client, user, task["id"])).status_code == 404
        assert (await restore(client, user, MISSING_ID)).status_code == 404
        await delete(client, user, task["id"])
        assert (await restore(client, other_user, task["id"])).status_code == 404
        assert await trash_ids(client, other_user) == []

    async def test_the_subtree_comes_back(self, client, user: UserHandle) -> None:
        root = await create_task(client, user, title="root")
        child = await create_task(client, user, parent_id=root["id"])
        grandchild = await create_task(client, user, parent_id=child["id"])
        alone = await create_task(client, user, parent_id=root["id"])
        await delete(client, user, alone["id"])  # trashed on its own, earlier
        await delete(client, user, root["id"])
        assert sorted(await trash_ids(client, user)) == sorted(
            t["id"] for t in (root, child, grandchild, alone)
        )
        assert (await list_tasks(client, user))["total"] == 0
        assert (await restore(client, user, root["id"])).status_code == 200
        assert await trash_ids(client, user) == [alone["id"]]
        assert (await get_task(client, user, grandchild["id"])).json()["parent_id"] == child["id"]
        assert (await list_tasks(client, user))["total"] == 3

    async def test_under_its_live_parent_in_its_project(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        other = await create_project(client, user, name="Other")
        parent = await create_task(client, user)
        child = await create_task(client, user, parent_id=parent["id"])
        await delete(client, user, child["id"])
        response = await client.patch(
            f"{TASKS}/{parent['id']}", json={"project_id": project["id"]}, headers=user.headers
        )
        assert response.status_code == 200
        restored = (await restore(client, user, child["id"])).json()
        assert restored["parent_id"] == parent["id"]
        assert restored["project_id"] == project["id"]  # the parent's, now
        response = await client.patch(
            f"{TASKS}/{parent['id']}", json={"project_id": other["id"]}, headers=user.headers
        )
        assert (await get_task(client, user, child["id"])).json()["project_id"] == other["id"]

    async def test_too_deep_now_restores_top_level(self, client, user: UserHandle) -> None:
        root = await create_task(client, user)
        child = await create_task(client, user, parent_id=root["id"])
        grandchild = await create_task(client, user, parent_id=child["id"])
        await delete(client, user, child["id"])  # with the grandchild
        chain = [await create_task(client, user)]
        for _ in range(2):
            chain.append(await create_task(client, user, parent_id=chain[-1]["id"]))
        response = await client.patch(
            f"{TASKS}/{root['id']}", json={"parent_id": chain[-1]["id"]}, headers=user.headers
        )
        assert response.status_code == 200  # the root is 3 levels deep now
        restored = (await restore(client, user, child["id"])).json()
        assert restored["parent_id"] is None  # under the root, the grandchild: level 5
        assert (await get_task(client, user, grandchild["id"])).json()["parent_id"] == child["id"]

    async def test_parent_still_trashed_restores_top_level(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        root = await create_task(client, user, project_id=project["id"])
        child = await create_task(client, user, parent_id=root["id"])
        await delete(client, user, root["id"])
        restored = (await restore(client, user, child["id"])).json()
        assert restored["parent_id"] is None
        assert restored["project_id"] == project["id"]
        assert await trash_ids(client, user) == [root["id"]]

    async def test_project_deleted_meanwhile(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        task = await create_task(client, user, project_id=project["id"])
        await delete(client, user, task["id"])
        response = await client.delete(f"{PROJECTS}/{project['id']}", headers=user.headers)
        assert response.status_code == 204
        restored = (await restore(client, user, task["id"])).json()
        assert restored["project_id"] is None


class TestRestoreRacingAPermanentDeletion:
    async def test_a_deletion_committed_while_the_restore_waits_is_404(
        self, app: FastAPI, client, user: UserHandle
    ) -> None:
        """A permanent deletion in flight (row deleted, not committed) when the restore
        reads the task: the restore waits for it, then finds nothing, 404. (Read without
        a lock, it restored a row already gone and failed on its own answer: a 500, found
        by the randomized sync test.)"""
        from tests.conftest import wait_for_a_lock_wait

        task = await create_task(client, user)
        await delete(client, user, task["id"])
        async with app.state.database.connection() as deleter, deleter.transaction():
            await deleter.execute("DELETE FROM task_row WHERE id = $1", uuid.UUID(task["id"]))
            pending = asyncio.create_task(restore(client, user, task["id"]))
            await wait_for_a_lock_wait(app)
        response = await pending
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "task_not_found"
        assert await trash_ids(client, user) == []


class TestPermanent:
    async def test_from_the_trash_or_not(self, app: FastAPI, client, user: UserHandle) -> None:
        live = await create_task(client, user)
        child = await create_task(client, user, parent_id=live["id"])
        trashed = await create_task(client, user)
        await delete(client, user, trashed["id"])
        assert await delete(client, user, live["id"], permanent="true") == 204
        assert await delete(client, user, trashed["id"], permanent="true") == 204
        assert await count_rows(app, "task_row") == 0
        assert (await get_task(client, user, child["id"])).status_code == 404
        assert await delete(client, user, trashed["id"], permanent="true") == 404

    async def test_if_match_and_isolation(
        self, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        task = await create_task(client, user)
        await delete(client, user, task["id"])
        assert await delete(client, other_user, task["id"], permanent="true") == 404
        url = f"{TASKS}/{task['id']}?permanent=true"
        response = await client.delete(url, headers={**user.headers, "If-Match": '"9"'})
        assert response.status_code == 412
        response = await client.delete(url, headers={**user.headers, **etag(task)})
        assert response.status_code == 204


class TestPurge:
    async def test_purges_after_the_retention(self, app: FastAPI, client, user: UserHandle) -> None:
        old = await create_task(client, user)
        child = await create_task(client, user, parent_id=old["id"])
        recent = await create_task(client, user)
        kept = await create_task(client, user)
        await delete(client, user, old["id"])
        await delete(client, user, recent["id"])
        async with app.state.database.connection() as conn:
            await conn.execute(
                "UPDATE task_row SET deleted_at = $1 WHERE id = ANY($2::uuid[])",
                utcnow() - timedelta(days=31),
                [old["id"], child["id"]],
            )
        settings = app.state.settings
        await run_once(app.state.database, settings)
        assert await trash_ids(client, user) == [recent["id"]]
        assert await count_rows(app, "task_row") == 2
        assert (await get_task(client, user, kept["id"])).status_code == 200


class TestAccountDeletion:
    async def test_removes_the_trash_too(self, app: FastAPI, client, user: UserHandle) -> None:
        task = await create_task(client, user)
        await create_task(client, user, parent_id=task["id"])
        await delete(client, user, task["id"])
        response = await client.request(
            "DELETE", "/api/v1/auth/me", json={"password": user.password}, headers=user.headers
        )
        assert response.status_code == 204
        assert await count_rows(app, "task_row") == 0
        assert await count_rows(app, "task_count") == 0


class TestCompat:
    async def test_the_trash_under_the_user_id(self, client, user: UserHandle) -> None:
        base = f"/api/{user.id}/tasks"
        task = await create_task(client, user)
        child = await create_task(client, user, parent_id=task["id"])
        assert (
            await client.delete(f"{base}/{task['id']}", headers=user.headers)
        ).status_code == 204
        response = await client.get(f"{base}/trash", headers=user.headers)
        assert response.status_code == 200
        assert {t["id"] for t in response.json()["items"]} == {task["id"], child["id"]}
        response = await client.post(f"{base}/{task['id']}/restore", headers=user.headers)
        assert response.status_code == 200
        assert response.json()["position"] == task["position"]
        response = await client.get(base, params={"parent_id": task["id"]}, headers=user.headers)
        assert [t["id"] for t in response.json()["items"]] == [child["id"]]


class TestTrashPath:
    async def test_other_methods_are_405(self, client, user: UserHandle) -> None:
        for method in ("PUT", "PATCH", "DELETE", "POST", "OPTIONS"):
            response = await client.request(method, TRASH, json={}, headers=user.headers)
            assert response.status_code == 405, method
            assert response.headers["Allow"] == "GET"
