"""Fixtures for the cross-cutting rules: apps with a route that fails, or with no
database at all, and the checks every problem+json response must pass."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from app.core.schemas import FieldError
from tests.conftest import AppFactory, client_for

SECRET = "SECRETMARKER-7f3a"
PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}
FIELD_ERROR_KEYS = set(FieldError.model_fields)
# Nothing listens on port 1: every connection attempt is refused at once.
UNREACHABLE_DB = "postgresql+asyncpg://postgres@127.0.0.1:1/nope"


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The response is RFC 9457 problem+json with our fields, `errors` on 422 only."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if status == 422:
        assert set(body) == PROBLEM_KEYS | {"errors"}
        assert body["errors"], body
        for error in body["errors"]:  # `{field, message, type}` and the failed limit
            assert {"field", "message", "type"} <= set(error) <= FIELD_ERROR_KEYS, error
            FieldError.model_validate(error)
    else:
        assert set(body) == PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if code is not None:
        assert body["code"] == code
    return body


async def _raise_runtime_error() -> None:
    raise RuntimeError(f"{SECRET} SELECT password_hash FROM user")


async def _raise_unique_violation() -> None:
    raise asyncpg.UniqueViolationError(f"duplicate key: INSERT INTO user VALUES ('{SECRET}')")


async def _raise_missing_file() -> None:
    # An OSError that has nothing to do with the database: a bug, so 500, never 503.
    raise FileNotFoundError(f"/srv/{SECRET}/missing.txt")


async def _fail_mid_stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError(SECRET)

    return StreamingResponse(chunks())


@pytest.fixture(scope="session")
def failing_app(make_app: AppFactory) -> FastAPI:
    """A full app plus routes that fail the way a bug would (production routers untouched)."""
    app = make_app()
    app.add_api_route("/test/boom", _raise_runtime_error, methods=["GET"])
    app.add_api_route("/test/db-bug", _raise_unique_violation, methods=["GET"])
    app.add_api_route("/test/mid-stream", _fail_mid_stream, methods=["GET"])
    app.add_api_route("/test/missing-file", _raise_missing_file, methods=["GET"])
    return app


@pytest.fixture
async def failing_client(failing_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(failing_app) as client:
        yield client


@pytest.fixture(scope="session")
def no_db_app(make_app: AppFactory) -> FastAPI:
    return make_app(DATABASE_URL=UNREACHABLE_DB)


@pytest.fixture
async def no_db_client(no_db_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(no_db_app) as client:
        yield client
