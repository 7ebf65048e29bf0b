"""The in-memory cache of live sessions (app/auth/revocations.py): used only while its
PostgreSQL listener is connected, and evicted by NOTIFY whenever a session row is
deleted, so a revocation made anywhere takes effect at once."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi import FastAPI

from app.auth.revocations import SessionCache
from tests.auth.helpers import assert_invalid_token, session_id, signup
from tests.conftest import AppFactory, client_for, recorded_statements

TASKS = "/api/v1/tasks"


@pytest.fixture
async def running_app(make_app: AppFactory) -> AsyncIterator[FastAPI]:
    """An app with its lifespan running, so the session listener is connected."""
    app = make_app()
    async with app.router.lifespan_context(app):
        cache: SessionCache = app.state.auth.sessions
        for _ in range(200):  # the listener connects in the background
            if cache.active:
                break
            await asyncio.sleep(0.01)
        assert cache.active
        yield app


async def _eventually(condition: Callable[[], bool], attempts: int = 300) -> bool:
    """Wait (boundedly) for the notification to be delivered; no timing is asserted."""
    for _ in range(attempts):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return False


class TestSessionCache:
    async def test_a_checked_session_is_remembered(self, running_app: FastAPI) -> None:
        cache: SessionCache = running_app.state.auth.sessions
        async with client_for(running_app) as client:
            user = await signup(client)
            assert (await client.get(TASKS, headers=user.headers)).status_code == 200
        assert cache.is_live(uuid.UUID(session_id(user.access_token)), uuid.UUID(user.id))

    async def test_a_miss_costs_one_statement_and_a_hit_none(self, running_app: FastAPI) -> None:
        async with client_for(running_app) as client:
            # Another user's list first: through a pooler the app creates the list's
            # function once (Database.fetch_text), which is not what is counted here.
            warm = await signup(client)
            assert (await client.get(TASKS, headers=warm.headers)).status_code == 200
            user = await signup(client)
            with recorded_statements(running_app) as miss:
                assert (await client.get(TASKS, headers=user.headers)).status_code == 200
            with recorded_statements(running_app) as hit:
                assert (await client.get(TASKS, headers=user.headers)).status_code == 200
        assert len(miss) == len(hit) + 1, (miss, hit)
        assert "user_session" in miss[0]
        assert not any("user_session" in statement for statement in hit), hit

    async def test_a_session_deleted_elsewhere_is_evicted_by_notify(
        self, running_app: FastAPI, db: asyncpg.Connection
    ) -> None:
        """Another server process logging the session out is simulated by deleting the
        row on a separate connection: the NOTIFY evicts it, and the token is refused."""
        cache: SessionCache = running_app.state.auth.sessions
        async with client_for(running_app) as client:
            user = await signup(client)
            assert (await client.get(TASKS, headers=user.headers)).status_code == 200
            sid, uid = uuid.UUID(session_id(user.access_token)), uuid.UUID(user.id)
            assert cache.is_live(sid, uid)
            await db.execute("DELETE FROM user_session WHERE id = $1", sid)
            assert await _eventually(lambda: not cache.is_live(sid, uid))
            assert_invalid_token(await client.get(TASKS, headers=user.headers))

    async def test_logout_takes_effect_at_once(self, running_app: FastAPI) -> None:
        async with client_for(running_app) as client:
            user = await signup(client)
            assert (await client.get(TASKS, headers=user.headers)).status_code == 200
            logout = await client.post("/api/v1/auth/logout", headers=user.headers)
            assert logout.status_code == 204
            assert_invalid_token(await client.get(TASKS, headers=user.headers))

    async def test_account_deletion_ends_cached_sessions(self, running_app: FastAPI) -> None:
        async with client_for(running_app) as client:
            user = await signup(client)
            assert (await client.get(TASKS, headers=user.headers)).status_code == 200
            deleted = await client.request(
                "DELETE", "/api/v1/auth/me", headers=user.headers, json={"password": user.password}
            )
            assert deleted.status_code == 204
            assert_invalid_token(await client.get(TASKS, headers=user.headers))

    async def test_without_the_listener_every_request_checks_the_database(
        self, running_app: FastAPI, db: asyncpg.Connection
    ) -> None:
        cache: SessionCache = running_app.state.auth.sessions
        async with client_for(running_app) as client:
            user = await signup(client)
            assert (await client.get(TASKS, headers=user.headers)).status_code == 200
            await cache.stop()
            assert not cache.active
            sid, uid = uuid.UUID(session_id(user.access_token)), uuid.UUID(user.id)
            assert not cache.is_live(sid, uid)
            await db.execute("DELETE FROM user_session WHERE id = $1", sid)
            assert_invalid_token(await client.get(TASKS, headers=user.headers))

    async def test_a_check_overtaken_by_a_revocation_is_not_cached(
        self, running_app: FastAPI
    ) -> None:
        cache: SessionCache = running_app.state.auth.sessions
        sid, uid = uuid.uuid4(), uuid.uuid4()
        generation = cache.generation
        cache.forget(uuid.uuid4())  # a revocation lands while the check is in flight
        cache.remember(sid, uid, datetime.now(UTC) + timedelta(days=1), generation)
        assert not cache.is_live(sid, uid)


async def test_the_migration_installs_the_notify_trigger(db: asyncpg.Connection) -> None:
    found = await db.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'user_session_revoked'"
    )
    assert found == 1


async def test_through_a_bare_pooler_no_cache_and_revocation_is_immediate(
    make_app: AppFactory, db: asyncpg.Connection
) -> None:
    """DATABASE_POOLER=transaction without DATABASE_DIRECT_URL: LISTEN would hear
    nothing through the pooler, so no listener starts and no session is cached; a
    session ended by another process is refused on the very next request."""
    app = make_app(DATABASE_POOLER="transaction", DATABASE_DIRECT_URL="")
    async with app.router.lifespan_context(app), client_for(app) as client:
        cache: SessionCache = app.state.auth.sessions
        await asyncio.sleep(0.1)  # a listener, were one started, would connect meanwhile
        assert not cache.active
        user = await signup(client)
        assert (await client.get(TASKS, headers=user.headers)).status_code == 200
        sid = uuid.UUID(session_id(user.access_token))
        await db.execute("DELETE FROM user_session WHERE id = $1", sid)
        assert_invalid_token(await client.get(TASKS, headers=user.headers))
