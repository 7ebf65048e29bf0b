"""PoolerConnection (DATABASE_POOLER=transaction): unnamed statements only, each run in
one round trip from a kept description, and healed when the schema changes under it."""

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from app.core.config import Settings
from app.core.db import Database, PoolerConnection, libpq_dsn
from app.core.errors import DatabaseConflict
from tests.conftest import DIRECT_URL, connect

QUERY = "SELECT $1::int + 1 AS n, now() AS at"


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[PoolerConnection]:
    # On the suite's URL: direct, or through its PgBouncer under make test-pooler.
    c = await asyncpg.connect(
        libpq_dsn(settings.DATABASE_URL), statement_cache_size=0, connection_class=PoolerConnection
    )
    try:
        yield c
    finally:
        await c.close()


async def test_statements_are_described_once_and_run_unnamed(conn: PoolerConnection) -> None:
    assert [(await conn.fetchrow(QUERY, i))["n"] for i in range(5)] == [1, 2, 3, 4, 5]
    assert len(conn._described) == 1  # one description kept for the five runs
    async with conn.transaction():  # one server session for both statements
        await conn.fetchval(QUERY, 1)
        named = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")
    assert named == 0  # nothing that could outlive a transaction through a pooler


async def test_the_description_cache_is_bounded(conn: PoolerConnection) -> None:
    for i in range(PoolerConnection.MAX_DESCRIBED + 10):
        assert await conn.fetchval(f"SELECT $1::int + {i}", 1) == 1 + i
    assert len(conn._described) == PoolerConnection.MAX_DESCRIBED


async def test_a_changed_column_type_heals_after_one_failure(conn: PoolerConnection) -> None:
    # A table of the test's own (not TEMP: through the pooler each statement may meet
    # another server session).
    table = f"pooler_probe_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE TABLE {table} (a int, b text)")
    try:
        await conn.execute(f"INSERT INTO {table} VALUES (1, 'x')")
        select = f"SELECT a, b FROM {table}"
        assert [tuple(r) for r in await conn.fetch(select)] == [(1, "x")]
        await conn.execute(f"ALTER TABLE {table} ALTER COLUMN a TYPE text")
        # The kept description says int: that one read fails (nothing is retried)...
        with pytest.raises(
            (AssertionError, asyncpg.ProtocolError, asyncpg.OutdatedSchemaCacheError)
        ):
            await conn.fetch(select)
        # ...and the next is described afresh.
        assert [tuple(r) for r in await conn.fetch(select)] == [("1", "x")]
    finally:
        await conn.execute(f"DROP TABLE {table}")


def test_the_pool_uses_it_only_through_a_pooler(settings: Settings) -> None:
    pooled = Database(settings.model_copy(update={"DATABASE_POOLER": "transaction"}))
    direct = Database(settings.model_copy(update={"DATABASE_POOLER": "none"}))
    assert pooled._connection_class is PoolerConnection
    assert direct._connection_class is asyncpg.Connection


@pytest.fixture
def pooled_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"DATABASE_POOLER": "transaction"})


@pytest.fixture
async def pooled_db(pooled_settings: Settings) -> AsyncIterator[Database]:
    database = Database(pooled_settings)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def probe_table(conn: PoolerConnection) -> AsyncIterator[str]:
    table = f"pooler_probe_{uuid.uuid4().hex[:8]}"
    await conn.execute(f"CREATE TABLE {table} (a int, b text)")
    try:
        yield table
    finally:
        await conn.execute(f"DROP TABLE {table}")
        await _drop_functions_naming(conn, table)


async def _drop_functions_naming(conn: PoolerConnection, marker: str) -> None:
    """Drop the functions a test made: those whose body mentions `marker`."""
    functions = await conn.fetch(
        "SELECT oid::regprocedure AS f FROM pg_proc WHERE prosrc LIKE $1", f"%{marker}%"
    )
    for row in functions:
        await conn.execute(f"DROP FUNCTION {row['f']}")


async def test_a_write_function_follows_a_changed_column_type(
    pooled_db: Database, pooled_settings: Settings, conn: PoolerConnection, probe_table: str
) -> None:
    """A migration that changes a returned column's type (int to bigint, say) while the
    statement text stays the same: the function made before it returns the old type
    ("structure of query does not match function result type"). The same process and
    a new one both go on writing, through a function of the new types."""
    insert = f"INSERT INTO {probe_table} (a, b) VALUES ($1, $2) RETURNING a, b"
    async with pooled_db.connection() as c:
        assert tuple(await pooled_db.fetch_row(c, insert, 1, "x")) == (1, "x")
        await conn.execute(f"ALTER TABLE {probe_table} ALTER COLUMN a TYPE bigint")
        assert tuple(await pooled_db.fetch_row(c, insert, 2, "y")) == (2, "y")
    fresh = Database(pooled_settings)  # a process started after the migration
    try:
        async with fresh.connection() as c:
            assert tuple(await fresh.fetch_row(c, insert, 3, "z")) == (3, "z")
    finally:
        await fresh.close()
    rows = await conn.fetch(f"SELECT a, b FROM {probe_table} ORDER BY a")
    assert [tuple(r) for r in rows] == [(1, "x"), (2, "y"), (3, "z")]  # each written once


async def test_a_read_function_follows_a_changed_parameter_type(
    pooled_db: Database, pooled_settings: Settings, conn: PoolerConnection, probe_table: str
) -> None:
    """A read whose parameter's column changed type (int to bigint) under the same
    statement text: a process started after the migration gets a function of its own
    (under the old name it would have added an overload, and the call would have been
    ambiguous: "function ... is not unique")."""
    await conn.execute(f"INSERT INTO {probe_table} (a, b) VALUES (1, 'x')")
    read = f"SELECT string_agg(b, ',') FROM {probe_table} WHERE a = $1"
    async with pooled_db.connection() as c:
        assert await pooled_db.fetch_text(c, read, 1) == "x"
    await conn.execute(f"ALTER TABLE {probe_table} ALTER COLUMN a TYPE bigint")
    fresh = Database(pooled_settings)
    try:
        async with fresh.connection() as c:
            assert await fresh.fetch_text(c, read, 1) == "x"
    finally:
        await fresh.close()


async def test_a_stale_function_inside_a_transaction_is_a_retry(
    pooled_db: Database, conn: PoolerConnection, probe_table: str
) -> None:
    """Inside the caller's transaction the failed call has aborted it: 503 with
    Retry-After (nothing written), and the retry goes through."""
    insert = f"INSERT INTO {probe_table} (a, b) VALUES ($1, $2) RETURNING a, b"
    async with pooled_db.connection() as c:
        assert tuple(await pooled_db.fetch_row(c, insert, 1, "x")) == (1, "x")
    await conn.execute(f"ALTER TABLE {probe_table} ALTER COLUMN a TYPE bigint")
    with pytest.raises(DatabaseConflict):
        async with pooled_db.transaction() as c:
            await pooled_db.fetch_row(c, insert, 2, "y")
    async with pooled_db.transaction() as c:
        assert tuple(await pooled_db.fetch_row(c, insert, 2, "y")) == (2, "y")
    rows = await conn.fetch(f"SELECT a, b FROM {probe_table} ORDER BY a")
    assert [tuple(r) for r in rows] == [(1, "x"), (2, "y")]


async def _probe_functions(conn: PoolerConnection, marker: str) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_proc WHERE proname LIKE 'todo\\_q\\_%' AND prosrc LIKE $1",
        f"%{marker}%",
    )
    return count


async def test_the_functions_are_bounded(pooled_db: Database, conn: PoolerConnection) -> None:
    """A client can ask for tens of thousands of list shapes: past the bound a new
    statement runs plain (same answer, no new function), and a worker keeps no more
    calls than that."""
    marker = f"bound_probe_{uuid.uuid4().hex[:8]}"
    existing: int = await conn.fetchval(
        "SELECT count(*) FROM pg_proc WHERE proname LIKE 'todo\\_q\\_%' "
        "AND pronamespace = current_schema()::regnamespace"
    )
    pooled_db.max_functions = existing + 3
    # More statements than the bound: the worker's kept calls must be evicted too.
    statements = [f"SELECT $1::text || '{marker} {n}'" for n in range(existing + 8)]
    try:
        async with pooled_db.connection() as c:
            for _ in range(2):
                for n, sql in enumerate(statements):
                    assert await pooled_db.fetch_text(c, sql, "x") == f"x{marker} {n}"
        assert await _probe_functions(conn, marker) == 3
        assert len(pooled_db._functions) <= existing + 3
    finally:
        await _drop_functions_naming(conn, marker)


async def test_a_role_that_may_not_create_functions_runs_plain(
    pooled_settings: Settings, migrated_url: str
) -> None:
    """An application role without CREATE on its schema (least privilege, PostgreSQL
    15's default for `public`): the statements run plain, never a 500."""
    direct = DIRECT_URL or migrated_url  # the pooler's user list holds only the suite's
    role = f"todo_reader_{uuid.uuid4().hex[:8]}"
    admin = await connect(direct)
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    parts = urlsplit(direct)
    url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))
    restricted = Database(pooled_settings, url)
    marker = uuid.uuid4().hex
    try:
        async with restricted.connection() as c:
            for _ in range(2):
                assert await restricted.fetch_text(c, f"SELECT $1::text || '{marker}'", "x") == (
                    f"x{marker}"
                )
        assert not await admin.fetchval(
            "SELECT count(*) FROM pg_proc WHERE prosrc LIKE $1", f"%{marker}%"
        )
    finally:
        await restricted.close()
        await admin.execute(f"REVOKE USAGE ON SCHEMA public FROM {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
