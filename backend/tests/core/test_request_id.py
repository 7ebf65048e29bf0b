"""Every response carries X-Request-ID: the client's sane value, else a new one."""

import re

import httpx
import pytest

BIG = 1024 * 1024 + 1
# (method, path, keyword arguments, expected status): one request per kind of outcome.
OUTCOMES = [
    ("GET", "/health", {}, 200),
    ("GET", "/api/v1/no-such-route", {}, 404),
    ("DELETE", "/health", {}, 405),
    ("POST", "/api/v1/auth/signup", {"content": b"x" * BIG}, 413),
    (
        "POST",
        "/api/v1/auth/signup",
        {"content": b"{}", "headers": {"content-type": "text/plain"}},
        415,
    ),
    ("POST", "/api/v1/auth/signup", {"json": {}}, 422),
    ("GET", "/test/boom", {}, 500),
]
GENERATED = re.compile(r"[0-9a-f]{32}")


def _request(kwargs: dict, request_id: str | None) -> dict:
    headers = dict(kwargs.get("headers", {}))
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return {**kwargs, "headers": headers}


class TestRequestId:
    @pytest.mark.parametrize(("method", "path", "kwargs", "status"), OUTCOMES)
    async def test_sane_client_value_is_echoed(
        self, failing_client: httpx.AsyncClient, method: str, path: str, kwargs: dict, status: int
    ) -> None:
        sent = "client-req.42:abc_DEF"
        response = await failing_client.request(method, path, **_request(kwargs, sent))
        assert response.status_code == status
        assert response.headers["x-request-id"] == sent
        if status >= 400:
            assert response.json()["request_id"] == sent

    @pytest.mark.parametrize(("method", "path", "kwargs", "status"), OUTCOMES)
    async def test_absent_value_gets_a_new_one(
        self, failing_client: httpx.AsyncClient, method: str, path: str, kwargs: dict, status: int
    ) -> None:
        response = await failing_client.request(method, path, **_request(kwargs, None))
        assert response.status_code == status
        assert GENERATED.fullmatch(response.headers["x-request-id"])
        if status >= 400:
            assert response.json()["request_id"] == response.headers["x-request-id"]

    @pytest.mark.parametrize(
        "insane",
        ["a" * 129, "has space", "x<script>", "semi;colon", 'quote"', "", "tab\there", "ümlaut"],
    )
    async def test_insane_value_is_replaced(
        self, failing_client: httpx.AsyncClient, insane: str
    ) -> None:
        response = await failing_client.get("/health", headers=[(b"X-Request-ID", insane.encode())])
        assert response.status_code == 200
        assert GENERATED.fullmatch(response.headers["x-request-id"])

    async def test_longest_sane_value_is_kept(self, client: httpx.AsyncClient) -> None:
        sent = "r" * 128
        response = await client.get("/health", headers={"X-Request-ID": sent})
        assert response.headers["x-request-id"] == sent

    async def test_each_request_gets_its_own_id(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/health")
        second = await client.get("/health")
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    async def test_only_one_header_is_sent(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/health", headers={"X-Request-ID": "abc"})
        assert response.headers.get_list("x-request-id") == ["abc"]
