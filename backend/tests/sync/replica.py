"""A client's local copy, built only from sync answers, and the server's state read
through the ordinary list routes, to compare the two."""

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import UserHandle
from tests.tasks.helpers import PROJECTS, TAGS, TASKS

SYNC = "/api/v1/sync"


def check_page(body: dict[str, Any]) -> None:
    """What every sync answer promises: each object at most once, and never both listed
    and deleted."""
    for kind, key in (("tasks", "id"), ("projects", "id"), ("tags", "name")):
        listed = [item[key] for item in body[kind]]
        assert len(listed) == len(set(listed)), (kind, listed)
        deleted = body["deleted"][kind]
        assert len(deleted) == len(set(deleted)), (kind, deleted)
        assert not set(listed) & set(deleted), (kind, listed, deleted)


async def sync(
    client: httpx.AsyncClient, user: UserHandle, cursor: str | None = None, **params: Any
) -> dict[str, Any]:
    """One GET /sync (200 expected), its answer checked with check_page."""
    if cursor is not None:
        params["cursor"] = cursor
    response = await client.get(SYNC, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    check_page(body)
    return body


@dataclass
class Replica:
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)
    cursor: str | None = None
    pages: int = 0

    def apply(self, body: dict[str, Any]) -> None:
        check_page(body)
        for task in body["tasks"]:
            self.tasks[task["id"]] = task
        for project in body["projects"]:
            self.projects[project["id"]] = project
        for tag in body["tags"]:
            self.tags[tag["name"]] = tag["usage_count"]
        for task_id in body["deleted"]["tasks"]:
            self.tasks.pop(task_id, None)
        for project_id in body["deleted"]["projects"]:
            self.projects.pop(project_id, None)
        for name in body["deleted"]["tags"]:
            self.tags.pop(name, None)
        self.cursor = body["cursor"]
        self.pages += 1

    async def sync(
        self, client: httpx.AsyncClient, user: UserHandle, limit: int = 500
    ) -> dict[str, Any]:
        """One sync, to the end of its pages; the last answer."""
        while True:
            body = await sync(client, user, self.cursor, limit=limit)
            self.apply(body)
            if not body["has_more"]:
                return body


async def server_state(
    client: httpx.AsyncClient, user: UserHandle
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """The user's tasks, projects and tags as the list routes answer them."""
    tasks: dict[str, Any] = {}
    offset = 0
    while True:
        response = await client.get(
            TASKS, params={"limit": 100, "offset": offset, "sort_direction": "asc"},
            headers=user.headers,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        body = response.json()
        tasks |= {task["id"]: task for task in body["items"]}
        offset += 100
        if offset >= body["total"]:
            break
    response = await client.get(PROJECTS, params={"limit": 100}, headers=user.headers)
    assert response.status_code == 200, response.text
    projects = {project["id"]: project for project in response.json()["items"]}
    response = await client.get(TAGS, headers=user.headers)
    assert response.status_code == 200, response.text
    tags = {tag["name"]: tag["usage_count"] for tag in response.json()}
    return tasks, projects, tags


async def assert_replica_matches(
    replica: Replica, client: httpx.AsyncClient, user: UserHandle
) -> None:
    tasks, projects, tags = await server_state(client, user)
    assert replica.tasks == tasks
    assert replica.projects == projects
    assert replica.tags == tags
