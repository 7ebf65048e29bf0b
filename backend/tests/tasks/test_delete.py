"""DELETE /api/v1/tasks/{id}"""

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS, etag, get_task, tag_usage


class TestDeleteTask:
    async def test_deletes(self, client, user: UserHandle, task_factory: TaskFactory) -> None:
        task = await task_factory(tags=["kept"])
        response = await client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
        assert response.status_code == 204
        assert response.content == b""
        assert (await get_task(client, user, task["id"])).status_code == 404
        assert await tag_usage(client, user) == {"kept": 0}  # the tag stays, unused

    async def test_second_delete_is_404(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        await client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
        response = await client.delete(f"{TASKS}/{task['id']}", headers=user.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "task_not_found"

    async def test_missing_is_404(self, client, user: UserHandle) -> None:
        response = await client.delete(f"{TASKS}/{MISSING_ID}", headers=user.headers)
        assert response.status_code == 404

    async def test_matching_if_match_deletes(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.delete(
            f"{TASKS}/{task['id']}", headers={**user.headers, **etag(task)}
        )
        assert response.status_code == 204

    async def test_stale_if_match_is_412_and_keeps_the_task(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        await client.patch(f"{TASKS}/{task['id']}", json={"title": "v2"}, headers=user.headers)
        response = await client.delete(
            f"{TASKS}/{task['id']}", headers={**user.headers, **etag(task)}
        )
        assert response.status_code == 412
        assert (await get_task(client, user, task["id"])).status_code == 200
