"""The one way to the database: asyncpg connections from one pool per worker.

Every domain (auth, projects, tags, tasks) runs its statements here, written as SQL
text or built once with SQLAlchemy Core from the SQLModel tables (`compile_statement`);
values are always bound parameters. There is no ORM session on the request path: a
one-statement read through an `AsyncSession` cost ~560 µs of the worker's CPU
(session, pool checkout, BEGIN, statement, ROLLBACK), the same statement on a pooled
asyncpg connection ~60 µs.

The pool is asyncpg's, with three changes:
- it opens on first use (inside the running event loop, so apps built outside one, as
  in tests, work), at a URL that may be given late (the embedded server's, known only
  once it runs);
- connections are handed out in arrival order (`FairGate`);
- a returned connection is not reset with a round trip: asyncpg already rolls back a
  transaction left open, and nothing here changes session state (no SET, LISTEN or
  advisory locks on pooled connections).
"""

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeAlias

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlmodel import SQLModel

from app.core.config import Settings
from app.core.errors import DatabaseConflict, DatabaseTimeout, ServiceUnavailable
from app.core.openapi import raises

# One naming convention, so Alembic migrations name every constraint the same way.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata

_DIALECT = PGDialect_asyncpg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]

Connection: TypeAlias = asyncpg.Connection
APPLICATION_NAME = "todo-api"
URL_SCHEME = "postgresql+asyncpg://"
logger = logging.getLogger("app.db")


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


def transaction_on(conn: Connection) -> contextlib.AbstractAsyncContextManager[Any]:
    """The caller's transaction when `conn` is already in one (a bulk request's: its
    savepoint is the caller's to take), else a transaction of its own."""
    return contextlib.nullcontext() if conn.is_in_transaction() else conn.transaction()


async def delete_in_batches(conn: Connection, sql: str, *args: Any, batch: int) -> int:
    """Run a DELETE of at most `batch` rows (`sql`, its last parameter the batch size)
    until one deletes fewer, so no statement holds many locks or runs long (the
    periodic purges). How many rows went."""
    total = 0
    while True:
        status = await conn.execute(sql, *args, batch)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total


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
                # A release() between our cancellation and this line has dropped the
                # cancelled waiter from the queue already (seen when clients hang up).
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


# A statement that ran past DB_STATEMENT_TIMEOUT: asyncpg raises TimeoutError and has
# the server cancel it; a statement_timeout or lock_timeout set on the database raises
# these two. All are 503 database_timeout, never 500.
_TIMED_OUT = (
    TimeoutError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.LockNotAvailableError,
)
# Two transactions each waiting for a row the other holds: PostgreSQL cancels one
# (after deadlock_timeout) and nothing of it is written. Lock orders are designed so
# this does not happen; if it still does, it is 503 + Retry-After, never 500.
_CONFLICTED = (
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
)
_BROKEN = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    ConnectionError,
)


class PoolerConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection through a transaction pooler (DATABASE_POOLER=transaction).

    A named prepared statement would outlive the transaction and meet another client's
    server connection, so asyncpg's cache is off (`statement_cache_size=0`) and every
    statement is unnamed. Left alone, asyncpg then describes each statement in a round
    trip of its own before running it (Parse, Describe, Flush; then Parse again, Bind,
    Execute, Sync): two round trips through the pooler per statement. Here the
    description (parameter and column types) is kept per statement text, so each run
    is the second message group alone: one round trip, and still nothing named on the
    server. The cache is bounded and dropped with asyncpg's own statement cache (which
    asyncpg does when it finds the schema changed)."""

    MAX_DESCRIBED = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._described: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    async def _get_statement(
        self,
        query: str,
        timeout: float | None,
        *,
        named: Any = False,
        use_cache: bool = True,
        ignore_custom_codec: bool = False,
        record_class: Any = None,
    ) -> Any:
        if named or not use_cache:
            return await super()._get_statement(
                query,
                timeout,
                named=named,
                use_cache=use_cache,
                ignore_custom_codec=ignore_custom_codec,
                record_class=record_class,
            )
        key = (query, record_class, ignore_custom_codec)
        statement = self._described.get(key)
        if statement is not None and not statement.closed:
            self._described.move_to_end(key)
            return statement
        # Unnamed, and marked "unprepared" by asyncpg since its cache is off: every
        # execution sends its own Parse along with the Bind.
        statement = await super()._get_statement(
            query,
            timeout,
            named=False,
            use_cache=False,
            ignore_custom_codec=ignore_custom_codec,
            record_class=record_class,
        )
        if statement.name or getattr(statement, "prepared", True):
            return statement  # not one this cache can reuse safely
        self._described[key] = statement
        if len(self._described) > self.MAX_DESCRIBED:
            self._described.popitem(last=False)
        return statement

    async def _do_execute(self, query: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._do_execute(query, *args, **kwargs)
        except (AssertionError, asyncpg.ProtocolError, asyncpg.OutdatedSchemaCacheError):
            # The rows no longer match the kept description (a column's type changed,
            # say, by a migration while this process ran): asyncpg fails to decode
            # them. Nothing here knows whether a write already happened, so no retry;
            # the next statement is described afresh.
            self._described.clear()
            raise

    def _drop_local_statement_cache(self) -> None:
        super()._drop_local_statement_cache()
        self._described.clear()


async def _keep(_: Any) -> None:
    """No reset query on release (see the module docstring)."""


def libpq_dsn(database_url: str) -> str:
    """The app's URL (`postgresql+asyncpg://...`) as asyncpg takes it."""
    return "postgresql://" + database_url.removeprefix(URL_SCHEME)


class Database:
    """The worker's asyncpg pool, `DB_POOL_SIZE` connections at most."""

    def __init__(self, settings: Settings, url: str | None = None) -> None:
        self._url = url or settings.DATABASE_URL or None
        self._size = settings.DB_POOL_SIZE
        self._acquire_timeout = settings.DB_POOL_TIMEOUT
        self._connect_timeout = settings.DB_CONNECT_TIMEOUT
        self._statement_timeout = settings.DB_STATEMENT_TIMEOUT
        # Through a transaction pooler a named prepared statement would meet another
        # client's server connection (DuplicatePreparedStatementError, "... does not
        # exist"): asyncpg then prepares unnamed statements, per execution.
        pooled = settings.DATABASE_POOLER == "transaction"
        self._statement_cache_size = 0 if pooled else 100
        self._connection_class = PoolerConnection if pooled else asyncpg.Connection
        self._pool: asyncpg.Pool | None = None
        self._gate = FairGate(self._size)  # in front of asyncpg's own queue
        self._lock: asyncio.Lock | None = None
        self._query_loggers: list[Callable[[Any], None]] = []
        self.pooled = pooled
        # statement -> the call of its function (or the statement itself: run plain)
        self._functions: OrderedDict[str, str] = OrderedDict()
        self.max_functions = MAX_FUNCTIONS

    @property
    def url(self) -> str | None:
        return self._url

    def use(self, url: str) -> None:
        """Point a pool that has not opened yet at this URL (the embedded server's)."""
        assert self._pool is None, "the pool is already open"
        self._url = url

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
                if self._url is None:
                    raise ConnectionError("the embedded database has not started")
                self._pool = await asyncpg.create_pool(
                    libpq_dsn(self._url),
                    min_size=0,  # no connection at start: the app starts with the database down
                    max_size=self._size,
                    max_inactive_connection_lifetime=300,
                    reset=_keep,
                    timeout=self._connect_timeout,
                    # Client-side, per statement (a wait for a row lock included): past
                    # it asyncpg cancels the statement on the server. No session SET,
                    # so it holds through a transaction pooler too.
                    command_timeout=self._statement_timeout,
                    statement_cache_size=self._statement_cache_size,
                    connection_class=self._connection_class,
                    # Tells this pool's sessions apart in pg_stat_activity.
                    server_settings={"application_name": APPLICATION_NAME},
                )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection for the duration of the block (autocommit: each statement is its
        own transaction), in the order requests asked (FairGate). Waiting longer than
        DB_POOL_TIMEOUT raises TimeoutError (answered 503, like any database outage)."""
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
            except _TIMED_OUT as exc:
                raise DatabaseTimeout() from exc
            except _CONFLICTED as exc:
                # The detail names processes, lock kinds and relation oids, never values.
                detail = getattr(exc, "detail", None)
                logger.warning("transaction cancelled by the database: %r (%s)", exc, detail)
                raise DatabaseConflict() from exc
            except _BROKEN as exc:
                # A connection the server ended (or one left mid-protocol by it) must
                # not go back to the pool: the release skips the reset that would
                # notice, so it is closed here and the pool opens a new one. asyncpg
                # may have detached it already (InterfaceError: "released back to the
                # pool"). Whatever asyncpg raised about it (InterfaceError, "cannot
                # switch to state", ConnectionError...), the client gets 503 with
                # Retry-After, never 500: measured by `make faults` (PostgreSQL
                # restarts under load). The cause stays in the log for operators.
                with contextlib.suppress(asyncpg.InterfaceError):
                    conn.terminate()
                logger.warning("database connection lost: %r", exc)
                raise ServiceUnavailable(headers={"Retry-After": "1"}) from exc
            finally:
                for callback in loggers:
                    conn.remove_query_logger(callback)
                await pool.release(conn)
        finally:
            self._gate.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection inside one transaction: committed when the block ends normally
        (before the caller builds its response), rolled back when it raises."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def fetch_text(self, conn: Connection, sql: str, *args: Any) -> str:
        """Run `sql`, a read returning one text value. On a direct connection as it is
        (asyncpg's named statements keep its plan); through a transaction pooler as the
        call of a PL/pgSQL function that wraps it.

        Through the pooler nothing stays prepared, so PostgreSQL would parse and plan
        the statement on every run (the list: 0.46 ms of planning for 1.28 ms of
        execution). A PL/pgSQL function's plans are cached by each server connection,
        across all the clients the pooler gives it to, and dropped by PostgreSQL itself
        when a table they use changes. The function is named after a hash of the
        statement and of its parameter and column types, created on first use (by
        whichever worker comes first; again if it has gone since), and called with the
        same bound parameters; at most MAX_FUNCTIONS of them, all dropped by every
        migration run (DROP_FUNCTIONS)."""
        if not self.pooled:
            value: str = await conn.fetchval(sql, *args)
            return value
        text: str = await self._through_function(conn, sql, False, args)
        return text

    async def fetch_row(self, conn: Connection, sql: str, *args: Any) -> Any:
        """Run `sql` (a write included) for its one row, as `fetch_text` does: through
        a pooler as a (volatile) PL/pgSQL function returning the same columns."""
        if not self.pooled:
            return await conn.fetchrow(sql, *args)
        return await self._through_function(conn, sql, True, args)

    async def _through_function(
        self, conn: Connection, sql: str, rows: bool, args: tuple[Any, ...]
    ) -> Any:
        run = conn.fetchrow if rows else conn.fetchval
        in_transaction = conn.is_in_transaction()
        for attempt in (1, 2):
            call = self._functions.get(sql)
            if call is not None:
                self._functions.move_to_end(sql)
            else:
                if in_transaction:
                    # Created here, the function would live or die with the caller's
                    # transaction, and any error (another worker created it first)
                    # would abort it: the plain statement this once.
                    return await run(sql, *args)
                call = await _function_for(conn, sql, rows, self.max_functions)
                self._functions[sql] = call
                if len(self._functions) > self.max_functions:
                    self._functions.popitem(last=False)
            try:
                return await run(call, *args)
            except _STALE_FUNCTION as exc:
                # Dropped since, or made for column types a migration has changed
                # since: made again (under the new types' name), once. The failed call
                # wrote nothing; inside the caller's transaction it has aborted that
                # one, which a retry runs through the plain statement: 503, not 500.
                self._functions.pop(sql, None)
                if in_transaction:
                    raise DatabaseConflict() from exc
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


FUNCTION_PREFIX = "todo_q_"
FUNCTION_PATTERN = FUNCTION_PREFIX.replace("_", r"\_") + "%"  # theirs in LIKE
# At most this many todo_q_* functions in the database (and calls kept per process).
# The list alone has tens of thousands of statement shapes (filters x sorts x
# cursors), any of which a client can ask for: unbounded, that is as many functions in
# the catalog and compiled in every server connection's memory, and their texts in
# every worker's. A client's app uses a few dozen; past the bound a new shape runs as
# its plain statement (planned on every run: slower, the same answer).
MAX_FUNCTIONS = 200
# Every migration run ends with this (app/alembic/env.py): functions of statements or
# column types gone since would otherwise count against MAX_FUNCTIONS deploy after
# deploy. The replicas make theirs again on first use.
DROP_FUNCTIONS = f"""
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
           WHERE p.proname LIKE '{FUNCTION_PATTERN}'
             AND p.pronamespace = current_schema()::regnamespace
  LOOP
    EXECUTE format('DROP FUNCTION %s', f);
  END LOOP;
END $$
"""
# A call of a function that is gone ("function ... does not exist"), or whose body or
# declared columns no longer fit the tables' column types: its parameter types meet a
# changed column ("operator does not exist", the same class), or its rows are not of
# the declared types ("structure of query does not match function result type").
_STALE_FUNCTION = (asyncpg.UndefinedFunctionError, asyncpg.DatatypeMismatchError)
_PLACEHOLDER = re.compile(r"\$(\d+)\b")


async def _function_for(conn: Connection, sql: str, rows: bool, limit: int) -> str:
    """Create (if need be) the PL/pgSQL function that runs `sql`: returning its one text
    value (a read), or with `rows` its rows (a write too); the SQL that calls it with
    the same `$n` parameters. A statement it cannot wrap, or a new one when the
    database holds `limit` such functions already, is returned unchanged."""
    # Unnamed: with asyncpg's statement cache off (through a pooler) prepare() names
    # nothing on the server.
    statement = await conn.prepare(sql)
    columns = statement.get_attributes()
    if "$todo$" in sql or not columns:
        return sql
    if not rows and (len(columns) != 1 or columns[0].type.name != "text"):
        return sql
    oids = [t.oid for t in statement.get_parameters()] + [c.type.oid for c in columns]
    types: list[str] = await conn.fetchval(
        "SELECT coalesce(array_agg(format_type(o, NULL) ORDER BY n), '{}') "
        "FROM unnest($1::oid[]) WITH ORDINALITY AS t(o, n)",
        oids,
    )
    parameters, results = types[: len(oids) - len(columns)], types[len(oids) - len(columns) :]
    # Named after the statement and its types as described now: after a migration that
    # changes a column's type, the same statement gets a function of its own.
    kind = "rows" if rows else "text"
    signature = f"{kind}:{','.join(types)}:{sql}"
    name = FUNCTION_PREFIX + hashlib.sha256(signature.encode()).hexdigest()[:24]
    arguments = ", ".join(f"p{n} {t}" for n, t in enumerate(parameters, start=1))
    body = _PLACEHOLDER.sub(lambda m: f"p{m.group(1)}", sql)
    if rows:
        # The result columns become the function's OUT variables: a column of the same
        # name in the statement must still mean the column.
        out = ", ".join(f'"{c.name}" {t}' for c, t in zip(columns, results, strict=True))
        definition = (
            f"RETURNS TABLE ({out}) LANGUAGE plpgsql VOLATILE AS $todo$ "
            f"#variable_conflict use_column\nBEGIN RETURN QUERY {body}; END $todo$"
        )
    else:
        definition = (
            f"RETURNS text LANGUAGE plpgsql STABLE AS $todo$ BEGIN RETURN ({body}); END $todo$"
        )
    exists, count = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE proname = $1), count(*) FROM pg_proc "
        "WHERE proname LIKE $2 AND pronamespace = current_schema()::regnamespace",
        name,
        FUNCTION_PATTERN,
    )
    if not exists:
        if count >= limit:
            return sql  # (workers racing here may pass the bound by a few)
        try:
            await conn.execute(f"CREATE FUNCTION {name}({arguments}) {definition}")
        except (asyncpg.DuplicateFunctionError, asyncpg.UniqueViolationError):
            pass  # created by another worker just now
        except (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidSchemaNameError):
            # A least-privilege role, without CREATE on its schema (PostgreSQL 15's
            # default for `public`): correct, only planned on every run.
            _warn_no_create_once()
            return sql
    placeholders = ", ".join(f"${n}" for n in range(1, len(parameters) + 1))
    return f"SELECT * FROM {name}({placeholders})" if rows else f"SELECT {name}({placeholders})"


@functools.cache  # once per process
def _warn_no_create_once() -> None:
    logger.warning(
        "the database role may not create functions in its schema: through the "
        "pooler the list and the create run as plain statements, planned on every "
        "run (GRANT CREATE ON SCHEMA to the role to let them keep their plans)"
    )


@raises(ServiceUnavailable, DatabaseTimeout, DatabaseConflict)
async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


DatabaseDep = Annotated[Database, Depends(get_database)]
