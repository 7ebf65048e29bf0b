"""A client that hangs up has its request cancelled, database statement included, and
the pool connection comes back in working order. Driven through a real uvicorn server
on a loopback port (an in-process ASGI client cannot hang up)."""

import asyncio
import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest
import uvicorn
from fastapi import FastAPI, Request

from app.core.db import DatabaseDep
from tests.conftest import AppFactory

SLEEP = "SELECT pg_sleep(20) /* client-disconnect test */"
done: list[str] = []


async def _slow_get(db: DatabaseDep) -> dict[str, str]:
    async with db.connection() as conn:
        await conn.execute(SLEEP)
    done.append("get")
    return {"status": "never"}


async def _slow_post(request: Request, db: DatabaseDep) -> dict[str, int]:
    body = await request.body()
    async with db.connection() as conn:
        await conn.execute(SLEEP)
    done.append("post")
    return {"size": len(body)}


async def _quick_post(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@pytest.fixture(scope="module")
async def served(make_app: AppFactory) -> AsyncIterator[tuple[FastAPI, int]]:
    app = make_app(REQUEST_TIMEOUT=60, DB_STATEMENT_TIMEOUT=60)
    app.add_api_route("/test/slow", _slow_get, methods=["GET"])
    app.add_api_route("/test/slow", _slow_post, methods=["POST"])
    app.add_api_route("/test/quick", _quick_post, methods=["POST"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, loop="none", http="httptools", log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield app, port
    server.should_exit = True
    await task


async def _sleeping(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'", SLEEP
    )
    return count


async def _wait_for(db: asyncpg.Connection, count: int, seconds: float) -> int:
    for _ in range(int(seconds / 0.02)):
        if await _sleeping(db) == count:
            break
        await asyncio.sleep(0.02)
    return await _sleeping(db)


async def _hang_up_after_sending(port: int, request: bytes, db: asyncpg.Connection) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    assert await _wait_for(db, 1, 5) == 1, "the statement never started"
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /test/slow HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /test/slow HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        b"POST /test/slow HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    ],
    ids=["get", "post", "chunked-post"],
)
async def test_hanging_up_cancels_the_statement(
    served: tuple[FastAPI, int], db: asyncpg.Connection, request_bytes: bytes
) -> None:
    app, port = served
    done.clear()
    await _hang_up_after_sending(port, request_bytes, db)
    # asyncpg has the server cancel the statement of a cancelled task: within a second.
    assert await _wait_for(db, 0, 1) == 0
    assert done == []  # the handler never went on past its statement
    # The connection went back to the pool in working order, and the pool is whole.
    size = app.state.settings.DB_POOL_SIZE
    connections = [app.state.database.connection() for _ in range(size)]
    conns = [await c.__aenter__() for c in connections]
    try:
        assert [await conn.fetchval("SELECT 1") for conn in conns] == [1] * size
    finally:
        for c in connections:
            await c.__aexit__(None, None, None)


async def test_a_client_that_stays_gets_its_answer(served: tuple[FastAPI, int]) -> None:
    _, port = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"a": "' + b"x" * 100_000 + b'"}'
    head = (
        b"POST /test/quick HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    for _ in range(3):  # keep-alive: the watch of one request never touches the next
        writer.write(head + body)
        await writer.drain()
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        length = int(headers.split("content-length: ")[1].split("\r\n")[0])
        assert await reader.readexactly(length) == b'{"size":%d}' % len(body)
    writer.close()
    await writer.wait_closed()


async def test_an_empty_body_in_two_messages_is_one() -> None:
    """A server may send a body-less request's empty body as b"" with more_body, then
    the end (httpx's ASGITransport does). The app gets one complete message, and its next
    `receive()` waits for the hang-up instead of answering at once: Starlette's
    FileResponse loops on `receive()` until `http.disconnect` and spun for ever."""
    from app.core.middleware import _DisconnectWatch

    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for message in (
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": False},
    ):
        queue.put_nowait(message)

    async def receive() -> dict[str, object]:
        return await queue.get()

    async def app() -> list[dict[str, object]]:
        watch = _DisconnectWatch({"type": "http", "headers": []}, receive)  # type: ignore[arg-type]
        first = await watch.receive()
        second = asyncio.ensure_future(watch.receive())
        await asyncio.sleep(0.05)
        assert not second.done(), second.result()  # nothing more until the client goes
        watch.response_complete = True
        queue.put_nowait({"type": "http.disconnect"})
        return [first, await asyncio.wait_for(second, 1)]

    first, second = await asyncio.wait_for(app(), 2)
    assert first == {"type": "http.request", "body": b"", "more_body": False}
    assert second == {"type": "http.disconnect"}
