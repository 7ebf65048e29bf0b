"""PoolerConnection (DATABASE_POOLER=transaction): unnamed statements only, each run in
one round trip from a kept description, and healed when the schema changes under it."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.core.config import Settings
from app.core.db import Database, PoolerConnection, libpq_dsn

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
