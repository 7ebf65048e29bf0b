"""Scenarios 4-5: a row lock held past DB_STATEMENT_TIMEOUT, and a client that hangs up
while its request waits behind that lock."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx

from app.core.db import APPLICATION_NAME
from faults.context import Context
from faults.load import User, sign_up

# The API's backends waiting for a lock (the suite's own connections are "faults").
_WAITING = """
SELECT pid FROM pg_stat_activity
WHERE application_name = $1 AND state = 'active' AND wait_event_type = 'Lock'
"""
_IDLE_IN_TRANSACTION = """
SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND state LIKE 'idle in transaction%'
"""


async def _task(client: httpx.AsyncClient, user: User, title: str) -> dict[str, object]:
    response = await client.post("/api/v1/tasks", json={"title": title}, headers=user.headers)
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body


@contextlib.asynccontextmanager
async def row_lock(ctx: Context, task_id: object) -> AsyncIterator[None]:
    """SELECT ... FOR UPDATE on the task, in a transaction left open until the block ends."""
    conn = await ctx.db()
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT 1 FROM task WHERE id = $1 FOR UPDATE", task_id)
        yield
        await transaction.rollback()
    finally:
        await conn.close()


async def _waiting(conn: asyncpg.Connection) -> list[int]:
    return [r["pid"] for r in await conn.fetch(_WAITING, APPLICATION_NAME)]


async def _probe(
    client: httpx.AsyncClient,
    user: User,
    paths: list[str],
    until: asyncio.Event,
    seen: list[tuple[str, float]],
) -> None:
    """Ordinary requests, round-robin, while the fault lasts."""
    while not until.is_set():
        for path in paths:
            started = time.monotonic()
            try:
                if path.startswith("PATCH "):
                    response = await client.patch(
                        path[6:], json={"priority": "high"}, headers=user.headers
                    )
                else:
                    response = await client.get(path, headers=user.headers)
                outcome = str(response.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            seen.append((outcome, time.monotonic() - started))
        await asyncio.sleep(0.1)


async def lock_past_timeout(ctx: Context) -> None:
    b = ctx.bounds
    name = "Row lock > statement timeout"
    async with ctx.client() as client:
        user = await sign_up(client, "lock")
        locked = await _task(client, user, "locked task")
        other = await _task(client, user, "other task")
        probes: list[tuple[str, float]] = []
        stop = asyncio.Event()
        async with row_lock(ctx, locked["id"]):
            probe = asyncio.create_task(
                _probe(
                    client,
                    user,
                    [
                        "/health",
                        "/api/v1/tasks?limit=5",
                        f"/api/v1/tasks/{other['id']}",
                        f"PATCH /api/v1/tasks/{other['id']}",
                    ],
                    stop,
                    probes,
                )
            )
            started = time.monotonic()
            plain, tagged = await asyncio.gather(
                client.patch(
                    f"/api/v1/tasks/{locked['id']}", json={"title": "renamed"}, headers=user.headers
                ),
                client.patch(
                    f"/api/v1/tasks/{locked['id']}", json={"tags": ["locked"]}, headers=user.headers
                ),
            )
            took = time.monotonic() - started
            await asyncio.sleep(0.3)
            conn = await ctx.db()
            try:
                still_waiting = await _waiting(conn)
            finally:
                await conn.close()
            stop.set()
            await probe
        after = await client.patch(
            f"/api/v1/tasks/{locked['id']}", json={"title": "renamed"}, headers=user.headers
        )
    limit = b.statement_timeout + b.margin
    answers = []
    for response in (plain, tagged):
        answers.append(
            f"{response.status_code} {response.json().get('code')} "
            f"Retry-After={response.headers.get('retry-after')}"
        )
    timed_out = all(
        r.status_code == 503
        and r.json().get("code") == "database_timeout"
        and r.headers.get("retry-after")
        for r in (plain, tagged)
    )
    version = after.json().get("version") if after.status_code == 200 else None
    ok = timed_out and took <= limit and not still_waiting
    ok = ok and after.status_code == 200 and version == 2
    ctx.report.add(
        name,
        "another connection holds SELECT ... FOR UPDATE on a task; PATCH title and PATCH tags "
        "(a transaction) of it at once; lock released, PATCH again",
        f"503 database_timeout + Retry-After within DB_STATEMENT_TIMEOUT {b.statement_timeout:g}"
        f" + {b.margin:g} s; nothing waiting after; then 200, version 2",
        f"{'; '.join(answers)} after {took:.2f} s; {len(still_waiting)} API queries still "
        f"waiting 0.3 s later; after release {after.status_code}, version {version}",
        ok,
    )
    slow = [(o, t) for o, t in probes if o != "200" or t > b.answer]
    worst = max((t for _, t in probes), default=0.0)
    ctx.report.add(
        f"{name}: others",
        "meanwhile: /health, list, GET and PATCH of another task, round-robin",
        f"all 200, each ≤ {b.answer:g} s",
        f"{len(probes)} requests, {len(slow)} slow or failed, slowest {worst:.2f} s",
        bool(probes) and not slow,
    )


async def client_hangs_up(ctx: Context) -> None:
    b = ctx.bounds
    name = "Client drops mid-request"
    async with ctx.client() as client:
        user = await sign_up(client, "drop")
        task = await _task(client, user, "waited-for task")
        conn = await ctx.db()
        try:
            async with row_lock(ctx, task["id"]):
                seen_waiting, gone_after = await _hang_up(ctx, conn, user, str(task["id"]))
            idle = await conn.fetchval(_IDLE_IN_TRANSACTION, APPLICATION_NAME)
        finally:
            await conn.close()
        results = await asyncio.gather(
            *(client.get(f"/api/v1/tasks/{task['id']}", headers=user.headers) for _ in range(20)),
            client.patch(
                f"/api/v1/tasks/{task['id']}", json={"tags": ["after"]}, headers=user.headers
            ),
        )
        statuses = sorted({r.status_code for r in results})
        version = results[-1].json().get("version") if results[-1].status_code == 200 else None
    ok_gone = gone_after is not None and gone_after <= b.disconnect
    ctx.report.add(
        name,
        "row lock held; a raw client sends PATCH of the task, closes its socket after 0.5 s; "
        "pg_stat_activity polled every 20 ms",
        f"its waiting query gone ≤ {b.disconnect:g} s after the hang-up (the statement timeout "
        f"alone would take {b.statement_timeout - 0.5:g} s)",
        ("query seen waiting; " if seen_waiting else "query NEVER seen waiting; ")
        + (
            f"gone {gone_after:.2f} s after the hang-up"
            if gone_after is not None
            else "still waiting 3 s after the hang-up"
        ),
        seen_waiting and ok_gone,
    )
    clean = statuses == [200] and idle == 0
    ctx.report.add(
        f"{name}: pool",
        "lock released; 20 GETs + 1 PATCH with tags at once on the same task",
        "all 200; no API connection idle in transaction; abandoned PATCH not applied",
        f"statuses {statuses}; {idle} idle in transaction; version after {version} "
        f"({'abandoned PATCH not applied' if version == 2 else 'abandoned PATCH applied'})",
        clean and version == 2,
    )


async def _hang_up(
    ctx: Context, conn: asyncpg.Connection, user: User, task_id: str
) -> tuple[bool, float | None]:
    """Send the PATCH on a raw socket, hang up after 0.5 s; (seen waiting, seconds from
    the hang-up until no API query waits on the lock)."""
    body = b'{"title": "from a client that left"}'
    head = (
        f"PATCH /api/v1/tasks/{task_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {user.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", ctx.api.port)
    writer.write(head + body)
    await writer.drain()
    seen = False
    sent = time.monotonic()
    while time.monotonic() - sent < 0.5:
        seen = seen or bool(await _waiting(conn))
        await asyncio.sleep(0.02)
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    closed = time.monotonic()
    while time.monotonic() - closed < 3.0:
        if not await _waiting(conn):
            return seen, time.monotonic() - closed
        seen = True
        await asyncio.sleep(0.02)
    del reader
    return seen, None
