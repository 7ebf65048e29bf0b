"""Test set-up: a real database (SQLite by default, PostgreSQL when TEST_DATABASE_URL
is set), migrated once per run with Alembic, and the app driven over HTTP.

Each test starts from empty tables (truncated after every test) rather than inside
one rolled-back transaction: the app runs its own connection pool, and the race tests
need real commits seen across connections.
"""

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="todo-tests-"))
os.environ.update(
    {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "BCRYPT_ROUNDS": "4",
        "RATE_LIMIT_ENABLED": "false",
        "DATA_DIR": str(_TMP),
        "LOG_LEVEL": "INFO",
    }
)
os.environ.pop("REDIS_URL", None)
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{_TMP / 'test.db'}"
os.environ["DATABASE_URL"] = TEST_DATABASE_URL

import httpx  # noqa: E402
import pytest  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import metadata  # noqa: E402

BACKEND = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"


def is_postgres() -> bool:
    return TEST_DATABASE_URL.startswith("postgresql")


def alembic_config(url: str) -> Config:
    config = Config(str(BACKEND / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


def _reset_postgres(url: str) -> None:
    """Create the test database if needed and empty it, so migrations run from zero."""
    import asyncio

    import asyncpg

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = make_url(dsn).set(database="postgres").render_as_string(hide_password=False)

    async def reset() -> None:
        try:
            conn = await asyncpg.connect(dsn)
        except asyncpg.InvalidCatalogNameError:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'CREATE DATABASE "{parsed.database}"')
            await conn.close()
            conn = await asyncpg.connect(dsn)
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        await conn.close()

    asyncio.run(reset())


@pytest.fixture(scope="session")
def migrated_url() -> str:
    """Apply every migration once per run (this also tests the migrations)."""
    if is_postgres():
        _reset_postgres(TEST_DATABASE_URL)
    command.upgrade(alembic_config(TEST_DATABASE_URL), "head")
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def settings(migrated_url: str) -> Settings:
    return Settings(DATABASE_URL=migrated_url)


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
        if app.state.database.pg is not None:
            await app.state.database.pg.close()
        await app.state.engine.dispose()
        app.state.auth.hasher.close()


@pytest.fixture(scope="session")
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


@pytest.fixture(autouse=True)
async def _empty_tables(app: FastAPI) -> AsyncIterator[None]:
    yield
    tables = [table.name for table in metadata.sorted_tables]
    async with app.state.engine.begin() as conn:
        if is_postgres():
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for name in reversed(tables):
                await conn.execute(text(f"DELETE FROM {name}"))


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
