"""The migrations: they match the models, and they reverse cleanly."""

import asyncio
import subprocess
import sys
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.migrations import alembic_config
from app.models import metadata
from tests.conftest import BACKEND, connect

NEW_TABLES = {"project", "tag", "task_row", "task_tag", "idempotency_key"}


def _schema(url: str) -> tuple[list, set[str]]:
    async def run() -> tuple[list, set[str]]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await engine.dispose()
        return diff, tables

    return asyncio.run(run())


def _sibling_database(url: str, name: str, *, drop: bool = False) -> str:
    """A database beside the test database, on the same server (created, or dropped)."""
    server = url.rsplit("/", 1)[0]

    async def run() -> None:
        conn = await connect(f"{server}/postgres")
        try:
            # FORCE: a pooler (make test-pooler) may still hold connections to it.
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return f"{server}/{name}"


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
class TestMigration:
    def test_migrated_schema_matches_the_models(self, migrated_url: str) -> None:
        diff, tables = _schema(migrated_url)
        assert tables >= NEW_TABLES
        assert diff == []

    def test_downgrade_and_upgrade_again(self, migrated_url: str) -> None:
        name = f"todo_roundtrip_{uuid.uuid4().hex[:8]}"
        url = _sibling_database(migrated_url, name)
        try:
            config = alembic_config(url)
            command.upgrade(config, "head")
            command.downgrade(config, "0001")
            _, tables = _schema(url)
            assert not tables & NEW_TABLES
            assert "user_account" in tables
            command.downgrade(config, "base")
            _, tables = _schema(url)
            assert tables <= {"alembic_version"}
            command.upgrade(config, "head")
            diff, tables = _schema(url)
            assert tables >= NEW_TABLES
            assert diff == []
        finally:
            _sibling_database(migrated_url, name, drop=True)


def test_concurrent_upgrades_serialize(migrated_url: str) -> None:
    """Several processes migrating one fresh database at once (the embedded default's
    workers, or replicas started together) must not collide: env.py's advisory lock
    makes the later ones wait, then find the schema at head."""
    name = f"todo_concurrent_{uuid.uuid4().hex[:8]}"
    url = _sibling_database(migrated_url, name)
    script = (
        "import sys; from alembic import command; "
        "from app.core.migrations import alembic_config; "
        "command.upgrade(alembic_config(sys.argv[1]), 'head')"
    )
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", script, url], cwd=BACKEND, stderr=subprocess.PIPE
            )
            for _ in range(3)
        ]
        errors = [run.communicate(timeout=120)[1].decode() for run in runs]
        assert [run.returncode for run in runs] == [0, 0, 0], errors
        diff, tables = _schema(url)
        assert tables >= NEW_TABLES
        assert diff == []
    finally:
        _sibling_database(migrated_url, name, drop=True)


def test_a_migration_run_drops_the_pooled_functions(migrated_url: str) -> None:
    """The pooled path's `todo_q_*` functions (app.core.db) are caches: each migration
    run (every deploy's) drops them, so those of statements or column types gone since
    do not pile up against MAX_FUNCTIONS. Other functions stay."""
    name = f"todo_functions_{uuid.uuid4().hex[:8]}"
    url = _sibling_database(migrated_url, name)

    async def sql(statement: str) -> list[str]:
        conn = await connect(url)
        try:
            await conn.execute(statement)
            rows = await conn.fetch(
                "SELECT proname FROM pg_proc WHERE proname LIKE 'todo\\_q\\_%' "
                "OR proname = 'keep_me' ORDER BY proname"
            )
            return [row["proname"] for row in rows]
        finally:
            await conn.close()

    try:
        config = alembic_config(url)
        command.upgrade(config, "head")
        made = asyncio.run(
            sql(
                "CREATE FUNCTION todo_q_old(p1 int) RETURNS text LANGUAGE sql AS 'SELECT 1::text';"
                "CREATE FUNCTION todo_q_old(p1 text) RETURNS text LANGUAGE sql AS 'SELECT 2::text';"
                "CREATE FUNCTION keep_me() RETURNS int LANGUAGE sql AS 'SELECT 1'"
            )
        )
        assert made == ["keep_me", "todo_q_old", "todo_q_old"]
        command.upgrade(config, "head")  # at head already: nothing to migrate
        assert asyncio.run(sql("SELECT 1")) == ["keep_me"]
    finally:
        _sibling_database(migrated_url, name, drop=True)
