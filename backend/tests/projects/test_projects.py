"""/api/v1/projects"""

import asyncio
import uuid

import pytest

from app.core.errors import InvalidToken
from app.projects import service
from app.projects.schemas import ProjectCreate
from tests.conftest import UserHandle, recorded_statements
from tests.tasks.helpers import (
    MISSING_ID,
    PROJECTS,
    TAGS,
    TASKS,
    TIMESTAMP,
    get_task,
    list_tasks,
)


class TestCreateProject:
    async def test_creates_with_location(self, client, user: UserHandle) -> None:
        response = await client.post(
            PROJECTS,
            json={"name": "  Home ", "description": "Around the house", "color": "#1E90FF"},
            headers=user.headers,
        )
        assert response.status_code == 201
        project = response.json()
        assert set(project) == {
            "id", "name", "description", "color", "task_count", "created_at", "updated_at", "version",
        }  # fmt: skip
        assert project["name"] == "Home"
        assert project["description"] == "Around the house"
        assert project["color"] == "#1e90ff"
        assert project["task_count"] == 0
        assert TIMESTAMP.match(project["created_at"])
        assert project["created_at"] == project["updated_at"]
        assert response.headers["location"] == f"{PROJECTS}/{project['id']}"
        fetched = await client.get(response.headers["location"], headers=user.headers)
        assert fetched.json() == project

    async def test_name_only(self, project_factory) -> None:
        project = await project_factory(name="Work")
        assert (project["description"], project["color"]) == (None, None)

    @pytest.mark.parametrize("taken", ["home", "HOME", " Home  ", "hOmE"])
    async def test_name_taken_ignoring_case_is_409(
        self, client, user: UserHandle, project_factory, taken: str
    ) -> None:
        await project_factory(name="Home")
        response = await client.post(PROJECTS, json={"name": taken}, headers=user.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "project_name_taken"

    async def test_unicode_names_compare_ignoring_case(
        self, client, user: UserHandle, project_factory
    ) -> None:
        await project_factory(name="ÉTÉ")
        response = await client.post(PROJECTS, json={"name": "été"}, headers=user.headers)
        assert response.status_code == 409
        other = await client.post(PROJECTS, json={"name": "ete"}, headers=user.headers)
        assert other.status_code == 201

    async def test_same_name_for_another_user(
        self, project_factory, other_user: UserHandle
    ) -> None:
        await project_factory(name="Home")
        project = await project_factory(owner=other_user, name="Home")
        assert project["name"] == "Home"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "body.name"),
            ({"name": "   "}, "body.name"),
            ({"name": "n" * 101}, "body.name"),
            ({"name": "x", "description": "d" * 1001}, "body.description"),
            ({"name": "x", "color": "blue"}, "body.color"),
            ({"name": "x", "color": "#12345"}, "body.color"),
            ({"name": "x", "task_count": 3}, "body.task_count"),
            ({"name": "x", "id": MISSING_ID}, "body.id"),
            ({"name": "x", "user_id": MISSING_ID}, "body.user_id"),
        ],
    )
    async def test_invalid_body_is_422(
        self, client, user: UserHandle, body: dict, field: str
    ) -> None:
        response = await client.post(PROJECTS, json=body, headers=user.headers)
        assert response.status_code == 422
        assert field in [error["field"] for error in response.json()["errors"]]

    async def test_name_limit_after_trimming(self, project_factory) -> None:
        project = await project_factory(name=" " + "n" * 100 + " ")
        assert len(project["name"]) == 100

    async def test_racing_creates_with_one_name(self, client, user: UserHandle) -> None:
        responses = await asyncio.gather(
            *(client.post(PROJECTS, json={"name": "Race"}, headers=user.headers) for _ in range(6))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 5
        assert all(
            r.json()["code"] == "project_name_taken" for r in responses if r.status_code == 409
        )
        listed = (await client.get(PROJECTS, headers=user.headers)).json()
        assert listed["total"] == 1

    async def test_racing_creates_with_names_differing_in_case(
        self, client, user: UserHandle
    ) -> None:
        names = ["Race", "RACE", "race", "rAcE"]
        responses = await asyncio.gather(
            *(client.post(PROJECTS, json={"name": n}, headers=user.headers) for n in names)
        )
        assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]

    async def test_needs_authentication(self, client) -> None:
        assert (await client.post(PROJECTS, json={"name": "x"})).status_code == 401

    async def test_account_deleted_meanwhile_is_401(self, app) -> None:
        """The session was checked, then the account went before the INSERT: the
        foreign key says so, answered like a revoked token rather than a 500."""
        with pytest.raises(InvalidToken):
            await service.create_project(app.state.database, uuid.uuid4(), ProjectCreate(name="x"))


class TestListProjects:
    async def test_by_name_ignoring_case_with_counts(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        for name in ("beta", "Alpha", "gamma"):
            await project_factory(name=name)
        alpha = (await client.get(PROJECTS, headers=user.headers)).json()["items"][0]
        for _ in range(2):
            await task_factory(project_id=alpha["id"])
        await task_factory()
        body = (await client.get(PROJECTS, headers=user.headers)).json()
        assert [p["name"] for p in body["items"]] == ["Alpha", "beta", "gamma"]
        assert [p["task_count"] for p in body["items"]] == [2, 0, 0]
        assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)

    async def test_pagination(self, client, user: UserHandle, project_factory) -> None:
        for i in range(5):
            await project_factory(name=f"p{i}")
        body = (
            await client.get(PROJECTS, params={"limit": 2, "offset": 3}, headers=user.headers)
        ).json()
        assert [p["name"] for p in body["items"]] == ["p3", "p4"]
        assert body["total"] == 5
        past = (await client.get(PROJECTS, params={"offset": 9}, headers=user.headers)).json()
        assert (past["items"], past["total"]) == ([], 5)

    async def test_completed_tasks_count_too(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        task = await task_factory(project_id=project["id"])
        await client.patch(f"{TASKS}/{task['id']}/complete", headers=user.headers)
        body = (await client.get(PROJECTS, headers=user.headers)).json()
        assert body["items"][0]["task_count"] == 1

    @pytest.mark.parametrize(
        "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}]
    )
    async def test_out_of_range_is_422(self, client, user: UserHandle, params: dict) -> None:
        response = await client.get(PROJECTS, params=params, headers=user.headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == f"query.{next(iter(params))}"


class TestGetProject:
    async def test_with_task_count(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        await task_factory(project_id=project["id"])
        response = await client.get(f"{PROJECTS}/{project['id']}", headers=user.headers)
        assert response.status_code == 200
        assert response.json() == {**project, "task_count": 1}

    async def test_missing_is_404(self, client, user: UserHandle) -> None:
        response = await client.get(f"{PROJECTS}/{MISSING_ID}", headers=user.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "project_not_found"

    async def test_malformed_id_is_422(self, client, user: UserHandle) -> None:
        response = await client.get(f"{PROJECTS}/nope", headers=user.headers)
        assert response.status_code == 422


class TestUpdateProject:
    async def test_changes_only_what_is_sent(
        self, client, user: UserHandle, project_factory
    ) -> None:
        project = await project_factory(name="Home", description="d", color="#000000")
        response = await client.patch(
            f"{PROJECTS}/{project['id']}", json={"name": " House "}, headers=user.headers
        )
        assert response.status_code == 200
        updated = response.json()
        assert updated["name"] == "House"
        assert (updated["description"], updated["color"]) == ("d", "#000000")
        assert updated["updated_at"] > project["updated_at"]
        assert updated["created_at"] == project["created_at"]

    async def test_null_clears_description_and_color(
        self, client, user: UserHandle, project_factory
    ) -> None:
        project = await project_factory(description="d", color="#000000")
        response = await client.patch(
            f"{PROJECTS}/{project['id']}",
            json={"description": None, "color": None},
            headers=user.headers,
        )
        assert (response.json()["description"], response.json()["color"]) == (None, None)

    async def test_null_name_is_422(self, client, user: UserHandle, project_factory) -> None:
        project = await project_factory()
        response = await client.patch(
            f"{PROJECTS}/{project['id']}", json={"name": None}, headers=user.headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.name"

    async def test_rename_to_a_taken_name_is_409(
        self, client, user: UserHandle, project_factory
    ) -> None:
        await project_factory(name="Home")
        work = await project_factory(name="Work")
        response = await client.patch(
            f"{PROJECTS}/{work['id']}", json={"name": "HOME"}, headers=user.headers
        )
        assert response.status_code == 409
        assert response.json()["code"] == "project_name_taken"
        unchanged = await client.get(f"{PROJECTS}/{work['id']}", headers=user.headers)
        assert unchanged.json()["name"] == "Work"

    async def test_rename_to_another_case_of_its_own_name(
        self, client, user: UserHandle, project_factory
    ) -> None:
        project = await project_factory(name="home")
        response = await client.patch(
            f"{PROJECTS}/{project['id']}", json={"name": "Home"}, headers=user.headers
        )
        assert response.status_code == 200
        assert response.json()["name"] == "Home"

    async def test_keeps_its_task_count(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        await task_factory(project_id=project["id"])
        response = await client.patch(
            f"{PROJECTS}/{project['id']}", json={"color": "#ffffff"}, headers=user.headers
        )
        assert response.json()["task_count"] == 1

    async def test_missing_is_404(self, client, user: UserHandle) -> None:
        response = await client.patch(
            f"{PROJECTS}/{MISSING_ID}", json={"name": "x"}, headers=user.headers
        )
        assert response.status_code == 404

    async def test_racing_a_delete_is_200_or_404(
        self, client, user: UserHandle, project_factory
    ) -> None:
        project = await project_factory()
        url = f"{PROJECTS}/{project['id']}"
        updated, deleted = await asyncio.gather(
            client.patch(url, json={"name": "Renamed"}, headers=user.headers),
            client.delete(url, headers=user.headers),
        )
        assert deleted.status_code == 204
        assert updated.status_code in (200, 404)
        if updated.status_code == 404:
            assert updated.json()["code"] == "project_not_found"
        assert (await client.get(url, headers=user.headers)).status_code == 404


class TestDeleteProject:
    async def test_tasks_stay_without_a_project(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        task = await task_factory(project_id=project["id"], tags=["t"])
        response = await client.delete(f"{PROJECTS}/{project['id']}", headers=user.headers)
        assert response.status_code == 204
        assert (
            await client.get(f"{PROJECTS}/{project['id']}", headers=user.headers)
        ).status_code == 404
        after = (await get_task(client, user, task["id"])).json()
        assert after["project_id"] is None
        assert after["tags"] == ["t"]
        assert after["version"] == task["version"] + 1  # a change, so a new version

    @pytest.mark.parametrize("flag", ["true", "1"])
    async def test_delete_tasks_true_deletes_them(
        self, client, user: UserHandle, project_factory, task_factory, flag: str
    ) -> None:
        project = await project_factory()
        other = await project_factory(name="Other")
        await task_factory(project_id=project["id"])
        kept = await task_factory(project_id=other["id"])
        loose = await task_factory()
        response = await client.delete(
            f"{PROJECTS}/{project['id']}", params={"delete_tasks": flag}, headers=user.headers
        )
        assert response.status_code == 204
        body = await list_tasks(client, user)
        assert {t["id"] for t in body["items"]} == {kept["id"], loose["id"]}

    async def test_delete_tasks_false_keeps_them(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        await task_factory(project_id=project["id"])
        await client.delete(
            f"{PROJECTS}/{project['id']}", params={"delete_tasks": "false"}, headers=user.headers
        )
        assert (await list_tasks(client, user, project_id="none"))["total"] == 1

    async def test_bad_flag_is_422(self, client, user: UserHandle, project_factory) -> None:
        project = await project_factory()
        response = await client.delete(
            f"{PROJECTS}/{project['id']}", params={"delete_tasks": "maybe"}, headers=user.headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.delete_tasks"

    async def test_missing_is_404(self, client, user: UserHandle) -> None:
        response = await client.delete(f"{PROJECTS}/{MISSING_ID}", headers=user.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "project_not_found"

    async def test_name_is_free_again(self, client, user: UserHandle, project_factory) -> None:
        project = await project_factory(name="Reuse")
        await client.delete(f"{PROJECTS}/{project['id']}", headers=user.headers)
        assert (
            await client.post(PROJECTS, json={"name": "reuse"}, headers=user.headers)
        ).status_code == 201

    async def test_racing_deletes_one_204_the_others_404(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        task = await task_factory(project_id=project["id"])
        responses = await asyncio.gather(
            *(client.delete(f"{PROJECTS}/{project['id']}", headers=user.headers) for _ in range(4))
        )
        assert sorted(r.status_code for r in responses) == [204, 404, 404, 404]
        assert all(
            r.json()["code"] == "project_not_found" for r in responses if r.status_code == 404
        )
        after = (await get_task(client, user, task["id"])).json()
        assert after["project_id"] is None
        assert after["version"] == task["version"] + 1  # detached once

    async def test_racing_a_tag_deletion_on_the_same_tasks(
        self, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        """Both lock many task rows, each in id order, so neither deadlocks. (Locked in
        scan order, by project and by tag, they deadlocked in most runs: a 500.)"""
        for round_ in range(6):
            project = await project_factory(name=f"p{round_}")
            tag = f"t{round_}"
            tasks = await asyncio.gather(
                *(task_factory(project_id=project["id"], tags=[tag]) for _ in range(40))
            )
            responses = await asyncio.gather(
                client.delete(f"{TAGS}/{tag}", headers=user.headers),
                client.delete(f"{PROJECTS}/{project['id']}", headers=user.headers),
            )
            assert [r.status_code for r in responses] == [204, 204]
            after = (await get_task(client, user, tasks[0]["id"])).json()
            assert (after["project_id"], after["tags"]) == (None, [])
            assert after["version"] == tasks[0]["version"] + 2


class TestRoundTrips:
    """What each route costs besides the caller's session check: one statement, or one
    transaction for a delete."""

    @staticmethod
    def ours(statements: list[str]) -> list[str]:
        return [s.split(None, 1)[0] for s in statements if "user_session" not in s]

    async def test_single_statement_routes(
        self, app, client, user: UserHandle, project_factory, task_factory
    ) -> None:
        project = await project_factory()
        await task_factory(project_id=project["id"])
        url = f"{PROJECTS}/{project['id']}"
        calls = {
            "create": lambda: client.post(PROJECTS, json={"name": "x"}, headers=user.headers),
            "list": lambda: client.get(PROJECTS, headers=user.headers),
            "list past the end": lambda: client.get(
                PROJECTS, params={"offset": 10}, headers=user.headers
            ),
            "get": lambda: client.get(url, headers=user.headers),
            "update": lambda: client.patch(url, json={"name": "y"}, headers=user.headers),
            "update missing": lambda: client.patch(
                f"{PROJECTS}/{MISSING_ID}", json={"name": "y"}, headers=user.headers
            ),
        }
        for name, call in calls.items():
            with recorded_statements(app) as seen:
                response = await call()
            assert response.status_code < 500, name
            assert len(self.ours(seen)) == 1, (name, seen)

    @pytest.mark.parametrize("status", [204, 404])
    async def test_delete_is_one_transaction(
        self, app, client, user: UserHandle, project_factory, status: int
    ) -> None:
        project_id = (await project_factory())["id"] if status == 204 else MISSING_ID
        with recorded_statements(app) as seen:
            response = await client.delete(f"{PROJECTS}/{project_id}", headers=user.headers)
        assert response.status_code == status
        end = "COMMIT;" if status == 204 else "ROLLBACK;"
        assert self.ours(seen) == ["BEGIN;", "WITH", "DELETE", end]
