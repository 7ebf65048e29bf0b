"""One JSON line per request: route template, status, duration, user; no secrets."""

import json
import logging
import uuid
from typing import Any

import httpx
import pytest

from app.core.logging import JsonFormatter
from tests.conftest import UserHandle

SECRET = "querysecret-5d2c"
LINE_KEYS = {"time", "level", "request_id", "method", "route", "status", "duration_ms", "user_id"}


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The server's lines as JSON (httpx's own lines are the test client's)."""
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))
    ]


def _access_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _lines(caplog)
        if line["logger"] == "app.access" and line.get("request_id") == request_id
    ]


class TestAccessLog:
    async def test_one_line_per_request_with_route_template(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        caplog_json: pytest.LogCaptureFixture,
    ) -> None:
        response = await client.delete(
            f"/api/v1/auth/sessions/{uuid.uuid4()}?access_token={SECRET}&x=1",
            headers=user.headers,
        )
        assert response.status_code == 404
        [line] = _access_lines(caplog_json, response.headers["x-request-id"])
        assert LINE_KEYS <= set(line)
        assert line["level"] == "INFO"
        assert line["method"] == "DELETE"
        assert line["route"] == "/api/v1/auth/sessions/{session_id}"
        assert line["status"] == 404
        assert line["user_id"] == user.id
        assert isinstance(line["duration_ms"], float)
        assert line["duration_ms"] >= 0

    async def test_anonymous_request_has_no_user(
        self, client: httpx.AsyncClient, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        response = await client.get("/health")
        [line] = _access_lines(caplog_json, response.headers["x-request-id"])
        assert line["user_id"] is None
        assert (line["route"], line["status"], line["method"]) == ("/health", 200, "GET")

    async def test_unmatched_path_is_logged_without_query(
        self, client: httpx.AsyncClient, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        response = await client.get(f"/api/v1/nowhere?token={SECRET}")
        [line] = _access_lines(caplog_json, response.headers["x-request-id"])
        assert (line["route"], line["status"]) == ("/api/v1/nowhere", 404)

    async def test_rejected_body_is_logged(
        self, client: httpx.AsyncClient, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        response = await client.post(
            "/api/v1/auth/login", content="x", headers={"content-type": "text/plain"}
        )
        [line] = _access_lines(caplog_json, response.headers["x-request-id"])
        assert line["status"] == 415

    async def test_secrets_never_reach_the_log(
        self,
        client: httpx.AsyncClient,
        user: UserHandle,
        caplog_json: pytest.LogCaptureFixture,
    ) -> None:
        caplog_json.set_level(logging.DEBUG)
        await client.get(f"/api/v1/auth/me?access_token={SECRET}", headers=user.headers)
        await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": user.password}
        )
        await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
        await client.post(f"/api/v1/auth/token?password={SECRET}", data={"username": "x"})
        output = "\n".join(json.dumps(line) for line in _lines(caplog_json))
        assert output
        for secret in (SECRET, user.access_token, user.refresh_token, user.password, "Bearer"):
            assert secret not in output

    async def test_lines_are_json_with_time_and_level(
        self, client: httpx.AsyncClient, caplog_json: pytest.LogCaptureFixture
    ) -> None:
        await client.get("/health")
        line = _lines(caplog_json)[-1]
        assert line["time"].endswith("+00:00")
        assert line["level"] == "INFO"


def test_records_outside_a_request_have_no_request_id(
    caplog_json: pytest.LogCaptureFixture,
) -> None:
    logging.getLogger("app.test").info("outside")
    [line] = [line for line in _lines(caplog_json) if line["message"] == "outside"]
    assert "request_id" not in line
