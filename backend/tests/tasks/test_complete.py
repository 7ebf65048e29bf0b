"""PATCH /api/v1/tasks/{id}/complete"""

import pytest

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS, TIMESTAMP, etag, get_task


def complete_url(task: dict) -> str:
    return f"{TASKS}/{task['id']}/complete"


class TestCompleteTask:
    async def test_empty_body_toggles(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        done = await client.patch(complete_url(task), headers=user.headers)
        assert done.status_code == 200
        assert done.json()["completed"] is True
        assert TIMESTAMP.match(done.json()["completed_at"])
        assert done.headers["etag"] == '"2"'
        undone = await client.patch(complete_url(task), headers=user.headers)
        assert undone.json()["completed"] is False
        assert undone.json()["completed_at"] is None
        assert undone.json()["version"] == 3

    async def test_empty_body_with_a_json_content_type_toggles(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            complete_url(task),
            content=b"",
            headers={**user.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 200
        assert response.json()["completed"] is True

    async def test_empty_object_toggles(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.patch(complete_url(task), json={}, headers=user.headers)
        assert response.json()["completed"] is True

    async def test_body_sets_the_state(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        first = await client.patch(
            complete_url(task), json={"completed": True}, headers=user.headers
        )
        again = await client.patch(
            complete_url(task), json={"completed": True}, headers=user.headers
        )
        assert first.json()["completed"] is again.json()["completed"] is True
        # completing a completed task keeps the time it was completed
        assert again.json()["completed_at"] == first.json()["completed_at"]
        cleared = await client.patch(
            complete_url(task), json={"completed": False}, headers=user.headers
        )
        assert cleared.json()["completed"] is False
        assert cleared.json()["completed_at"] is None
        assert (await get_task(client, user, task["id"])).json() == cleared.json()

    @pytest.mark.parametrize("body", [{"completed": "yes"}, {"completed": 1}, {"done": True}])
    async def test_invalid_body_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory, body: dict
    ) -> None:
        task = await task_factory()
        response = await client.patch(complete_url(task), json=body, headers=user.headers)
        assert response.status_code == 422

    async def test_stale_if_match_is_412(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        await client.patch(complete_url(task), headers=user.headers)
        response = await client.patch(complete_url(task), headers={**user.headers, **etag(task)})
        assert response.status_code == 412
        assert (await get_task(client, user, task["id"])).json()["completed"] is True

    async def test_missing_is_404(self, client, user: UserHandle) -> None:
        response = await client.patch(f"{TASKS}/{MISSING_ID}/complete", headers=user.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "task_not_found"
