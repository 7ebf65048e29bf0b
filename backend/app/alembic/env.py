"""Alembic environment: the application's database over asyncpg.

Without DATABASE_URL (and no URL passed by the caller) the migrations run on the
embedded PostgreSQL under DATA_DIR, started for the occasion if no app runs it.
Concurrent runs (several workers of the embedded default start at once) serialize on
a transaction-level advisory lock, so the second finds the schema at head.
"""

import asyncio
import uuid
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.config import get_settings
from app.core.db import DROP_FUNCTIONS
from app.models import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Any fixed number: it names the lock that migrations of this app take.
MIGRATION_LOCK = 7_402_311_118


def run_migrations_offline() -> None:
    url = config.attributes.get("database_url") or get_settings().DATABASE_URL
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        context.run_migrations()
        connection.execute(text(DROP_FUNCTIONS))  # the pooled path's, see app.core.db


async def _migrate(url: str, pooled: bool) -> None:
    # Through a transaction pooler (no DATABASE_DIRECT_URL): no named statement may
    # outlive a transaction, so none is cached and each gets a name of its own.
    connect_args: dict[str, Any] = (
        {"prepared_statement_cache_size": 0, "prepared_statement_name_func": _unique_name}
        if pooled
        else {}
    )
    engine = create_async_engine(url, hide_parameters=True, connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _unique_name() -> str:
    return f"__todo_migration_{uuid.uuid4().hex}__"


def run_migrations_online() -> None:
    settings = get_settings()
    url = config.attributes.get("database_url") or settings.direct_database_url
    if url:
        pooled = settings.DATABASE_POOLER == "transaction" and url != settings.DATABASE_DIRECT_URL
        asyncio.run(_migrate(url, pooled))
        return
    from app.core import embedded  # only the embedded default needs it

    server = embedded.attach(settings.DATA_DIR)
    try:
        asyncio.run(_migrate(server.url, pooled=False))
    finally:
        server.release()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
