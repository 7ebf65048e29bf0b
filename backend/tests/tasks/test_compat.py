"""The older user-scoped routes: /api/{user_id}/tasks... and /api/{user_id}/tags."""

import pytest

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import TASKS, create_task, list_tasks


def compat(user: UserHandle, path: str = "/tasks") -> str:
    return f"/api/{user.id}{path}"


class TestCompatRoutes:
    async def test_same_task_routes_under_the_user_id(self, client, user: UserHandle) -> None:
        created = await client.post(
            compat(user), json={"title": "Old client"}, headers=user.headers
        )
        assert created.status_code == 201
        task = created.json()
        assert created.headers["location"] == f"{TASKS}/{task['id']}"
        task_url = compat(user, f"/tasks/{task['id']}")
        assert (await client.get(task_url, headers=user.headers)).json() == task
        listed = await client.get(compat(user), headers=user.headers)
        assert listed.json()["items"] == [task]
        patched = await client.patch(task_url, json={"tags": ["legacy"]}, headers=user.headers)
        assert patched.json()["tags"] == ["legacy"]
        done = await client.patch(f"{task_url}/complete", headers=user.headers)
        assert done.json()["completed"] is True
        replaced = await client.put(task_url, json={"title": "New"}, headers=user.headers)
        assert replaced.json()["version"] == 4
        tags = await client.get(compat(user, "/tags"), headers=user.headers)
        assert tags.json() == [{"name": "legacy", "usage_count": 0}]
        assert (await client.delete(task_url, headers=user.headers)).status_code == 204
        assert (await list_tasks(client, user))["total"] == 0

    async def test_the_id_may_be_written_in_upper_case(self, client, user: UserHandle) -> None:
        response = await client.get(f"/api/{user.id.upper()}/tasks", headers=user.headers)
        assert response.status_code == 200

    @pytest.mark.parametrize(
        ("method", "path"),
        [("GET", "/tasks"), ("POST", "/tasks"), ("GET", "/tags"), ("GET", "/tasks/{task}"),
         ("PATCH", "/tasks/{task}/complete"), ("DELETE", "/tasks/{task}")],
    )  # fmt: skip
    async def test_another_users_id_is_403(
        self, client, user: UserHandle, other_user: UserHandle, method: str, path: str
    ) -> None:
        task = await create_task(client, other_user)
        url = compat(other_user, path.format(task=task["id"]))
        response = await client.request(method, url, json={"title": "x"}, headers=user.headers)
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
        assert (await list_tasks(client, other_user))["items"] == [task]

    @pytest.mark.parametrize(
        "user_id", ["not-a-uuid", "v2", "00000000-0000-4000-8000-000000000000"]
    )
    async def test_any_other_id_is_403(self, client, user: UserHandle, user_id: str) -> None:
        response = await client.get(f"/api/{user_id}/tasks", headers=user.headers)
        assert response.status_code == 403

    async def test_needs_authentication(self, client, user: UserHandle) -> None:
        assert (await client.get(compat(user))).status_code == 401

    async def test_v1_is_never_taken_for_a_user_id(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        await task_factory()
        response = await client.get("/api/v1/tasks", headers=user.headers)
        assert response.status_code == 200
        assert response.json()["total"] == 1

    async def test_marked_deprecated_in_openapi(self, client) -> None:
        paths = (await client.get("/openapi.json")).json()["paths"]
        for path in ("/api/{user_id}/tasks", "/api/{user_id}/tasks/{task_id}",
                     "/api/{user_id}/tasks/{task_id}/complete", "/api/{user_id}/tags"):  # fmt: skip
            for operation in paths[path].values():
                assert operation["deprecated"] is True
                assert "compat" in operation["tags"]
                assert "403" in operation["responses"]
        for operation in paths["/api/v1/tasks"].values():
            assert not operation.get("deprecated")
            assert "compat" not in operation["tags"]
