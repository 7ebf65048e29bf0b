"""POST /api/v1/tasks"""

import uuid

import pytest

from tests.conftest import UserHandle
from tests.tasks.conftest import TaskFactory
from tests.tasks.helpers import MISSING_ID, TASKS, TIMESTAMP, get_task


class TestCreateTask:
    async def test_defaults(self, client, user: UserHandle) -> None:
        response = await client.post(TASKS, json={"title": "Buy milk"}, headers=user.headers)
        assert response.status_code == 201
        task = response.json()
        assert set(task) == {
            "id", "title", "description", "completed", "completed_at", "priority",
            "due_date", "due_at", "time_zone", "recurrence", "last_completed_at",
            "project_id", "tags", "created_at", "updated_at", "version",
            "parent_id", "position",
        }  # fmt: skip
        assert uuid.UUID(task["id"])
        assert task["title"] == "Buy milk"
        assert task["description"] is None
        assert task["completed"] is False
        assert task["completed_at"] is None
        assert task["priority"] == "medium"
        assert task["due_date"] is None
        assert task["project_id"] is None
        assert task["tags"] == []
        assert task["version"] == 1
        assert task["parent_id"] is None
        assert isinstance(task["position"], str)
        assert TIMESTAMP.match(task["created_at"])
        assert task["created_at"] == task["updated_at"]

    async def test_location_and_etag(self, client, user: UserHandle) -> None:
        response = await client.post(TASKS, json={"title": "x"}, headers=user.headers)
        task = response.json()
        assert response.headers["location"] == f"{TASKS}/{task['id']}"
        assert response.headers["etag"] == '"1"'
        fetched = await client.get(response.headers["location"], headers=user.headers)
        assert fetched.json() == task

    async def test_every_field(self, client, user: UserHandle, project_factory) -> None:
        project = await project_factory(name="Home")
        body = {
            "title": "Paint the fence",
            "description": "Two coats\nthen <b>dry</b>",
            "priority": "high",
            "due_date": "2026-12-24",
            "project_id": project["id"],
            "tags": ["garden", "weekend"],
        }
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["description"] == "Two coats\nthen dry"
        assert task["priority"] == "high"
        assert task["due_date"] == "2026-12-24"
        assert task["project_id"] == project["id"]
        assert task["tags"] == ["garden", "weekend"]
        assert (await get_task(client, user, task["id"])).json() == task

    @pytest.mark.parametrize("day", ["9999-12-30", "0001-01-02"])
    async def test_the_extreme_due_dates_come_back(self, client, user: UserHandle, day) -> None:
        response = await client.post(
            TASKS, json={"title": "x", "due_date": day}, headers=user.headers
        )
        assert response.status_code == 201, response.text
        task = response.json()
        assert task["due_date"] == day
        assert (await get_task(client, user, task["id"])).json()["due_date"] == day
        listed = (await client.get(TASKS, headers=user.headers)).json()["items"]
        assert [t["due_date"] for t in listed if t["id"] == task["id"]] == [day]

    async def test_title_is_trimmed(self, task_factory: TaskFactory) -> None:
        task = await task_factory(title="   Call mum \t")
        assert task["title"] == "Call mum"

    async def test_plain_text_survives(self, task_factory: TaskFactory) -> None:
        task = await task_factory(title="a < b && c > d", description="Tom & Jerry")
        assert task["title"] == "a < b && c > d"
        assert task["description"] == "Tom & Jerry"

    async def test_description_stored_as_sent(self, task_factory: TaskFactory) -> None:
        task = await task_factory(description="  spaced  out  ")
        assert task["description"] == "  spaced  out  "

    @pytest.mark.parametrize(
        ("title", "length"), [("x" * 200, 200), ("  " + "y" * 200 + "  ", 200), ("é" * 200, 200)]
    )
    async def test_title_limits_apply_after_trimming(
        self, task_factory: TaskFactory, title: str, length: int
    ) -> None:
        task = await task_factory(title=title)
        assert len(task["title"]) == length

    async def test_tags_trimmed_collapsed_and_deduplicated(self, task_factory: TaskFactory) -> None:
        task = await task_factory(tags=["  Deep   work ", "deep work", "DEEP WORK", "Home"])
        assert task["tags"] == ["Deep work", "Home"]

    async def test_tags_at_the_limits(self, task_factory: TaskFactory) -> None:
        tags = [f"tag-{i:02d}" for i in range(20)]
        task = await task_factory(tags=[*tags[:-1], "z" * 50])
        assert len(task["tags"]) == 20

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "body.title"),
            ({"title": ""}, "body.title"),
            ({"title": "   "}, "body.title"),
            ({"title": "<b></b>"}, "body.title"),
            ({"title": "x" * 201}, "body.title"),
            ({"title": 42}, "body.title"),
            ({"title": None}, "body.title"),
            ({"title": "x", "description": "d" * 1001}, "body.description"),
            ({"title": "x", "priority": "urgent"}, "body.priority"),
            ({"title": "x", "due_date": "tomorrow"}, "body.due_date"),
            ({"title": "x", "due_date": "2026-02-30"}, "body.due_date"),
            # date.max / date.min: asyncpg would store them as infinity / -infinity
            ({"title": "x", "due_date": "9999-12-31"}, "body.due_date"),
            ({"title": "x", "due_date": "0001-01-01"}, "body.due_date"),
            ({"title": "x", "project_id": "not-a-uuid"}, "body.project_id"),
            ({"title": "x", "tags": "one"}, "body.tags"),
            ({"title": "x", "tags": [f"t{i}" for i in range(21)]}, "body.tags"),
            ({"title": "x", "tags": ["a" * 51]}, "body.tags.0"),
            ({"title": "x", "tags": ["ok", "   "]}, "body.tags.1"),
            ({"title": "x", "tags": [None]}, "body.tags.0"),
        ],
    )
    async def test_invalid_body_is_422_naming_the_field(
        self, client, user: UserHandle, body: dict, field: str
    ) -> None:
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert field in [error["field"] for error in problem["errors"]]

    @pytest.mark.parametrize(
        "field",
        ["id", "user_id", "owner", "created_at", "updated_at", "version", "completed_at",
         "completed", "title_key", "search_text", "unknown"],
    )  # fmt: skip
    async def test_server_owned_or_unknown_field_is_422(
        self, client, user: UserHandle, field: str
    ) -> None:
        body = {"title": "x", field: "2026-01-01T00:00:00Z"}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == f"body.{field}"

    async def test_control_character_is_422(self, client, user: UserHandle) -> None:
        response = await client.post(TASKS, json={"title": "a\u0000b"}, headers=user.headers)
        assert response.status_code == 422

    async def test_missing_project_is_422_project_not_found(self, client, user: UserHandle) -> None:
        body = {"title": "x", "project_id": MISSING_ID}
        response = await client.post(TASKS, json=body, headers=user.headers)
        assert response.status_code == 422
        problem = response.json()
        assert problem["code"] == "project_not_found"
        assert problem["errors"] == [
            {
                "field": "body.project_id",
                "message": "Project not found",
                "type": "project_not_found",
            }
        ]

    async def test_other_users_project_is_answered_like_a_missing_one(
        self, client, user: UserHandle, other_user: UserHandle, project_factory
    ) -> None:
        foreign = await project_factory(owner=other_user)
        missing = await client.post(
            TASKS, json={"title": "x", "project_id": MISSING_ID}, headers=user.headers
        )
        response = await client.post(
            TASKS, json={"title": "x", "project_id": foreign["id"]}, headers=user.headers
        )
        assert response.status_code == 422
        assert {**response.json(), "request_id": None} == {**missing.json(), "request_id": None}
        listed = await client.get(TASKS, headers=user.headers)
        assert listed.json()["total"] == 0

    async def test_failed_create_leaves_no_tags_behind(self, client, user: UserHandle) -> None:
        body = {"title": "x", "project_id": MISSING_ID, "tags": ["orphan"]}
        await client.post(TASKS, json=body, headers=user.headers)
        assert (await client.get("/api/v1/tags", headers=user.headers)).json() == []

    async def test_needs_authentication(self, client) -> None:
        response = await client.post(TASKS, json={"title": "x"})
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"

    async def test_other_content_type_is_415(self, client, user: UserHandle) -> None:
        response = await client.post(
            TASKS, content=b"title=x", headers={**user.headers, "Content-Type": "text/plain"}
        )
        assert response.status_code == 415
