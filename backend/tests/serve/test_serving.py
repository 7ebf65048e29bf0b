"""The served process as a server: ordinary requests, keep-alive and pipelining through
the guarded protocol, several workers, and a graceful stop on SIGTERM."""

import asyncio
import resource
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from app.core.config import Settings
from app.serve import raise_open_file_limit
from tests.conftest import PASSWORD, connect
from tests.serve.conftest import FAST_LIMITS, Connection, Served, ServeFactory, get, send_json

BODY_TIMEOUT = float(FAST_LIMITS["HTTP_BODY_TIMEOUT"])


def sign_up(conn: Connection) -> str:
    email = f"served-{uuid.uuid4().hex[:12]}@example.com"
    conn.send(send_json("POST", "/api/v1/auth/signup", {"email": email, "password": PASSWORD}))
    response = conn.response()
    assert response.status == 201, response.body
    token: str = response.json()["access_token"]
    return token


def a_task(server: Served) -> tuple[str, str]:
    """A new user's token and the id of a task of theirs."""
    with server.connect() as conn:
        token = sign_up(conn)
        conn.send(send_json("POST", "/api/v1/tasks", {"title": "before"}, token))
        response = conn.response()
        assert response.status == 201, response.body
        return token, response.json()["id"]


@asynccontextmanager
async def row_locked(settings: Settings, task_id: str) -> AsyncIterator[None]:
    """The task's row locked from a connection of the test's own: a PATCH of it waits
    (up to DB_STATEMENT_TIMEOUT, 5 s) until the block ends."""
    locker = await connect(settings.DATABASE_URL)
    try:
        async with locker.transaction():
            await locker.execute("SELECT 1 FROM task WHERE id = $1 FOR UPDATE", uuid.UUID(task_id))
            yield
    finally:
        await locker.close()


def rename(task_id: str, token: str) -> bytes:
    return send_json("PATCH", f"/api/v1/tasks/{task_id}", {"title": "after"}, token)


class TestServing:
    def test_requests_on_one_keep_alive_connection(self, served: Served) -> None:
        with served.connect() as conn:
            token = sign_up(conn)
            conn.send(send_json("POST", "/api/v1/tasks", {"title": "Buy milk"}, token))
            assert conn.response().status == 201
            conn.send(get("/api/v1/tasks", f"Authorization: Bearer {token}"))
            listing = conn.response()
            assert listing.status == 200
            assert [task["title"] for task in listing.json()["items"]] == ["Buy milk"]

    def test_pipelined_requests_are_answered_in_order(self, served: Served) -> None:
        with served.connect() as conn:
            conn.send(get() + get("/nowhere") + get("/health/ready") + get(close=True))
            responses = [conn.response() for _ in range(4)]
            assert [r.status for r in responses] == [200, 404, 200, 200]
            assert len({r.headers["x-request-id"] for r in responses}) == 4
            conn.closed_after()

    def test_a_large_body_arrives_whole(self, served: Served) -> None:
        """512 KiB: past uvicorn's flow-control high-water mark, read in many chunks."""
        with served.connect() as conn:
            document = {"email": "big@example.com", "password": PASSWORD, "name": "n" * 512 * 1024}
            conn.send(send_json("POST", "/api/v1/auth/signup", document))
            response = conn.response()
            assert response.status == 422, response.body
            assert response.json()["errors"][0]["field"] == "body.name"


async def test_a_body_held_back_behind_a_slow_request_is_not_late(
    served: Served, settings: Settings
) -> None:
    """Pipelined behind a request that takes longer than the body timeout, a large body
    waits half read (uvicorn stops reading past 64 KiB until the app takes it): that is
    not the client being late."""
    token, task_id = a_task(served)
    document = {"email": "big@example.com", "password": PASSWORD, "name": "n" * 256 * 1024}
    with served.connect() as conn:
        async with row_locked(settings, task_id):
            conn.send(rename(task_id, token) + send_json("POST", "/api/v1/auth/signup", document))
            await asyncio.sleep(BODY_TIMEOUT * 2.5)
        renamed = await asyncio.to_thread(conn.response)
        assert renamed.status == 200, renamed.body
        signup = await asyncio.to_thread(conn.response)
        assert signup.status == 422, signup.body


@pytest.fixture
def stoppable(serve: ServeFactory) -> Served:
    return serve(HTTP_GRACEFUL_TIMEOUT="10")


async def test_sigterm_lets_the_request_in_flight_finish(
    stoppable: Served, settings: Settings
) -> None:
    """The request waits on a row lock when SIGTERM comes: the server stops accepting,
    the request still gets its 200, then the lifespan ends and the process exits 0."""
    token, task_id = a_task(stoppable)
    slow = stoppable.connect()
    async with row_locked(settings, task_id):
        slow.send(rename(task_id, token))
        await asyncio.sleep(0.5)  # the PATCH now waits for the lock
        stoppable.terminate()
        await asyncio.sleep(0.5)
        assert stoppable.process.poll() is None, "exited with a request in flight"
        with pytest.raises(ConnectionRefusedError):
            stoppable.connect()
    response = await asyncio.to_thread(slow.response)
    assert response.status == 200, response.body
    assert response.json()["title"] == "after"
    assert response.headers["connection"] == "close"
    slow.close()
    assert await asyncio.to_thread(stoppable.wait, 15) == 0
    messages = [record["message"] for record in stoppable.log_records()]
    assert "Application shutdown complete." in messages


def test_several_workers_serve_with_the_guard(serve: ServeFactory) -> None:
    """WEB_CONCURRENCY=2: the protocol class reaches the spawned workers (pickled with
    uvicorn's config), and SIGTERM stops them all with exit status 0."""
    server = serve(WEB_CONCURRENCY="2")
    server.wait_for_log("Application startup complete.", count=2)
    for _ in range(20):
        with server.connect() as conn:
            conn.send(get("/health", "X-Big: " + "a" * 17 * 1024))
            assert conn.response().status == 431
        with server.connect() as conn:
            conn.send(get(close=True))
            assert conn.response().status == 200
    server.terminate()
    assert server.wait(30) == 0


class TestOpenFileLimit:
    """Out of descriptors, accept() fails and connections wait in the backlog unanswered:
    the soft limit is raised to what HTTP_MAX_CONNECTIONS needs."""

    @pytest.fixture
    def limits(self, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
        calls: list[tuple[int, int]] = []
        monkeypatch.setattr(resource, "setrlimit", lambda _, limits: calls.append(limits))
        return calls

    def test_a_low_soft_limit_is_raised(
        self, monkeypatch: pytest.MonkeyPatch, limits: list[tuple[int, int]]
    ) -> None:
        monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1_000_000))
        raise_open_file_limit(1000)
        assert limits == [(1000 + 256, 1_000_000)]

    def test_no_further_than_the_hard_limit_and_a_warning(
        self,
        monkeypatch: pytest.MonkeyPatch,
        limits: list[tuple[int, int]],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        monkeypatch.setattr(resource, "getrlimit", lambda _: (512, 1024))
        raise_open_file_limit(1000)
        assert limits == [(1024, 1024)]
        assert "HTTP_MAX_CONNECTIONS" in caplog.text

    def test_a_sufficient_limit_is_left_alone(
        self, monkeypatch: pytest.MonkeyPatch, limits: list[tuple[int, int]]
    ) -> None:
        monkeypatch.setattr(resource, "getrlimit", lambda _: (65536, 65536))
        raise_open_file_limit(1000)
        assert limits == []
