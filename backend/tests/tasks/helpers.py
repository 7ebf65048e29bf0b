"""Plain helpers shared by the task, project and tag tests (fixtures live in each
domain's conftest.py)."""

import re
from typing import Any

import httpx
from fastapi import FastAPI

from tests.conftest import UserHandle

TASKS = "/api/v1/tasks"
PROJECTS = "/api/v1/projects"
TAGS = "/api/v1/tags"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
MISSING_ID = "00000000-0000-4000-8000-000000000000"


async def create_task(client: httpx.AsyncClient, user: UserHandle, **fields: Any) -> dict[str, Any]:
    body = {"title": "A task", **fields}
    response = await client.post(TASKS, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def create_project(
    client: httpx.AsyncClient, user: UserHandle, name: str = "Project", **fields: Any
) -> dict[str, Any]:
    response = await client.post(PROJECTS, json={"name": name, **fields}, headers=user.headers)
    assert response.status_code == 201, response.text
    project: dict[str, Any] = response.json()
    return project


async def get_task(client: httpx.AsyncClient, user: UserHandle, task_id: str) -> httpx.Response:
    return await client.get(f"{TASKS}/{task_id}", headers=user.headers)


async def list_tasks(client: httpx.AsyncClient, user: UserHandle, **params: Any) -> dict[str, Any]:
    response = await client.get(TASKS, params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def tag_usage(client: httpx.AsyncClient, user: UserHandle) -> dict[str, int]:
    response = await client.get(TAGS, headers=user.headers)
    assert response.status_code == 200, response.text
    return {tag["name"]: tag["usage_count"] for tag in response.json()}


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "request_id"}


def etag(task: dict[str, Any]) -> dict[str, str]:
    return {"If-Match": f'"{task["version"]}"'}


async def count_rows(app: FastAPI, table: str) -> int:
    """Read the database directly (to prove what an HTTP answer cannot show)."""
    async with app.state.database.connection() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
