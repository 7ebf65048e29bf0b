"""PATCH /api/v1/tasks/{id}"""

import asyncio

import pytest

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS, etag, get_task, list_tasks, tag_usage


class TestUpdateTask:
    async def test_changes_only_the_fields_sent(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(description="keep", priority="high", tags=["keep"])
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={"title": "  Renamed "}, headers=user.headers
        )
        assert response.status_code == 200
        updated = response.json()
        assert updated["title"] == "Renamed"
        assert updated["description"] == "keep"
        assert updated["priority"] == "high"
        assert updated["tags"] == ["keep"]
        assert updated["version"] == 2
        assert updated["updated_at"] > task["updated_at"]
        assert response.headers["etag"] == '"2"'

    async def test_explicit_null_clears_nullable_fields(
        self, client, user: UserHandle, task_factory: TaskFactory, project_factory
    ) -> None:
        project = await project_factory()
        task = await task_factory(
            description="d", due_date="2026-01-01", project_id=project["id"], priority="low"
        )
        body = {"description": None, "due_date": None, "project_id": None}
        response = await client.patch(f"{TASKS}/{task['id']}", json=body, headers=user.headers)
        updated = response.json()
        assert updated["description"] is None
        assert updated["due_date"] is None
        assert updated["project_id"] is None
        assert updated["priority"] == "low"

    @pytest.mark.parametrize("field", ["title", "priority", "tags", "completed"])
    async def test_null_for_a_required_field_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory, field: str
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={field: None}, headers=user.headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == f"body.{field}"
        assert (await get_task(client, user, task["id"])).json() == task

    async def test_tags_replace_the_set(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(tags=["a", "b"])
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={"tags": ["B", "c", "C"]}, headers=user.headers
        )
        assert response.json()["tags"] == ["b", "c"]  # "b" existed: its spelling is kept
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={"tags": []}, headers=user.headers
        )
        assert response.json()["tags"] == []

    async def test_empty_body_changes_nothing_but_the_version(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(tags=["t"])
        response = await client.patch(f"{TASKS}/{task['id']}", json={}, headers=user.headers)
        assert response.status_code == 200
        updated = response.json()
        for field in ("title", "description", "priority", "due_date", "project_id", "tags"):
            assert updated[field] == task[field]

    async def test_completed_can_be_patched(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        done = (
            await client.patch(
                f"{TASKS}/{task['id']}", json={"completed": True}, headers=user.headers
            )
        ).json()
        assert done["completed"] is True
        assert done["completed_at"] is not None
        undone = (
            await client.patch(
                f"{TASKS}/{task['id']}", json={"completed": False}, headers=user.headers
            )
        ).json()
        assert undone["completed_at"] is None

    async def test_search_follows_the_new_title(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(title="alpha", description="gamma")
        await client.patch(f"{TASKS}/{task['id']}", json={"title": "beta"}, headers=user.headers)
        assert (await list_tasks(client, user, search="alpha"))["total"] == 0
        assert (await list_tasks(client, user, search="beta"))["total"] == 1
        assert (await list_tasks(client, user, search="gamma"))["total"] == 1
        await client.patch(
            f"{TASKS}/{task['id']}", json={"description": None}, headers=user.headers
        )
        assert (await list_tasks(client, user, search="gamma"))["total"] == 0

    async def test_missing_project_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={"project_id": MISSING_ID}, headers=user.headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == "project_not_found"

    @pytest.mark.parametrize("field", ["id", "version", "updated_at", "completed_at", "owner"])
    async def test_server_owned_field_is_422(
        self, client, user: UserHandle, task_factory: TaskFactory, field: str
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            f"{TASKS}/{task['id']}", json={field: task.get(field, "x")}, headers=user.headers
        )
        assert response.status_code == 422

    @pytest.mark.parametrize("header", ['"1"', "1", "*", '"7", "1"'])
    async def test_matching_if_match_succeeds(
        self, client, user: UserHandle, task_factory: TaskFactory, header: str
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            f"{TASKS}/{task['id']}",
            json={"title": "t"},
            headers={**user.headers, "If-Match": header},
        )
        assert response.status_code == 200

    @pytest.mark.parametrize("header", ['"2"', 'W/"1"', "garbage", '""', '"-1"'])
    async def test_stale_weak_or_malformed_if_match_is_412(
        self, client, user: UserHandle, task_factory: TaskFactory, header: str
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            f"{TASKS}/{task['id']}",
            json={"title": "t"},
            headers={**user.headers, "If-Match": header},
        )
        assert response.status_code == 412
        assert response.json()["code"] == "precondition_failed"
        assert (await get_task(client, user, task["id"])).json() == task

    async def test_version_grows_on_every_change(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        for expected in range(2, 6):
            response = await client.patch(
                f"{TASKS}/{task['id']}", json={"title": f"v{expected}"}, headers=user.headers
            )
            assert response.json()["version"] == expected

    async def test_racing_writers_with_one_if_match(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        headers = {**user.headers, **etag(task)}
        responses = await asyncio.gather(
            *(
                client.patch(f"{TASKS}/{task['id']}", json={"title": f"w{i}"}, headers=headers)
                for i in range(8)
            )
        )
        assert sorted(r.status_code for r in responses) == [200] + [412] * 7
        winner = next(r.json() for r in responses if r.status_code == 200)
        assert (await get_task(client, user, task["id"])).json() == winner

    async def test_racing_writers_without_if_match_lose_no_version(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        responses = await asyncio.gather(
            *(
                client.patch(
                    f"{TASKS}/{task['id']}", json={"description": f"d{i}"}, headers=user.headers
                )
                for i in range(6)
            )
        )
        assert [r.status_code for r in responses] == [200] * 6
        assert sorted(r.json()["version"] for r in responses) == [2, 3, 4, 5, 6, 7]
        final = (await get_task(client, user, task["id"])).json()
        assert final["version"] == 7
        assert (await list_tasks(client, user, search=final["description"]))["total"] == 1


class TestUpdateKeepsDerivedState:
    """A PATCH recomputes what depends on the fields it changes, from the row it changes
    (on PostgreSQL in the UPDATE itself, without reading the row first)."""

    async def test_search_keeps_the_half_that_did_not_change(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(title="Ärger ΣΑΣ", description="Grüße")
        url = f"{TASKS}/{task['id']}"
        patched = await client.patch(url, json={"description": "Maß"}, headers=user.headers)
        assert patched.status_code == 200
        assert (await list_tasks(client, user, search="σας"))["total"] == 1  # title half kept
        assert (await list_tasks(client, user, search="MASS"))["total"] == 1  # casefolded ß
        assert (await list_tasks(client, user, search="grüsse"))["total"] == 0
        await client.patch(url, json={"title": "Neu"}, headers=user.headers)
        assert (await list_tasks(client, user, search="ärger"))["total"] == 0
        assert (await list_tasks(client, user, search="mass"))["total"] == 1  # description kept
        assert (await list_tasks(client, user, search="neu"))["total"] == 1

    async def test_completing_twice_keeps_the_first_time(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        url = f"{TASKS}/{task['id']}"
        first = (await client.patch(url, json={"completed": True}, headers=user.headers)).json()
        again = (await client.patch(url, json={"completed": True}, headers=user.headers)).json()
        assert again["completed_at"] == first["completed_at"]
        assert again["version"] == first["version"] + 1

    async def test_stale_if_match_wins_over_a_missing_project(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory()
        response = await client.patch(
            f"{TASKS}/{task['id']}",
            json={"project_id": MISSING_ID},
            headers={**user.headers, "If-Match": '"7"'},
        )
        assert response.status_code == 412

    async def test_a_refused_tag_change_changes_nothing(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(tags=["keep"])
        response = await client.patch(
            f"{TASKS}/{task['id']}",
            json={"tags": ["new"], "title": "changed"},
            headers={**user.headers, "If-Match": '"2"'},
        )
        assert response.status_code == 412
        assert (await get_task(client, user, task["id"])).json() == task
        assert "new" not in await tag_usage(client, user)

    async def test_if_match_any_on_a_missing_task_is_404(self, client, user: UserHandle) -> None:
        response = await client.patch(
            f"{TASKS}/{MISSING_ID}", json={"title": "x"}, headers={**user.headers, "If-Match": "*"}
        )
        assert response.status_code == 404
        assert response.json()["code"] == "task_not_found"

    async def test_tag_change_answers_the_new_state(
        self, client, user: UserHandle, task_factory: TaskFactory
    ) -> None:
        task = await task_factory(tags=["Home", "errand"])
        response = await client.patch(
            f"{TASKS}/{task['id']}",
            json={"tags": ["errand", "Zeta", "alpha", "ERRAND"]},
            headers={**user.headers, **etag(task)},
        )
        assert response.status_code == 200
        assert response.json()["tags"] == ["alpha", "errand", "Zeta"]
        assert response.headers["ETag"] == f'"{task["version"] + 1}"'
        assert (await get_task(client, user, task["id"])).json() == response.json()
