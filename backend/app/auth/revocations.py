"""Known-live sessions kept in memory, so most requests check their session without a
database round trip, yet a logout still takes effect at once.

Exactness comes from PostgreSQL: a trigger on `user_session` sends NOTIFY with the
session id whenever a row is deleted (logout, revocation, password change, account
deletion by cascade, refresh-token reuse), and every worker LISTENs and evicts it.
The cache is used only while the listener is connected; it is emptied whenever the
listener (re)connects, since notifications may have been missed. While the listener
is down, every request checks the database.

The listener is the one connection a worker holds outside its pool.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime

import asyncpg

from app.core.db import libpq_dsn

logger = logging.getLogger("app.auth.sessions")

CHANNEL = "user_session_revoked"
PING_INTERVAL = 5.0  # seconds between listener health checks
RECONNECT_DELAY = 1.0


class SessionCache:
    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self._dsn: str | None = None
        self._ttl = ttl
        self._max_entries = max_entries
        # session id -> (user id, monotonic deadline)
        self._live: dict[uuid.UUID, tuple[uuid.UUID, float]] = {}
        self._listening = False
        # Bumped on every notification and reconnect: a database check that started
        # before a bump may have read a row deleted since, so its result is not kept.
        self.generation = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self._listening

    def start(self, database_url: str) -> None:
        """Listen on this database (the app's, known once an embedded one runs)."""
        self._dsn = libpq_dsn(database_url)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def is_live(self, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        if not self._listening:
            return False
        entry = self._live.get(session_id)
        return entry is not None and entry[0] == user_id and entry[1] > time.monotonic()

    def remember(
        self,
        session_id: uuid.UUID,
        user_id: uuid.UUID,
        expires_at: datetime,
        generation: int,
    ) -> None:
        if not self._listening or generation != self.generation:
            return
        if len(self._live) >= self._max_entries:
            self._live.clear()  # crude but bounded; entries refill on the next requests
        remaining = expires_at.timestamp() - time.time()
        self._live[session_id] = (user_id, time.monotonic() + min(self._ttl, remaining))

    def forget(self, session_id: uuid.UUID) -> None:
        self.generation += 1
        self._live.pop(session_id, None)

    def forget_user(self, user_id: uuid.UUID) -> None:
        self.generation += 1
        for session_id in [sid for sid, (uid, _) in self._live.items() if uid == user_id]:
            self._live.pop(session_id, None)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self.forget(uuid.UUID(payload))
        except ValueError:
            self._live.clear()
            self.generation += 1

    def _on_terminated(self, _conn: object) -> None:
        self._listening = False
        self._live.clear()
        self.generation += 1

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: fall back to the database
                logger.warning("session listener down: %s", type(exc).__name__)
            finally:
                self._listening = False
                self._live.clear()
                self.generation += 1
            await asyncio.sleep(RECONNECT_DELAY)

    async def _listen_once(self) -> None:
        assert self._dsn is not None
        conn = await asyncpg.connect(self._dsn, timeout=5)
        try:
            # Fires as soon as asyncpg sees the connection drop (e.g. a server restart),
            # so no notification can be missed while the cache is still trusted.
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(CHANNEL, self._on_notify)
            self._live.clear()
            self.generation += 1
            self._listening = True
            while not conn.is_closed():
                await asyncio.sleep(PING_INTERVAL)
                await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=PING_INTERVAL)
        finally:
            self._listening = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=1)
