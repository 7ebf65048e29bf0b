"""The lean path to PostgreSQL for the hottest routes: asyncpg connections, no ORM.

Through an `AsyncSession` a one-statement read costs ~560 µs of this worker's CPU
(session, pool checkout, BEGIN, the statement, ROLLBACK on return); the same
statement on a pooled asyncpg connection costs ~60 µs. The task routes clients call
most (list, get one, create, update) run their statements here on PostgreSQL; every
other route, and everything on SQLite, goes through SQLAlchemy sessions. Statements
are still built with SQLAlchemy and compiled once (`compile_statement`); values are
always bound parameters.

The pool is asyncpg's, with two changes: it starts on first use (inside the running
event loop, so apps built outside one, as in tests, work) and a returned connection
is not reset with a round trip: asyncpg already rolls back a transaction left open,
and nothing here changes session state (no SET, LISTEN or advisory locks).
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import make_url

from app.core.config import Settings

_DIALECT = PGDialect_asyncpg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]

Connection: TypeAlias = asyncpg.Connection
APPLICATION_NAME = "todo-api-lean"


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    """SQL text with `$n` placeholders, the bound parameter names in their order, and
    the values of the statement's own constants (JSON keys, formats...)."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def args(self, params: dict[str, Any]) -> list[Any]:
        """Positional arguments: this request's values by name, then the constants.
        A name missing from both is a KeyError, not a silent NULL."""
        constants = self.constants
        return [params[n] if n in params else constants[n] for n in self.names]


def compile_statement(statement: Any) -> CompiledStatement:
    """Compile a SQLAlchemy statement (bindparams by name, no expanding ones) for asyncpg."""
    compiled = statement.compile(dialect=_DIALECT)
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    return CompiledStatement(compiled.string, tuple(compiled.positiontup or ()), constants)


class FairGate:
    """At most `size` holders at a time, admitted strictly in arrival order.

    asyncio's queues let a newcomer take a freed slot before the waiter that was woken
    for it runs; the waiter then queues again at the back. Under overload (1,000
    clients on a 10-connection pool) some requests starve past any timeout while
    others pass. Here a freed slot is handed to the oldest waiter directly."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


async def _keep(_: Any) -> None:
    """No reset query on release (see the module docstring)."""


def libpq_dsn(database_url: str) -> str:
    """The app's SQLAlchemy URL (`postgresql+asyncpg://...`) as asyncpg takes it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgPool:
    """asyncpg connections to the app's PostgreSQL database, `DB_POOL_SIZE` at most."""

    def __init__(self, settings: Settings) -> None:
        self._dsn = libpq_dsn(settings.DATABASE_URL)
        self._size = settings.DB_POOL_SIZE
        self._acquire_timeout = settings.DB_POOL_TIMEOUT
        self._connect_timeout = settings.DB_CONNECT_TIMEOUT
        self._pool: asyncpg.Pool | None = None
        self._gate = FairGate(self._size)  # in front of asyncpg's own queue
        self._lock: asyncio.Lock | None = None
        self._query_loggers: list[Callable[[Any], None]] = []

    def add_query_logger(self, callback: Callable[[Any], None]) -> None:
        """Call `callback` with each statement run from now on (asyncpg LoggedQuery)."""
        self._query_loggers.append(callback)

    def remove_query_logger(self, callback: Callable[[Any], None]) -> None:
        self._query_loggers.remove(callback)

    async def _open(self) -> asyncpg.Pool:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,  # no connection at start: the app starts with the database down
                    max_size=self._size,
                    max_inactive_connection_lifetime=300,
                    reset=_keep,
                    timeout=self._connect_timeout,
                    # Tells this pool's sessions apart in pg_stat_activity.
                    server_settings={"application_name": APPLICATION_NAME},
                )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for the duration of the block, in the order requests asked
        (FairGate). Waiting longer than DB_POOL_TIMEOUT raises TimeoutError (answered
        503, like any database outage)."""
        pool = self._pool or await self._open()
        async with asyncio.timeout(self._acquire_timeout):
            await self._gate.acquire()
        try:
            conn = await pool.acquire(timeout=self._acquire_timeout)
            loggers = tuple(self._query_loggers)
            for callback in loggers:
                conn.add_query_logger(callback)
            try:
                yield conn
            finally:
                for callback in loggers:
                    conn.remove_query_logger(callback)
                await pool.release(conn)
        finally:
            self._gate.release()

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
