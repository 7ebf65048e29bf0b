"""Projects' version: the ETag of every answer, checked by If-Match on PATCH and DELETE
(412, nothing changed) and by If-None-Match on GET (304)."""

import asyncio

import httpx
import pytest

from tests.conftest import UserHandle
from tests.tasks.helpers import PROJECTS, create_project, create_task


def headers(user: UserHandle, **extra: str) -> dict[str, str]:
    return {**user.headers, **{k.replace("_", "-"): v for k, v in extra.items()}}


async def new_project(client: httpx.AsyncClient, user: UserHandle) -> dict:
    response = await client.post(PROJECTS, json={"name": "Home"}, headers=user.headers)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    assert response.json()["version"] == 1
    return response.json()


class TestVersion:
    async def test_it_grows_on_every_change_and_is_the_etag(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        project = await new_project(client, user)
        path = f"{PROJECTS}/{project['id']}"
        for n, change in enumerate(
            [{"name": "House"}, {"color": "#ff0000"}, {"description": None}], 2
        ):
            response = await client.patch(path, json=change, headers=user.headers)
            assert response.status_code == 200
            assert response.json()["version"] == n
            assert response.headers["etag"] == f'"{n}"'
        got = await client.get(path, headers=user.headers)
        assert got.headers["etag"] == '"4"'
        assert got.json()["version"] == 4
        listed = await client.get(PROJECTS, headers=user.headers)
        assert listed.json()["items"][0]["version"] == 4


class TestIfMatch:
    async def test_a_stale_version_is_412_and_changes_nothing(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        project = await new_project(client, user)
        path = f"{PROJECTS}/{project['id']}"
        ok = await client.patch(path, json={"name": "A"}, headers=headers(user, If_Match='"1"'))
        assert ok.status_code == 200
        stale = await client.patch(path, json={"name": "B"}, headers=headers(user, If_Match='"1"'))
        assert stale.status_code == 412
        assert stale.json()["code"] == "precondition_failed"
        assert (await client.get(path, headers=user.headers)).json()["name"] == "A"
        star = await client.patch(path, json={"name": "C"}, headers=headers(user, If_Match="*"))
        assert star.status_code == 200

    async def test_a_stale_delete_keeps_the_project_and_its_tasks(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        project = await create_project(client, user, name="Work")
        task = await create_task(client, user, title="filed", project_id=project["id"])
        path = f"{PROJECTS}/{project['id']}"
        await client.patch(path, json={"name": "Job"}, headers=user.headers)  # version 2
        for params in ({}, {"delete_tasks": "true"}):
            response = await client.delete(
                path, params=params, headers=headers(user, If_Match='"1"')
            )
            assert response.status_code == 412
        kept = await client.get(f"/api/v1/tasks/{task['id']}", headers=user.headers)
        assert kept.json()["project_id"] == project["id"]
        assert (await client.get(path, headers=user.headers)).json()["task_count"] == 1
        gone = await client.delete(path, headers=headers(user, If_Match='"2"'))
        assert gone.status_code == 204

    async def test_another_users_project_is_404_not_412(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        project = await new_project(client, other_user)
        path = f"{PROJECTS}/{project['id']}"
        for header in ('"1"', '"9"'):
            patched = await client.patch(
                path, json={"name": "x"}, headers=headers(user, If_Match=header)
            )
            assert patched.status_code == 404
            deleted = await client.delete(path, headers=headers(user, If_Match=header))
            assert deleted.status_code == 404

    async def test_racing_writers_with_one_version_one_wins(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        """Ten PATCHes with If-Match "1" at once, on the app's real pool: exactly one 200."""
        project = await new_project(client, user)
        path = f"{PROJECTS}/{project['id']}"
        responses = await asyncio.gather(
            *(
                client.patch(path, json={"name": f"n{i}"}, headers=headers(user, If_Match='"1"'))
                for i in range(10)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [412] * 9
        assert (await client.get(path, headers=user.headers)).json()["version"] == 2


class TestIfNoneMatch:
    @pytest.mark.parametrize("header", ['"1"', 'W/"1"', '"5", "1"', "*"])
    async def test_the_current_version_is_304(
        self, client: httpx.AsyncClient, user: UserHandle, header: str
    ) -> None:
        project = await new_project(client, user)
        response = await client.get(
            f"{PROJECTS}/{project['id']}", headers=headers(user, If_None_Match=header)
        )
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == '"1"'

    async def test_after_a_change_it_is_200(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        project = await new_project(client, user)
        path = f"{PROJECTS}/{project['id']}"
        await client.patch(path, json={"name": "Other"}, headers=user.headers)
        response = await client.get(path, headers=headers(user, If_None_Match='"1"'))
        assert response.status_code == 200
        assert response.json()["name"] == "Other"
