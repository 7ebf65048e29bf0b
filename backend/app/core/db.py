"""Async engine and sessions: asyncpg on PostgreSQL, aiosqlite on the embedded default."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

from app.core.config import Settings
from app.core.pg import PgPool

# One naming convention, so Alembic migrations name every constraint the same way.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        return _sqlite_engine(settings.DATABASE_URL)
    return create_async_engine(
        settings.DATABASE_URL,
        # asyncpg waits 60 s for a connection by default: an unreachable database
        # must answer 503 (and fail readiness) quickly instead.
        connect_args=_connect_args(settings),
        # Bound values (emails, hashes) stay out of exception messages and logs.
        hide_parameters=True,
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        pool_timeout=settings.DB_POOL_TIMEOUT,
        # No pre-ping: it costs a round trip per checkout; a dropped connection
        # surfaces as an error on use, answered 503, and is then recycled.
        pool_pre_ping=False,
        pool_recycle=1800,
    )


def _connect_args(settings: Settings) -> dict[str, Any]:
    if make_url(settings.DATABASE_URL).get_driver_name() == "asyncpg":
        return {"timeout": settings.DB_CONNECT_TIMEOUT}
    return {}


def _sqlite_engine(url: str) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite allows one writer: a deferred transaction that upgrades to a write while
    # another connection writes fails at once with "database is locked", whatever the
    # busy timeout. One connection per process serializes all access; the embedded
    # default is for development and single-process use (PostgreSQL is for scale).
    engine = create_async_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=30, hide_parameters=True
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")  # off by default: cascades would do nothing
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")  # other processes, e.g. a migration
        cursor.close()

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request. Routes never commit: services do, before the response
    is built. Teardown only closes (rolling back anything left uncommitted)."""
    database: Database = request.app.state.database
    async with database.session() as session:
        yield session


# scope="function": the session closes (and its connection returns to the pool) as
# soon as the route returns, not after the response has been sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


@dataclass(frozen=True, slots=True)
class Database:
    """Both ways to the database: sessions, and on PostgreSQL over asyncpg the lean
    pool that the hottest routes use (`pg`, None on other databases; see pg.py)."""

    sessionmaker: async_sessionmaker[AsyncSession]
    pg: PgPool | None

    def session(self) -> AsyncSession:
        return self.sessionmaker()


def create_database(settings: Settings, engine: AsyncEngine) -> Database:
    lean = make_url(settings.DATABASE_URL).get_driver_name() == "asyncpg"
    return Database(create_sessionmaker(engine), PgPool(settings) if lean else None)


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


# No session is opened until a route asks for one (most requests on PostgreSQL never do).
DatabaseDep = Annotated[Database, Depends(get_database)]
