"""Task test fixtures."""

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import UserHandle
from tests.tasks.helpers import create_project, create_task

TaskFactory = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def task_factory(client: httpx.AsyncClient, user: UserHandle) -> TaskFactory:
    """Create a task over HTTP (for `user` unless `owner=` says otherwise)."""

    async def create(owner: UserHandle | None = None, **fields: Any) -> dict[str, Any]:
        return await create_task(client, owner or user, **fields)

    return create


@pytest.fixture
def project_factory(client: httpx.AsyncClient, user: UserHandle) -> TaskFactory:
    async def create(owner: UserHandle | None = None, **fields: Any) -> dict[str, Any]:
        return await create_project(client, owner or user, **fields)

    return create
