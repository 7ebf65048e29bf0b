"""Scenarios 6-7: clients that dribble their headers (or body) a byte a second, an
oversized header, and connections that never send anything. The served process must
close the slow ones within its timeouts and keep answering everyone else."""

import asyncio
import contextlib
import time

import httpx

from faults.context import Context

SLOW_SOCKETS = 20
SLOW_BODIES = 5
IDLE_SOCKETS = 200


async def _until_closed(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, drip: bytes, limit: float
) -> float | None:
    """Send `drip` one byte a second (nothing when empty) until the server closes the
    connection; seconds until then, or None if it is still open after `limit`."""
    opened = time.monotonic()
    position = 0
    while (elapsed := time.monotonic() - opened) < limit:
        if drip:
            try:
                writer.write(drip[position % len(drip) : position % len(drip) + 1])
                await writer.drain()
            except ConnectionError:
                return time.monotonic() - opened
            position += 1
        try:
            # Whatever the server answers (408, 400...), what counts is the close.
            data = await asyncio.wait_for(reader.read(65536), min(1.0, limit - elapsed))
        except TimeoutError:
            continue
        except ConnectionError:
            return time.monotonic() - opened
        if not data:
            return time.monotonic() - opened
    return None


async def _hold(port: int, preamble: bytes, drip: bytes, limit: float) -> float | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0.0  # refused at once: closed, as far as the client can tell
    try:
        if preamble:
            writer.write(preamble)
            await writer.drain()
        return await _until_closed(reader, writer, drip, limit)
    except ConnectionError:
        return 0.0
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _probe(ctx: Context, until: asyncio.Event, seen: list[tuple[str, float]]) -> None:
    async with ctx.client(timeout=5.0) as client:
        while not until.is_set():
            started = time.monotonic()
            try:
                outcome = str((await client.get("/health")).status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            seen.append((outcome, time.monotonic() - started))
            await asyncio.sleep(0.25)


async def _with_probes(
    ctx: Context, holders: list[asyncio.Task[float | None]]
) -> tuple[list[float | None], list[tuple[str, float]]]:
    probes: list[tuple[str, float]] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(ctx, stop, probes))
    closed = await asyncio.gather(*holders)
    stop.set()
    await probe
    return list(closed), probes


def _describe(closed: list[float | None], probes: list[tuple[str, float]]) -> tuple[str, bool]:
    open_ = sum(c is None for c in closed)
    times = [c for c in closed if c is not None]
    slow = [(o, t) for o, t in probes if o != "200" or t > 1.0]
    seen = f"{len(times)}/{len(closed)} closed by the server"
    if times:
        seen += f" (after {min(times):.1f}-{max(times):.1f} s)"
    seen += f", {open_} still open at the bound; meanwhile /health {len(probes)}×, "
    seen += f"{len(slow)} slow or failed, slowest {max((t for _, t in probes), default=0):.2f} s"
    return seen, open_ == 0 and not slow and bool(probes)


async def dribbled_headers(ctx: Context) -> None:
    b = ctx.bounds
    limit = b.header_timeout + b.margin + 1.0
    preamble = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    holders = [
        asyncio.create_task(_hold(ctx.api.port, b"", preamble + b"X-Slow: " + b"a" * 4096, limit))
        for _ in range(SLOW_SOCKETS)
    ]
    closed, probes = await _with_probes(ctx, holders)
    seen, ok = _describe(closed, probes)
    ctx.report.add(
        "Dribbled headers",
        f"{SLOW_SOCKETS} sockets send a request's headers one byte a second",
        f"all closed ≤ HTTP_HEADER_TIMEOUT {b.header_timeout:g} + {b.margin + 1.0:g} s; "
        f"/health 200 ≤ {b.answer:g} s meanwhile",
        seen,
        ok,
    )
    # A byte a second never falls silent for HTTP_BODY_TIMEOUT: the whole-body deadline
    # (HTTP_BODY_TOTAL_TIMEOUT) is the one that must end it.
    body_limit = b.body_total_timeout + b.margin + 1.0
    head = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
    )
    holders = [
        asyncio.create_task(_hold(ctx.api.port, head, b'{"email": ' + b" " * 3990, body_limit))
        for _ in range(SLOW_BODIES)
    ]
    closed, probes = await _with_probes(ctx, holders)
    seen, ok = _describe(closed, probes)
    ctx.report.add(
        "Dribbled body",
        f"{SLOW_BODIES} sockets send a 4,000-byte body one byte a second",
        f"all closed ≤ HTTP_BODY_TOTAL_TIMEOUT {b.body_total_timeout:g} + {b.margin + 1.0:g} s",
        seen,
        ok,
    )
    await _oversized_header(ctx)


async def _oversized_header(ctx: Context) -> None:
    async with ctx.client(timeout=5.0) as client:
        try:
            big = await client.get("/health", headers={"X-Big": "a" * 17 * 1024})
            outcome = str(big.status_code)
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        normal = await client.get("/health", headers={"X-Fair": "a" * 8 * 1024})
    ctx.report.add(
        "Oversized header",
        "GET /health with a 17 KiB header; then one with an 8 KiB header",
        "431; then 200",
        f"{outcome}; then {normal.status_code}",
        outcome == "431" and normal.status_code == 200,
    )


async def idle_sockets(ctx: Context) -> None:
    b = ctx.bounds
    limit = b.header_timeout + b.margin + 1.0
    holders = [
        asyncio.create_task(_hold(ctx.api.port, b"", b"", limit)) for _ in range(IDLE_SOCKETS)
    ]
    closed, probes = await _with_probes(ctx, holders)
    seen, ok = _describe(closed, probes)
    ctx.report.add(
        "Idle sockets",
        f"{IDLE_SOCKETS} connections opened at once, nothing sent",
        f"all closed ≤ HTTP_HEADER_TIMEOUT {b.header_timeout:g} + {b.margin + 1.0:g} s; "
        f"/health 200 ≤ {b.answer:g} s meanwhile",
        seen,
        ok,
    )
