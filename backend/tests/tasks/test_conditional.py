"""Conditional GETs: If-None-Match on one task and on the list answers 304 while
nothing changed, and a full 200 once anything in the body did."""

import httpx
import pytest

from tests.conftest import UserHandle
from tests.tasks.helpers import TASKS, create_task


async def get(
    client: httpx.AsyncClient, user: UserHandle, path: str, tag: str | None = None
) -> httpx.Response:
    headers = dict(user.headers)
    if tag is not None:
        headers["If-None-Match"] = tag
    return await client.get(path, headers=headers)


def assert_not_modified(response: httpx.Response, etag: str) -> None:
    assert response.status_code == 304, response.text
    assert response.content == b""
    assert response.headers["etag"] == etag


class TestOneTask:
    async def test_the_current_version_is_304(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        task = await create_task(client, user, title="read me")
        first = await get(client, user, f"{TASKS}/{task['id']}")
        etag = first.headers["etag"]
        assert etag == '"1"'
        for header in (etag, f"W/{etag}", f'"7", {etag}', "*"):
            assert_not_modified(await get(client, user, f"{TASKS}/{task['id']}", header), etag)

    async def test_a_change_makes_it_200_again(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        task = await create_task(client, user, title="read me")
        path = f"{TASKS}/{task['id']}"
        patched = await client.patch(path, json={"title": "changed"}, headers=user.headers)
        assert patched.status_code == 200
        response = await get(client, user, path, '"1"')
        assert response.status_code == 200
        assert response.json()["title"] == "changed"
        assert response.headers["etag"] == '"2"'

    @pytest.mark.parametrize("header", ['"2"', "garbage", '""', "W/"])
    async def test_other_tags_are_a_full_answer(
        self, client: httpx.AsyncClient, user: UserHandle, header: str
    ) -> None:
        task = await create_task(client, user, title="read me")
        response = await get(client, user, f"{TASKS}/{task['id']}", header)
        assert response.status_code == 200
        assert response.json()["id"] == task["id"]

    async def test_another_users_task_is_404_even_with_star(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        task = await create_task(client, other_user, title="theirs")
        response = await get(client, user, f"{TASKS}/{task['id']}", "*")
        assert response.status_code == 404


class TestList:
    async def test_unchanged_is_304(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        await create_task(client, user, title="one", tags=["a"])
        first = await get(client, user, TASKS)
        etag = first.headers["etag"]
        assert_not_modified(await get(client, user, TASKS, etag), etag)
        # The ETag is per page: another page (or filter) has its own.
        other = await get(client, user, f"{TASKS}?limit=1&offset=1", etag)
        assert other.status_code == 200
        assert other.headers["etag"] != etag

    @pytest.mark.parametrize("change", ["create", "update", "delete", "rename tag", "other page"])
    async def test_any_change_in_the_page_or_total_is_200(
        self, client: httpx.AsyncClient, user: UserHandle, change: str
    ) -> None:
        first_task = await create_task(client, user, title="one", tags=["a"])
        await create_task(client, user, title="two")
        path = f"{TASKS}?limit=1&sort_by=title&sort_direction=asc"  # the page: "one"
        before = await get(client, user, path)
        etag = before.headers["etag"]
        if change == "create":
            await create_task(client, user, title="zzz")  # after the page: the total changes
        elif change == "update":
            await client.patch(
                f"{TASKS}/{first_task['id']}", json={"priority": "high"}, headers=user.headers
            )
        elif change == "delete":
            tasks = (await client.get(TASKS, headers=user.headers)).json()["items"]
            two = next(t for t in tasks if t["title"] == "two")
            await client.delete(f"{TASKS}/{two['id']}", headers=user.headers)
        elif change == "rename tag":
            renamed = await client.patch("/api/v1/tags/a", json={"name": "b"}, headers=user.headers)
            assert renamed.status_code == 200, renamed.text
        else:  # a change outside the page that changes neither it nor the total
            tasks = (await client.get(TASKS, headers=user.headers)).json()["items"]
            two = next(t for t in tasks if t["title"] == "two")
            await client.patch(
                f"{TASKS}/{two['id']}", json={"priority": "low"}, headers=user.headers
            )
        after = await get(client, user, path, etag)
        if change == "other page":
            assert_not_modified(after, etag)
        else:
            assert after.status_code == 200
            assert after.headers["etag"] != etag

    async def test_users_pages_are_their_own(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        """Two empty lists have the same ETag: it says nothing about anyone else."""
        mine = await get(client, user, TASKS)
        theirs = await get(client, other_user, TASKS)
        assert mine.headers["etag"] == theirs.headers["etag"]
        await create_task(client, other_user, title="theirs")
        assert_not_modified(
            await get(client, user, TASKS, mine.headers["etag"]), mine.headers["etag"]
        )
