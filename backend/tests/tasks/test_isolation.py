"""User B cannot see, change or detect user A's tasks, projects or tags (and the other
way round): every route answers exactly as for something that does not exist."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.auth.external import better_auth_claims, external_user, hs256_token
from tests.conftest import UserFactory, UserHandle
from tests.tasks.helpers import (
    MISSING_ID,
    PROJECTS,
    TAGS,
    TASKS,
    count_rows,
    create_project,
    create_task,
    get_task,
    list_tasks,
    tag_usage,
    without_request_id,
)

Call = Callable[[httpx.AsyncClient, UserHandle, str], Awaitable[httpx.Response]]

# Each route that names a task, called by `caller` with a task id.
TASK_ROUTES: dict[str, Call] = {
    "get": lambda c, u, i: c.get(f"{TASKS}/{i}", headers=u.headers),
    "put": lambda c, u, i: c.put(f"{TASKS}/{i}", json={"title": "mine now"}, headers=u.headers),
    "patch": lambda c, u, i: c.patch(f"{TASKS}/{i}", json={"title": "mine"}, headers=u.headers),
    "complete": lambda c, u, i: c.patch(f"{TASKS}/{i}/complete", headers=u.headers),
    "delete": lambda c, u, i: c.delete(f"{TASKS}/{i}", headers=u.headers),
    "put if-match": lambda c, u, i: c.put(
        f"{TASKS}/{i}", json={"title": "x"}, headers={**u.headers, "If-Match": '"1"'}
    ),
}
PROJECT_ROUTES: dict[str, Call] = {
    "get": lambda c, u, i: c.get(f"{PROJECTS}/{i}", headers=u.headers),
    "patch": lambda c, u, i: c.patch(f"{PROJECTS}/{i}", json={"name": "mine"}, headers=u.headers),
    "delete": lambda c, u, i: c.delete(f"{PROJECTS}/{i}", headers=u.headers),
    "delete with tasks": lambda c, u, i: c.delete(
        f"{PROJECTS}/{i}", params={"delete_tasks": "true"}, headers=u.headers
    ),
}
TAG_ROUTES: dict[str, Call] = {
    "rename": lambda c, u, n: c.patch(f"{TAGS}/{n}", json={"name": "mine"}, headers=u.headers),
    "delete": lambda c, u, n: c.delete(f"{TAGS}/{n}", headers=u.headers),
}


@pytest.fixture(params=["a->b", "b->a", "local->external", "external->local", "ext->ext"])
async def pair(
    request, client: httpx.AsyncClient, user_factory: UserFactory
) -> tuple[UserHandle, UserHandle]:
    """(owner, intruder), in both directions, between our own accounts and accounts of
    an external identity provider (tests/auth/external.py)."""

    async def external() -> UserHandle:
        return await external_user(client, hs256_token(better_auth_claims()))

    a, b = await user_factory(), await user_factory()
    return {
        "a->b": (a, b),
        "b->a": (b, a),
        "local->external": (a, await external()),
        "external->local": (await external(), a),
        "ext->ext": (await external(), await external()),
    }[request.param]


async def owned_world(client: httpx.AsyncClient, owner: UserHandle) -> dict[str, Any]:
    project = await create_project(client, owner, name="Secret")
    task = await create_task(
        client, owner, title="Secret plan", project_id=project["id"], tags=["secret"]
    )
    return {"project": project, "task": task}


class TestTaskIsolation:
    @pytest.mark.parametrize("route", TASK_ROUTES)
    async def test_others_task_is_a_missing_task(self, client, pair, route: str) -> None:
        owner, intruder = pair
        world = await owned_world(client, owner)
        missing = await TASK_ROUTES[route](client, intruder, MISSING_ID)
        response = await TASK_ROUTES[route](client, intruder, world["task"]["id"])
        assert response.status_code == missing.status_code == 404
        assert without_request_id(response.json()) == without_request_id(missing.json())
        assert response.headers.get("etag") is None
        after = await get_task(client, owner, world["task"]["id"])
        assert after.json() == world["task"]  # unchanged, not deleted

    async def test_lists_and_totals_exclude_others(self, client, pair) -> None:
        owner, intruder = pair
        world = await owned_world(client, owner)
        await create_task(client, intruder, title="Mine")
        body = await list_tasks(client, intruder)
        assert body["total"] == 1
        assert [t["title"] for t in body["items"]] == ["Mine"]
        for params in (
            {"search": "secret"},
            {"tags": "secret"},
            {"project_id": world["project"]["id"]},
            {"status": "pending", "project_id": "none", "search": "plan"},
        ):
            assert await list_tasks(client, intruder, **params) == {
                "items": [], "total": 0, "limit": 50, "offset": 0, "next_cursor": None,
            }  # fmt: skip

    async def test_cannot_file_a_task_into_others_project(self, client, pair) -> None:
        owner, intruder = pair
        world = await owned_world(client, owner)
        mine = await create_task(client, intruder)
        project_id = world["project"]["id"]
        for call in (
            client.post(TASKS, json={"title": "x", "project_id": project_id}, headers=intruder.headers),
            client.put(f"{TASKS}/{mine['id']}", json={"title": "x", "project_id": project_id}, headers=intruder.headers),
            client.patch(f"{TASKS}/{mine['id']}", json={"project_id": project_id}, headers=intruder.headers),
        ):  # fmt: skip
            response = await call
            assert response.status_code == 422
            assert response.json()["code"] == "project_not_found"
        projects = await client.get(f"{PROJECTS}/{project_id}", headers=owner.headers)
        assert projects.json()["task_count"] == 1

    async def test_tagging_never_touches_others_tags(self, client, pair) -> None:
        owner, intruder = pair
        await owned_world(client, owner)
        await create_task(client, intruder, tags=["SECRET"])
        assert await tag_usage(client, owner) == {"secret": 1}
        assert await tag_usage(client, intruder) == {"SECRET": 1}  # their own, own spelling


class TestProjectIsolation:
    @pytest.mark.parametrize("route", PROJECT_ROUTES)
    async def test_others_project_is_a_missing_project(self, client, pair, route: str) -> None:
        owner, intruder = pair
        world = await owned_world(client, owner)
        missing = await PROJECT_ROUTES[route](client, intruder, MISSING_ID)
        response = await PROJECT_ROUTES[route](client, intruder, world["project"]["id"])
        assert response.status_code == missing.status_code == 404
        assert response.json()["code"] == "project_not_found"
        assert without_request_id(response.json()) == without_request_id(missing.json())
        after = await client.get(f"{PROJECTS}/{world['project']['id']}", headers=owner.headers)
        assert after.json() == {**world["project"], "task_count": 1}
        assert (await get_task(client, owner, world["task"]["id"])).json() == world["task"]

    async def test_list_and_counts_exclude_others(self, client, pair) -> None:
        owner, intruder = pair
        await owned_world(client, owner)
        mine = await create_project(client, intruder, name="Secret")  # same name: no clash
        await create_task(client, intruder, project_id=mine["id"])
        body = (await client.get(PROJECTS, headers=intruder.headers)).json()
        assert body["total"] == 1
        assert [(p["id"], p["task_count"]) for p in body["items"]] == [(mine["id"], 1)]


class TestTagIsolation:
    @pytest.mark.parametrize("route", TAG_ROUTES)
    async def test_others_tag_is_a_missing_tag(self, client, pair, route: str) -> None:
        owner, intruder = pair
        world = await owned_world(client, owner)
        missing = await TAG_ROUTES[route](client, intruder, "no-such-tag")
        response = await TAG_ROUTES[route](client, intruder, "secret")
        assert response.status_code == missing.status_code == 404
        assert response.json()["code"] == "tag_not_found"
        assert without_request_id(response.json()) == without_request_id(missing.json())
        assert await tag_usage(client, owner) == {"secret": 1}
        assert (await get_task(client, owner, world["task"]["id"])).json() == world["task"]

    async def test_list_excludes_others(self, client, pair) -> None:
        owner, intruder = pair
        await owned_world(client, owner)
        await create_task(client, intruder, tags=["mine"])
        assert await tag_usage(client, intruder) == {"mine": 1}
        response = await client.get(TAGS, params={"prefix": "sec"}, headers=intruder.headers)
        assert response.json() == []

    async def test_renaming_into_a_name_others_use_merges_nothing(self, client, pair) -> None:
        owner, intruder = pair
        await owned_world(client, owner)
        await create_task(client, intruder, tags=["mine"])
        response = await client.patch(
            f"{TAGS}/mine", json={"name": "secret"}, headers=intruder.headers
        )
        assert response.json() == {"name": "secret", "usage_count": 1}
        assert await tag_usage(client, owner) == {"secret": 1}


class TestAccountDeletion:
    async def test_deleting_the_account_removes_all_its_data(
        self, app, client, user: UserHandle, other_user: UserHandle
    ) -> None:
        await owned_world(client, user)
        await client.post(
            TASKS, json={"title": "keyed"}, headers={**user.headers, "Idempotency-Key": "k"}
        )
        await owned_world(client, other_user)
        response = await client.request(
            "DELETE", "/api/v1/auth/me", json={"password": user.password}, headers=user.headers
        )
        assert response.status_code == 204
        assert await count_rows(app, "task") == 1
        assert await count_rows(app, "project") == 1
        assert await count_rows(app, "tag") == 1
        assert await count_rows(app, "task_tag") == 1
        assert await count_rows(app, "idempotency_key") == 0
        assert (await list_tasks(client, other_user))["total"] == 1
