"""GET /api/v1/tasks/{id}"""

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS, get_task


class TestGetTask:
    async def test_returns_the_task_with_etag(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(title="Read", tags=["b", "A"])
        response = await get_task(client, user, task["id"])
        assert response.status_code == 200
        assert response.json() == task
        assert response.json()["tags"] == ["A", "b"]  # ordered ignoring case
        assert response.headers["etag"] == '"1"'

    async def test_missing_is_404_task_not_found(self, client, user: UserHandle) -> None:
        response = await get_task(client, user, MISSING_ID)
        assert response.status_code == 404
        problem = response.json()
        assert problem["code"] == "task_not_found"
        assert problem["detail"] == "Task not found"
        assert response.headers["content-type"] == "application/problem+json"

    async def test_malformed_id_is_422(self, client, user: UserHandle) -> None:
        response = await client.get(f"{TASKS}/not-a-uuid", headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "path.task_id"

    async def test_needs_authentication(self, client, task_factory: TaskFactory) -> None:
        task = await task_factory()
        response = await client.get(f"{TASKS}/{task['id']}")
        assert response.status_code == 401
