"""REQUEST_TIMEOUT: a request that holds the worker longer is answered 503
`request_timeout` (problem+json, with its request id), and the database statement it
was waiting on is cancelled on the server."""

import asyncio

import asyncpg
import pytest
from fastapi import FastAPI

from app.core.db import DatabaseDep
from tests.conftest import AppFactory, client_for
from tests.core.conftest import assert_problem

SLEEP = "SELECT pg_sleep(20) /* request-timeout test */"


async def _slow_statement(db: DatabaseDep) -> dict[str, str]:
    async with db.connection() as conn:
        await conn.execute(SLEEP)
    return {"status": "never"}


async def _slow_python() -> dict[str, str]:
    await asyncio.sleep(20)
    return {"status": "never"}


@pytest.fixture(scope="session")
def hurried_app(make_app: AppFactory) -> FastAPI:
    app = make_app(REQUEST_TIMEOUT=0.5, DB_STATEMENT_TIMEOUT=30)
    app.add_api_route("/test/slow-statement", _slow_statement, methods=["GET"])
    app.add_api_route("/test/slow-python", _slow_python, methods=["GET"])
    return app


async def _still_sleeping(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", SLEEP
    )
    return count


@pytest.mark.parametrize("path", ["/test/slow-statement", "/test/slow-python"])
async def test_a_request_past_the_timeout_is_503(hurried_app: FastAPI, path: str) -> None:
    async with client_for(hurried_app) as client:
        response = await client.get(path)
    body = assert_problem(response, 503, "request_timeout")
    assert response.headers["retry-after"] == "1"
    assert "pg_sleep" not in body["detail"]


async def test_its_database_statement_is_cancelled(
    hurried_app: FastAPI, db: asyncpg.Connection
) -> None:
    async with client_for(hurried_app) as client:
        response = await client.get("/test/slow-statement")
    assert response.status_code == 503
    # asyncpg sends the server a cancel request for a statement whose task is cancelled;
    # give that a moment to land (bounded), then nothing of ours may still be sleeping.
    for _ in range(50):
        if await _still_sleeping(db) == 0:
            break
        await asyncio.sleep(0.05)
    assert await _still_sleeping(db) == 0
    # And the connection went back to the pool in working order.
    async with hurried_app.state.database.connection() as conn:
        assert await conn.fetchval("SELECT 1") == 1


async def test_fast_requests_are_untouched(hurried_app: FastAPI) -> None:
    async with client_for(hurried_app) as client:
        assert (await client.get("/health/ready")).status_code == 200
