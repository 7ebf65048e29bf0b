"""The 0002 migration: it matches the models and it reverses cleanly."""

import asyncio
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core.db import create_engine
from app.models import metadata
from tests.conftest import alembic_config, is_postgres

# Created by the migration on PostgreSQL only. (The other one, on due_date DESC NULLS
# LAST, is an expression index, which alembic cannot compare on SQLite and skips.)
POSTGRES_ONLY_GIN = "ix_task_user_id_search_text_trgm"
NEW_TABLES = {"project", "tag", "task", "task_tag", "idempotency_key"}


def _schema(url: str, settings) -> tuple[list, set[str]]:
    async def run() -> tuple[list, set[str]]:
        engine = create_engine(settings.model_copy(update={"DATABASE_URL": url}))
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        await engine.dispose()
        return diff, tables

    return asyncio.run(run())


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
class TestMigration:
    def test_migrated_schema_matches_the_models(self, migrated_url: str, settings) -> None:
        diff, tables = _schema(migrated_url, settings)
        assert tables >= NEW_TABLES
        if is_postgres():
            assert diff == []
        else:  # SQLite has no GIN: only that PostgreSQL-only index differs
            assert [(op[0], op[1].name) for op in diff] == [("add_index", POSTGRES_ONLY_GIN)]

    def test_downgrade_and_upgrade_again(self, tmp_path: Path, settings) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'roundtrip.db'}"
        config = alembic_config(url)
        command.upgrade(config, "head")
        command.downgrade(config, "0001")
        _, tables = _schema(url, settings)
        assert not tables & NEW_TABLES
        assert "user_account" in tables
        command.upgrade(config, "head")
        _, tables = _schema(url, settings)
        assert tables >= NEW_TABLES
