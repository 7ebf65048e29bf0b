"""PUT /api/v1/tasks/{id}"""

import asyncio

import pytest

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS, etag, get_task


class TestReplaceTask:
    async def test_omitted_fields_return_to_defaults(
        self, client, user: UserHandle, task_factory: TaskFactory, project_factory
    ) -> None:
        project = await project_factory()
        task = await task_factory(
            title="Full", description="d", priority="high", due_date="2026-05-01",
            project_id=project["id"], tags=["x", "y"],
        )  # fmt: skip
        response = await client.put(
            f"{TASKS}/{task['id']}", json={"title": "Bare"}, headers=user.headers
        )
        assert response.status_code == 200, response.text
        replaced = response.json()
        assert replaced["title"] == "Bare"
        assert replaced["description"] is None
        assert replaced["priority"] == "medium"
        assert replaced["due_date"] is None
        assert replaced["project_id"] is None
        assert replaced["tags"] == []
        assert replaced["version"] == 2
        assert replaced["created_at"] == task["created_at"]
        assert replaced["updated_at"] > task["updated_at"]
        assert response.headers["etag"] == '"2"'
        assert (await get_task(client, user, task["id"])).json() == replaced

    async def test_sets_every_field(
        self, client, user: UserHandle, task_factory: TaskFactory, project_factory
    ) -> None:
        project = await project_factory()
        task = await task_factory(tags=["old"])
        body = {
            "title": "New", "description": "desc", "priority": "low", "due_date": "2027-01-01",
            "project_id": project["id"], "tags": ["Old", "new"],
        }  # fmt: skip
        response = await client.put(f"{TASKS}/{task['id']}", json=body, headers=user.headers)
        replaced = response.json()
        assert {k: replaced[k] for k in body} == {**body, "tags": ["new", "old"]}

    async def test_completion_is_not_part_of_the_body(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        await client.patch(f"{TASKS}/{task['id']}/complete", headers=user.headers)
        response = await client.put(
            f"{TASKS}/{task['id']}", json={"title": "t"}, headers=user.headers
        )
        assert response.json()["completed"] is True

    async def test_title_is_required(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.put(f"{TASKS}/{task['id']}", json={}, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.title"

    @pytest.mark.parametrize("field", ["id", "version", "created_at", "user_id"])
    async def test_server_owned_field_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory, field: str
    ) -> None:
        task = await task_factory()
        body = {"title": "t", field: task.get(field, "x")}
        response = await client.put(f"{TASKS}/{task['id']}", json=body, headers=user.headers)
        assert response.status_code == 422
        assert (await get_task(client, user, task["id"])).json() == task

    async def test_missing_project_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        body = {"title": "t", "project_id": MISSING_ID}
        response = await client.put(f"{TASKS}/{task['id']}", json=body, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "project_not_found"
        assert (await get_task(client, user, task["id"])).json() == task

    async def test_matching_if_match_succeeds(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.put(
            f"{TASKS}/{task['id']}", json={"title": "t"}, headers={**user.headers, **etag(task)}
        )
        assert response.status_code == 200
        assert response.json()["version"] == 2

    async def test_stale_if_match_is_412_and_changes_nothing(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(tags=["keep"])
        await client.put(
            f"{TASKS}/{task['id']}", json={"title": "v2", "tags": ["keep"]}, headers=user.headers
        )
        current = (await get_task(client, user, task["id"])).json()
        response = await client.put(
            f"{TASKS}/{task['id']}", json={"title": "lost"}, headers={**user.headers, **etag(task)}
        )
        assert response.status_code == 412
        assert response.json()["code"] == "precondition_failed"
        assert (await get_task(client, user, task["id"])).json() == current

    async def test_racing_writers_with_one_if_match(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        headers = {**user.headers, **etag(task)}
        responses = await asyncio.gather(
            *(
                client.put(
                    f"{TASKS}/{task['id']}",
                    json={"title": f"w{i}", "tags": [f"t{i}"]},
                    headers=headers,
                )
                for i in range(6)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [412] * 5
        winner = next(r.json() for r in responses if r.status_code == 200)
        final = (await get_task(client, user, task["id"])).json()
        assert final == winner
        assert final["version"] == 2
        assert final["tags"] == [f"t{final['title'][1:]}"]
