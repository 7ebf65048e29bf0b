"""DB_STATEMENT_TIMEOUT: a statement that waits or runs too long is cancelled and
answered 503 `database_timeout`, never 500; nothing of it is written, and the
connection serves the next request."""

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.errors import DatabaseTimeout
from tests.conftest import AppFactory, UserFactory, client_for
from tests.core.conftest import assert_problem

TASKS = "/api/v1/tasks"


@pytest.fixture(scope="session")
def impatient_app(make_app: AppFactory) -> FastAPI:
    return make_app(DB_STATEMENT_TIMEOUT=0.5, DB_POOL_SIZE=1)


async def test_a_write_waiting_on_a_row_lock_is_503(
    impatient_app: FastAPI, db: asyncpg.Connection, user_factory: UserFactory
) -> None:
    async with client_for(impatient_app) as client:
        user = await user_factory()
        created = await client.post(TASKS, json={"title": "locked"}, headers=user.headers)
        task_id = created.json()["id"]
        # Another session holds the task's row lock, as a long transaction would.
        async with db.transaction():
            await db.execute("SELECT 1 FROM task WHERE id = $1 FOR UPDATE", created.json()["id"])
            response = await client.patch(
                f"{TASKS}/{task_id}", json={"title": "changed"}, headers=user.headers
            )
        body = assert_problem(response, 503, "database_timeout")
        assert response.headers["retry-after"] == "1"
        assert "SELECT" not in body["detail"]
        # Nothing was written; the one pooled connection serves the next request.
        again = await client.get(f"{TASKS}/{task_id}", headers=user.headers)
        assert again.status_code == 200
        assert again.json()["title"] == "locked"
        assert again.json()["version"] == 1
        retried = await client.patch(
            f"{TASKS}/{task_id}", json={"title": "changed"}, headers=user.headers
        )
        assert retried.status_code == 200
        assert retried.json()["version"] == 2


async def test_a_slow_statement_is_cancelled_on_the_server(
    impatient_app: FastAPI, db: asyncpg.Connection
) -> None:
    with pytest.raises(DatabaseTimeout):
        async with impatient_app.state.database.connection() as conn:
            await conn.execute("SELECT pg_sleep(30)")
    # asyncpg asked the server to cancel it: no backend of the app is still sleeping.
    sleeping = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' "
        "AND state = 'active' AND datname = current_database()"
    )
    assert sleeping == 0


@pytest.mark.parametrize(
    "setting", ["statement_timeout", "lock_timeout"], ids=["statement", "lock"]
)
async def test_the_databases_own_timeouts_are_503_too(
    impatient_app: FastAPI, db: asyncpg.Connection, setting: str
) -> None:
    """A deployment may set statement_timeout or lock_timeout on the database itself:
    QueryCanceledError (57014) and LockNotAvailableError (55P03) are 503 as well."""
    await db.execute("CREATE TABLE IF NOT EXISTS timeout_probe (id int PRIMARY KEY)")
    await db.execute("INSERT INTO timeout_probe VALUES (1) ON CONFLICT DO NOTHING")
    try:
        async with db.transaction():
            await db.execute("SELECT 1 FROM timeout_probe WHERE id = 1 FOR UPDATE")
            with pytest.raises(DatabaseTimeout) as raised:
                await _lock_probe_row(impatient_app, setting)
        expected = {
            "statement_timeout": asyncpg.exceptions.QueryCanceledError,
            "lock_timeout": asyncpg.exceptions.LockNotAvailableError,
        }[setting]
        assert isinstance(raised.value.__cause__, expected)  # the database's, not ours
    finally:
        await db.execute("DROP TABLE timeout_probe")


async def _lock_probe_row(app: FastAPI, setting: str) -> None:
    """Wait for the probe row's lock with the database's own timeout of 50 ms set."""
    async with app.state.database.transaction() as conn:
        await conn.execute(f"SET LOCAL {setting} = 50")
        await conn.execute("SELECT 1 FROM timeout_probe WHERE id = 1 FOR UPDATE")


async def test_over_http_the_503_names_no_internals(
    impatient_app: FastAPI, db: asyncpg.Connection, user_factory: UserFactory
) -> None:
    async with client_for(impatient_app) as client:
        user = await user_factory()
        created = await client.post(TASKS, json={"title": "x"}, headers=user.headers)
        async with db.transaction():
            await db.execute("LOCK TABLE task IN ACCESS EXCLUSIVE MODE")
            response: httpx.Response = await client.get(TASKS, headers=user.headers)
        body = assert_problem(response, 503, "database_timeout")
        assert "Timeout" not in body["detail"]
        assert created.status_code == 201
