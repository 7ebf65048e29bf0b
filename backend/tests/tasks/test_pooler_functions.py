"""Through a transaction pooler the list runs as a PL/pgSQL function (Database.fetch_text),
so each server connection keeps its plan; the answers are the same as the statement's."""

import asyncpg
import pytest
from fastapi import FastAPI

from app.core.db import FUNCTION_PREFIX
from tests.conftest import POOLER, AppFactory, UserHandle, client_for, recorded_statements

QUERIES = [
    "",
    "?limit=2",
    "?offset=1&limit=2",
    "?sort_by=title&sort_direction=asc",
    "?status=pending&priority=high&tags=work",
    "?search=report",
    "?due_before=2030-01-01&project_id=none",
]


@pytest.fixture(scope="module")
def pooled_app(make_app: AppFactory) -> FastAPI:
    return make_app(DATABASE_POOLER="transaction")


async def _functions(db: asyncpg.Connection) -> set[str]:
    rows = await db.fetch(
        "SELECT proname FROM pg_proc WHERE proname LIKE $1", FUNCTION_PREFIX + "%"
    )
    return {row["proname"] for row in rows}


@pytest.mark.parametrize("query", QUERIES)
async def test_the_same_list_as_the_statement(
    app: FastAPI, pooled_app: FastAPI, user: UserHandle, query: str
) -> None:
    async with client_for(app) as direct:
        for n, (title, tags) in enumerate(
            [("Write the report", ["work"]), ("buy milk", []), ("Call Ada", ["work", "home"])]
        ):
            body = {"title": title, "tags": tags, "priority": ["high", "low", "high"][n]}
            assert (
                await direct.post("/api/v1/tasks", json=body, headers=user.headers)
            ).status_code == 201
        expected = await direct.get(f"/api/v1/tasks{query}", headers=user.headers)
    async with client_for(pooled_app) as pooled:
        with recorded_statements(pooled_app) as statements:
            first = await pooled.get(f"/api/v1/tasks{query}", headers=user.headers)
            again = await pooled.get(f"/api/v1/tasks{query}", headers=user.headers)
    assert expected.status_code == first.status_code == again.status_code == 200
    assert first.json() == again.json() == expected.json()
    assert any(s.startswith(f"SELECT {FUNCTION_PREFIX}") for s in statements)


async def test_only_through_a_pooler(
    app: FastAPI, pooled_app: FastAPI, user: UserHandle, db: asyncpg.Connection
) -> None:
    async with client_for(app) as direct:
        with recorded_statements(app) as statements:
            assert (
                await direct.get("/api/v1/tasks?limit=3", headers=user.headers)
            ).status_code == 200
    # Under make test-pooler the suite's own app goes through the pooler as well.
    assert any(FUNCTION_PREFIX in s for s in statements) == (POOLER == "transaction")
    async with client_for(pooled_app) as pooled:
        assert (await pooled.get("/api/v1/tasks?limit=3", headers=user.headers)).status_code == 200
        created = await _functions(db)
        assert created  # created on first use, kept in the database
        # Dropped behind the app's back (a migration's clean-up, a restore): created again.
        for name in created:
            await db.execute(f"DROP FUNCTION {name}")
        again = await pooled.get("/api/v1/tasks?limit=3", headers=user.headers)
        assert again.status_code == 200
    assert await _functions(db)


async def test_creating_runs_as_a_function_with_the_same_outcome(
    pooled_app: FastAPI, user: UserHandle
) -> None:
    async with client_for(pooled_app) as pooled:
        with recorded_statements(pooled_app) as statements:
            body = {"title": "Through the pooler", "tags": ["Work", "home"], "priority": "high"}
            created = await pooled.post("/api/v1/tasks", json=body, headers=user.headers)
            again = await pooled.post("/api/v1/tasks", json=body, headers=user.headers)
            missing = await pooled.post(
                "/api/v1/tasks",
                json={"title": "x", "project_id": "00000000-0000-7000-8000-000000000000"},
                headers=user.headers,
            )
        assert created.status_code == again.status_code == 201
        assert missing.status_code == 422
        assert missing.json()["code"] == "project_not_found"
        task = created.json()
        assert sorted(task["tags"]) == ["Work", "home"]
        fetched = await pooled.get(f"/api/v1/tasks/{task['id']}", headers=user.headers)
        assert fetched.json() == task
    calls = [s for s in statements if s.startswith(f"SELECT * FROM {FUNCTION_PREFIX}")]
    assert len(calls) == 3  # each create, the refused one included


async def test_a_first_create_inside_a_transaction(
    make_app: AppFactory, pooled_app: FastAPI, user: UserHandle
) -> None:
    """A worker whose first create carries an Idempotency-Key (a transaction) while the
    function exists already (another worker made it): creating it there failed and
    aborted the transaction (500s seen in a rolling restart through PgBouncer)."""
    async with client_for(pooled_app) as other_worker:
        made = await other_worker.post("/api/v1/tasks", json={"title": "a"}, headers=user.headers)
        assert made.status_code == 201
    fresh = make_app(DATABASE_POOLER="transaction")
    async with client_for(fresh) as worker:
        for n in range(2):
            response = await worker.post(
                "/api/v1/tasks",
                json={"title": f"keyed {n}"},
                headers={**user.headers, "Idempotency-Key": f"first-{n}"},
            )
            assert response.status_code == 201, response.text
        plain = await worker.post("/api/v1/tasks", json={"title": "b"}, headers=user.headers)
        assert plain.status_code == 201
        keyed = await worker.post(
            "/api/v1/tasks",
            json={"title": "keyed 2"},
            headers={**user.headers, "Idempotency-Key": "first-2"},
        )
        assert keyed.status_code == 201, keyed.text  # now through the known function
