"""GET /sync and the trash: trashed tasks are reported deleted, restored ones changed,
with their project's task_count and their tags' usage_count."""

import httpx

from tests.conftest import UserHandle
from tests.sync.replica import sync
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS


class TestTrash:
    async def test_trashed_then_restored(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        task_factory: TaskFactory,
        project_factory: TaskFactory,
    ) -> None:
        project = await project_factory(name="Home")
        task = await task_factory(title="a", tags=["home"], project_id=project["id"])
        child = await task_factory(title="b", parent_id=task["id"])
        first = await sync(client, user)
        assert {t["id"] for t in first["tasks"]} == {task["id"], child["id"]}
        response = await client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
        assert response.status_code == 204
        trashed = await sync(client, user, first["cursor"])
        assert sorted(trashed["deleted"]["tasks"]) == sorted([task["id"], child["id"]])
        assert trashed["tasks"] == []
        assert [p["task_count"] for p in trashed["projects"]] == [0]
        assert trashed["tags"] == [{"name": "home", "usage_count": 0}]
        again = await sync(client, user)  # a first sync leaves the trash out
        assert again["tasks"] == []
        response = await client.post(f"{TASKS}/{task['id']}/restore", headers=user.headers)
        assert response.status_code == 200
        restored = await sync(client, user, trashed["cursor"])
        assert {t["id"] for t in restored["tasks"]} == {task["id"], child["id"]}
        assert restored["deleted"]["tasks"] == []
        assert [p["task_count"] for p in restored["projects"]] == [2]
        assert restored["tags"] == [{"name": "home", "usage_count": 1}]
