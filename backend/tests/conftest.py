"""Test set-up: a real PostgreSQL database, migrated once per run with Alembic, and the
app driven over HTTP.

The database is TEST_DATABASE_URL when set (CI points it at the machine's server; its
schema is dropped and rebuilt by the migrations), else an embedded PostgreSQL of the
run's own in a temporary directory, stopped at the end. A server that merely happens
to answer on 5432 is never touched.

Each test starts from empty tables (truncated after every test) rather than inside
one rolled-back transaction: the app runs its own connection pool, and the race tests
need real commits seen across connections.
"""

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="todo-tests-"))
os.environ.update(
    {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        # External HS256 tokens are accepted beside ours in every test (tests/auth/external.py)
        "EXTERNAL_JWT_SECRET": "better-auth-secret-for-the-tests-0123456789-abcdef",
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "false",
        "DATA_DIR": str(_TMP),
        "LOG_LEVEL": "INFO",
    }
)
os.environ.pop("REDIS_URL", None)
os.environ.pop("DATABASE_URL", None)  # the test database is chosen below, per run

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.core.db import libpq_dsn  # noqa: E402
from app.core.migrations import alembic_config, upgrade  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import metadata  # noqa: E402

BACKEND = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"

__all__ = ["alembic_config"]


def _reset_database(url: str) -> None:
    """Create the test database if needed and empty it, so migrations run from zero."""
    import asyncio

    dsn = libpq_dsn(url)
    database = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    admin = dsn.rsplit("/", 1)[0] + "/postgres"

    async def reset() -> None:
        try:
            conn = await asyncpg.connect(dsn, statement_cache_size=0)
        except asyncpg.InvalidCatalogNameError:
            conn = await asyncpg.connect(admin, statement_cache_size=0)
            await conn.execute(f'CREATE DATABASE "{database}"')
            await conn.close()
            conn = await asyncpg.connect(dsn, statement_cache_size=0)
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.close()

    asyncio.run(reset())


# With DATABASE_POOLER=transaction, TEST_DATABASE_URL goes through the pooler and
# TEST_DATABASE_DIRECT_URL (when set) reaches the same database directly (make
# test-pooler); resetting and migrating the schema use the direct one.
POOLER = os.environ.get("DATABASE_POOLER", "none")
DIRECT_URL = os.environ.get("TEST_DATABASE_DIRECT_URL", "")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """TEST_DATABASE_URL, else this run's own embedded server (never whatever answers
    on 5432)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from app.core import embedded

    server = embedded.attach(_TMP / "embedded")
    try:
        yield server.url
    finally:
        server.release()


@pytest.fixture(scope="session")
def migrated_url(database_url: str) -> str:
    """Apply every migration once per run (this also tests the migrations)."""
    _reset_database(DIRECT_URL or database_url)
    upgrade(DIRECT_URL or database_url)
    return database_url


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    return Settings(
        DATABASE_URL=migrated_url, DATABASE_POOLER=POOLER, DATABASE_DIRECT_URL=DIRECT_URL
    )


async def connect(url: str) -> asyncpg.Connection:
    """A connection of the test's own, outside the app's pool (no statement cache, so it
    works through a transaction pooler too)."""
    return await asyncpg.connect(libpq_dsn(url), statement_cache_size=0)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to look at (or prepare) the database directly."""
    conn = await connect(settings.DATABASE_URL)
    try:
        yield conn
    finally:
        await conn.close()


@contextmanager
def recorded_statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app runs on its pool while the block runs."""
    statements: list[str] = []

    def record(query: Any) -> None:  # an asyncpg LoggedQuery
        statements.append(query.query)

    app.state.database.add_query_logger(record)
    try:
        yield statements
    finally:
        app.state.database.remove_query_logger(record)


AppFactory = Callable[..., FastAPI]


@pytest.fixture(scope="session")
async def make_app(settings: Settings) -> AsyncIterator[AppFactory]:
    """Build an app with some settings changed (e.g. rate limits on)."""
    apps: list[FastAPI] = []

    def factory(**overrides: Any) -> FastAPI:
        app = create_app(settings.model_copy(update=overrides))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.state.database.close()
        app.state.auth.hasher.close()


@pytest.fixture(scope="session")
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


@pytest.fixture(autouse=True)
async def _empty_tables(app: FastAPI) -> AsyncIterator[None]:
    yield
    tables = [table.name for table in metadata.sorted_tables]
    async with app.state.database.connection() as conn:
        await conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


class UserHandle:
    """A signed-up user as a test sees it: credentials, tokens and auth headers."""

    def __init__(self, email: str, password: str, body: dict[str, Any]) -> None:
        self.email = email
        self.password = password
        self.id: str = body["user"]["id"]
        self.access_token: str = body["access_token"]
        self.refresh_token: str = body["refresh_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


UserFactory = Callable[..., Awaitable[UserHandle]]


@pytest.fixture
def user_factory(client: httpx.AsyncClient) -> UserFactory:
    """Sign a new user up over HTTP and return its handle."""

    async def create(
        email: str | None = None, password: str = PASSWORD, **extra: Any
    ) -> UserHandle:
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        response = await client.post(
            "/api/v1/auth/signup", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 201, response.text
        return UserHandle(email, password, response.json())

    return create


@pytest.fixture
async def user(user_factory: UserFactory) -> UserHandle:
    return await user_factory()


@pytest.fixture
async def other_user(user_factory: UserFactory) -> UserHandle:
    return await user_factory()


@pytest.fixture
def caplog_json(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Captured log records (the app logs JSON lines through the root logger)."""
    caplog.set_level("INFO")
    return caplog


async def wait_for_a_lock_wait(app: FastAPI, seconds: float = 5.0) -> None:
    """Until some backend of this database waits for a lock (the request under test,
    queued behind a transaction the test holds open)."""
    async with app.state.database.connection() as conn:
        for _ in range(int(seconds / 0.01)):
            waiting = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no request waited for a lock")
