"""Subtasks: parent_id on POST, PUT and PATCH, the tree rules, the list filter."""

import asyncio
from typing import Any

import httpx

from tests.conftest import UserHandle
from tests.tasks.helpers import (
    MISSING_ID,
    TASKS,
    create_project,
    create_task,
    get_task,
    list_tasks,
)


async def patch(
    client: httpx.AsyncClient, user: UserHandle, task_id: str, **fields: Any
) -> httpx.Response:
    return await client.patch(f"{TASKS}/{task_id}", json=fields, headers=user.headers)


async def fetch(client: httpx.AsyncClient, user: UserHandle, task_id: str) -> dict[str, Any]:
    response = await get_task(client, user, task_id)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def code(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    value: str = response.json()["code"]
    return value


async def chain(client: httpx.AsyncClient, user: UserHandle, length: int) -> list[dict[str, Any]]:
    """A top-level task and `length - 1` levels of subtasks below it."""
    tasks = [await create_task(client, user, title="level 0")]
    for level in range(1, length):
        tasks.append(await create_task(client, user, title=f"l{level}", parent_id=tasks[-1]["id"]))
    return tasks


class TestCreate:
    async def test_in_the_parents_project(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        parent = await create_task(client, user, project_id=project["id"])
        child = await create_task(client, user, parent_id=parent["id"])
        assert child["parent_id"] == parent["id"]
        assert child["project_id"] == project["id"]
        assert await fetch(client, user, child["id"]) == child
        same = await create_task(client, user, parent_id=parent["id"], project_id=project["id"])
        assert same["project_id"] == project["id"]

    async def test_parent_not_found(self, client, user: UserHandle, other_user: UserHandle) -> None:
        foreign = await create_task(client, other_user)
        trashed = await create_task(client, user)
        await client.delete(f"{TASKS}/{trashed['id']}", headers=user.headers)
        for parent_id in (MISSING_ID, foreign["id"], trashed["id"]):
            response = await client.post(
                TASKS, json={"title": "x", "parent_id": parent_id}, headers=user.headers
            )
            assert code(response) == "parent_not_found"
        assert (await list_tasks(client, user))["total"] == 0

    async def test_at_most_four_levels_below_the_top(self, client, user: UserHandle) -> None:
        tasks = await chain(client, user, 5)
        response = await client.post(
            TASKS, json={"title": "x", "parent_id": tasks[-1]["id"]}, headers=user.headers
        )
        assert code(response) == "invalid_parent"

    async def test_another_project_than_the_parents(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        parent = await create_task(client, user)
        response = await client.post(
            TASKS,
            json={"title": "x", "parent_id": parent["id"], "project_id": project["id"]},
            headers=user.headers,
        )
        assert code(response) == "invalid_parent"


class TestReparent:
    async def test_no_cycles(self, client, user: UserHandle) -> None:
        a, b, c = await chain(client, user, 3)
        assert code(await patch(client, user, a["id"], parent_id=c["id"])) == "invalid_parent"
        assert code(await patch(client, user, a["id"], parent_id=a["id"])) == "invalid_parent"
        assert (await fetch(client, user, a["id"]))["parent_id"] is None

    async def test_depth_counts_the_subtree(self, client, user: UserHandle) -> None:
        top = await chain(client, user, 3)  # depth 0..2
        other = await chain(client, user, 3)  # moving its root under top[2]: levels 3..5
        response = await patch(client, user, other[0]["id"], parent_id=top[2]["id"])
        assert code(response) == "invalid_parent"
        response = await patch(client, user, other[1]["id"], parent_id=top[2]["id"])
        assert response.status_code == 200  # levels 3..4

    async def test_moves_the_subtree_into_the_parents_project(
        self, client, user: UserHandle
    ) -> None:
        project = await create_project(client, user)
        target = await create_task(client, user, project_id=project["id"])
        root, child, grandchild = await chain(client, user, 3)
        response = await patch(client, user, root["id"], parent_id=target["id"])
        assert response.status_code == 200
        assert response.json()["project_id"] == project["id"]
        for task in (child, grandchild):
            moved = await fetch(client, user, task["id"])
            assert moved["project_id"] == project["id"]
            assert moved["version"] == task["version"] + 1
        response = await patch(client, user, root["id"], parent_id=None)
        assert response.json()["parent_id"] is None
        assert response.json()["project_id"] == project["id"]

    async def test_project_of_a_subtask_alone(self, client, user: UserHandle) -> None:
        project = await create_project(client, user)
        parent = await create_task(client, user)
        child = await create_task(client, user, parent_id=parent["id"])
        response = await patch(client, user, child["id"], project_id=project["id"])
        assert code(response) == "invalid_parent"
        assert (await patch(client, user, child["id"], project_id=None)).status_code == 200

    async def test_project_of_a_top_level_task_moves_the_subtree(
        self, client, user: UserHandle
    ) -> None:
        project = await create_project(client, user)
        root, child, grandchild = await chain(client, user, 3)
        response = await patch(client, user, root["id"], project_id=project["id"])
        assert response.status_code == 200
        for task in (child, grandchild):
            assert (await fetch(client, user, task["id"]))["project_id"] == project["id"]
        listed = await list_tasks(client, user, project_id=project["id"])
        assert listed["total"] == 3

    async def test_put_resets_the_parent(self, client, user: UserHandle) -> None:
        parent = await create_task(client, user)
        child = await create_task(client, user, parent_id=parent["id"])
        response = await client.put(
            f"{TASKS}/{child['id']}", json={"title": "again"}, headers=user.headers
        )
        assert response.status_code == 200
        assert response.json()["parent_id"] is None

    async def test_foreign_parent(self, client, user: UserHandle, other_user: UserHandle) -> None:
        foreign = await create_task(client, other_user)
        task = await create_task(client, user)
        response = await patch(client, user, task["id"], parent_id=foreign["id"])
        assert code(response) == "parent_not_found"


class TestCompletion:
    async def test_completing_completes_open_subtasks(self, client, user: UserHandle) -> None:
        root, child, grandchild = await chain(client, user, 3)
        done = await create_task(client, user, parent_id=root["id"])
        done = (await patch(client, user, done["id"], completed=True)).json()
        response = await client.patch(f"{TASKS}/{root['id']}/complete", headers=user.headers)
        assert response.json()["completed"] is True
        for task in (child, grandchild):
            assert (await fetch(client, user, task["id"]))["completed"] is True
        assert await fetch(client, user, done["id"]) == done  # already done: untouched
        response = await patch(client, user, root["id"], completed=False)
        assert response.json()["completed"] is False
        assert (await fetch(client, user, child["id"]))["completed"] is True


class TestListFilter:
    async def test_parent_id(self, client, user: UserHandle) -> None:
        root, child, grandchild = await chain(client, user, 3)
        listed = await list_tasks(client, user, parent_id=root["id"])
        assert [t["id"] for t in listed["items"]] == [child["id"]]
        listed = await list_tasks(client, user, parent_id="none")
        assert [t["id"] for t in listed["items"]] == [root["id"]]
        response = await client.get(TASKS, params={"parent_id": "x"}, headers=user.headers)
        assert response.status_code == 422


class TestConcurrency:
    async def test_two_tasks_made_each_others_parent(self, client, user: UserHandle) -> None:
        """Without the tree lock (tree.lock) both requests see a valid tree and both
        commit: a cycle. With it one wins and the other is 422."""
        for _ in range(10):
            a = await create_task(client, user, title="a")
            b = await create_task(client, user, title="b")
            first, second = await asyncio.gather(
                patch(client, user, a["id"], parent_id=b["id"]),
                patch(client, user, b["id"], parent_id=a["id"]),
            )
            assert sorted([first.status_code, second.status_code]) == [200, 422]
            parents = {(await fetch(client, user, t["id"]))["parent_id"] for t in (a, b)}
            assert None in parents
