"""Every error is problem+json; 500s and 503s say nothing of the internals."""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.types import Message

from app.core.db import APPLICATION_NAME
from app.core.handlers import handle_database_unavailable, validation_errors
from app.core.logging import JsonFormatter
from tests.conftest import PASSWORD, AppFactory, UserHandle, client_for
from tests.core.conftest import SECRET, assert_problem

INTERNALS = (
    "Traceback",
    "RuntimeError",
    "UniqueViolationError",
    "SELECT",
    "INSERT",
    "password_hash",
)


class TestProblemFormat:
    async def test_unknown_api_route_is_404_problem(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get("/api/v1/no-such-thing"), 404, "not_found")

    async def test_unknown_route_outside_api_is_404_problem(
        self, client: httpx.AsyncClient
    ) -> None:
        assert_problem(await client.get("/no-such-page"), 404, "not_found")

    async def test_wrong_method_is_405_problem_with_allow(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/health")
        assert_problem(response, 405, "method_not_allowed")
        assert "GET" in response.headers["allow"]

    async def test_missing_token_is_401_problem(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/auth/me")
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_domain_error_is_problem(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.delete(
            f"/api/v1/auth/sessions/{uuid.uuid4()}", headers=user.headers
        )
        assert_problem(response, 404)

    async def test_validation_error_lists_fields(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/auth/signup", json={"password": 1, "extra": "x"})
        body = assert_problem(response, 422, "validation_error")
        fields = {error["field"] for error in body["errors"]}
        assert {"body.email", "body.password", "body.extra"} <= fields

    async def test_bad_path_parameter_is_422(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.delete("/api/v1/auth/sessions/not-a-uuid", headers=user.headers)
        body = assert_problem(response, 422)
        assert body["errors"][0]["field"] == "path.session_id"


class TestNoEcho:
    """Error bodies never carry what the client sent (passwords, huge strings)."""

    @pytest.mark.parametrize(
        "body",
        [
            {"email": f"{SECRET}@", "password": f"{SECRET}-pw", "name": "Z" * 20_000},
            {"email": f"{SECRET} x@example.com", "password": "short"},
            {"email": f"x@{SECRET}", "password": PASSWORD, "name": "Z" * 5_000},
            {"email": "x@example.com", "password": PASSWORD, "id": SECRET},
            {"email": "x@example.com", "password": SECRET * 20},
            {"email": "x@example.com", "password": PASSWORD, "name": ["Z" * 5_000, SECRET]},
        ],
    )
    async def test_signup_errors_do_not_echo(self, client: httpx.AsyncClient, body: dict) -> None:
        response = await client.post("/api/v1/auth/signup", json=body)
        assert response.status_code == 422, response.text
        assert SECRET not in response.text
        assert "Z" * 50 not in response.text
        assert len(response.content) < 2_000

    async def test_path_parameter_is_not_echoed(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.delete(f"/api/v1/auth/sessions/{SECRET}", headers=user.headers)
        assert_problem(response, 422)
        assert SECRET not in response.text

    async def test_form_route_does_not_echo(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/auth/token", data={"password": SECRET})
        assert_problem(response, 422)
        assert SECRET not in response.text


class TestUnhandledException:
    @pytest.mark.parametrize("path", ["/test/boom", "/test/db-bug", "/test/missing-file"])
    async def test_500_says_nothing_of_internals(
        self, failing_client: httpx.AsyncClient, path: str
    ) -> None:
        response = await failing_client.get(path)
        assert_problem(response, 500, "internal_error")
        for word in (SECRET, *INTERNALS):
            assert word not in response.text

    async def test_log_holds_request_id_and_traceback(
        self, failing_client: httpx.AsyncClient, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        response = await failing_client.get("/test/boom")
        request_id = response.json()["request_id"]
        errors = [
            r
            for r in caplog_json.records
            if r.levelno == logging.ERROR and getattr(r, "request_id", None) == request_id
        ]
        assert len(errors) == 1
        line = json.loads(JsonFormatter().format(errors[0]))
        assert line["request_id"] == request_id
        assert "Traceback" in line["traceback"]
        assert "RuntimeError" in line["traceback"]
        assert "_raise_runtime_error" in line["traceback"]

    async def test_500_is_logged_as_a_request(
        self, failing_client: httpx.AsyncClient, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        response = await failing_client.get("/test/boom")
        access = [r for r in caplog_json.records if r.name == "app.access"]
        assert [(r.status, r.request_id) for r in access] == [  # type: ignore[attr-defined]
            (500, response.headers["x-request-id"])
        ]

    async def test_failure_after_the_response_started_is_logged(
        self, failing_app: FastAPI, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        # Driven at the ASGI level: httpx's transport refuses an unfinished response,
        # which is exactly what the server must see (it then drops the connection).
        sent: list[Message] = []
        requested = False

        async def receive() -> Message:
            nonlocal requested
            if requested:  # the client stays connected until the server gives up
                await asyncio.Event().wait()
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": "/test/mid-stream", "raw_path": b"/test/mid-stream",
            "query_string": b"", "root_path": "", "headers": [(b"x-request-id", b"stream-1")],
            "client": ("127.0.0.1", 1), "server": ("test", 80),
        }  # fmt: skip
        await asyncio.wait_for(failing_app(scope, receive, send), 5)
        assert sent[0]["status"] == 200  # already sent: it cannot become a 500
        assert not any(m["type"] == "http.response.body" and not m.get("more_body") for m in sent)
        [error] = [r for r in caplog_json.records if r.levelno == logging.ERROR]
        assert error.request_id == "stream-1"  # type: ignore[attr-defined]
        assert error.exc_info is not None


def test_messages_quoting_the_input_are_replaced() -> None:
    exc = RequestValidationError(
        [
            {"loc": ("body", "email"), "msg": f"bad: {SECRET}", "input": SECRET, "type": "x"},
            {"loc": ("body", "name"), "msg": "Too long", "input": SECRET, "type": "y"},
        ]
    )
    assert validation_errors(exc) == [
        {"field": "body.email", "message": "Invalid value", "type": "x"},
        {"field": "body.name", "message": "Too long", "type": "y"},
    ]


def test_limits_are_copied_but_never_the_input() -> None:
    exc = RequestValidationError(
        [
            {
                "loc": ("body", "title"),
                "msg": "String should have at most 200 characters",
                "input": SECRET,
                "type": "string_too_long",
                "ctx": {"max_length": 200, "actual_length": 201, "other": SECRET},
            },
            {
                "loc": ("query", "due_before"),
                "msg": "Input should be greater than or equal to 2026-01-01",
                "input": SECRET,
                "type": "greater_than_equal",
                "ctx": {"ge": date(2026, 1, 1)},
            },
        ]
    )
    assert validation_errors(exc) == [
        {
            "field": "body.title",
            "message": "String should have at most 200 characters",
            "type": "string_too_long",
            "max_length": 200,
        },
        {
            "field": "query.due_before",
            "message": "Input should be greater than or equal to 2026-01-01",
            "type": "greater_than_equal",
            "ge": "2026-01-01",
        },
    ]


class TestDatabaseUnavailable:
    """No database answering: 503 database_unavailable, quickly; liveness still 200."""

    async def test_liveness_does_not_need_the_database(
        self, no_db_client: httpx.AsyncClient
    ) -> None:
        response = await no_db_client.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    async def test_readiness_is_503(self, no_db_client: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        response = await no_db_client.get("/health/ready")
        assert_problem(response, 503, "database_unavailable")
        assert time.perf_counter() - started < 3

    async def test_signup_is_503(self, no_db_client: httpx.AsyncClient) -> None:
        response = await no_db_client.post(
            "/api/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert_problem(response, 503, "database_unavailable")
        assert response.headers["retry-after"].isdigit()

    async def test_authenticated_route_is_503(
        self, no_db_client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        # The token is valid (same key): only the database lookup can fail.
        started = time.perf_counter()
        response = await no_db_client.get("/api/v1/auth/me", headers=user.headers)
        body = assert_problem(response, 503, "database_unavailable")
        assert time.perf_counter() - started < 3
        for word in ("asyncpg", "127.0.0.1", "Connect", "Errno"):
            assert word not in json.dumps(body)


@pytest.fixture
async def silent_db() -> AsyncIterator[int]:
    """A server that accepts connections and never answers (a hung or firewalled DB)."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_hung_database_times_out_to_503(make_app: AppFactory, silent_db: int) -> None:
    app = make_app(
        DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{silent_db}/todo",
        DB_CONNECT_TIMEOUT=0.5,
    )
    async with client_for(app) as client:
        started = time.perf_counter()
        response = await client.get("/health/ready")
        assert_problem(response, 503, "database_unavailable")
        response = await client.post(
            "/api/v1/auth/signup", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert_problem(response, 503, "database_unavailable")
        assert time.perf_counter() - started < 5


class TestDatabaseFailures:
    """asyncpg's own exceptions: lost connections are 503, anything else a bug (500)."""

    @pytest.mark.parametrize(
        ("exc", "unavailable"),
        [
            (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
            (asyncpg.exceptions.TooManyConnectionsError("too many clients"), True),
            (asyncpg.exceptions.CannotConnectNowError("the database is starting up"), True),
            (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), True),
            (asyncpg.InterfaceError("connection is closed"), True),
            (asyncpg.InterfaceError("pool is closing"), True),
            (asyncpg.exceptions.ForeignKeyViolationError("violates foreign key"), False),
            (asyncpg.exceptions.UndefinedColumnError("column does not exist"), False),
            (asyncpg.InterfaceError("another operation is in progress"), False),
        ],
        ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
    )
    async def test_only_lost_connections_are_503(self, exc: Exception, unavailable: bool) -> None:
        response = await handle_database_unavailable(None, exc)  # type: ignore[arg-type]
        assert response.status_code == (503 if unavailable else 500)

    async def test_killed_connections_are_replaced(
        self, db: asyncpg.Connection, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        url = "/api/v1/tasks"
        assert (await client.get(url, headers=user.headers)).status_code == 200
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database() "
            "AND pid <> pg_backend_pid()",
            APPLICATION_NAME,
        )
        assert killed >= 1
        await asyncio.sleep(0.2)  # the pool sees the connection close
        statuses = [(await client.get(url, headers=user.headers)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
