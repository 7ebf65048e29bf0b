"""Plain helpers shared by the auth tests (fixtures live in conftest.py)."""

import base64
import json
import re
import uuid
from typing import Any

import httpx
import jwt
from fastapi import FastAPI

from app.core.schemas import FieldError
from tests.conftest import PASSWORD, UserHandle

AUTH = "/api/v1/auth"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
TOKEN_KEYS = {"access_token", "refresh_token", "token_type", "expires_in"}


def client_at(app: FastAPI, host: str = "192.0.2.10") -> httpx.AsyncClient:
    """A client whose requests come from `host` (the rate limits key on it)."""
    transport = httpx.ASGITransport(app=app, client=(host, 50123))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


async def signup(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD, **extra: Any
) -> UserHandle:
    email = email or unique_email()
    response = await client.post(
        f"{AUTH}/signup", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 201, response.text
    return UserHandle(email, password, response.json())


async def login(
    client: httpx.AsyncClient, email: str, password: str, **headers: str
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/login", json={"email": email, "password": password}, headers=headers
    )


async def login_handle(client: httpx.AsyncClient, user: UserHandle) -> UserHandle:
    """A second (third…) session of an existing user."""
    response = await login(client, user.email, user.password)
    assert response.status_code == 200, response.text
    return UserHandle(user.email, user.password, response.json())


def session_id(access_token: str) -> str:
    return str(jwt.decode(access_token, options={"verify_signature": False})["sid"])


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def assert_invalid_token(response: httpx.Response) -> None:
    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == "Bearer"


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers["cache-control"] == "no-store"


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "request_id"}


def field_messages(body: dict[str, Any]) -> dict[str, str]:
    """422 `errors` as {field: message}; each item is {field, message, type} and the
    failed check's limits, never anything else (no `input`)."""
    allowed = set(FieldError.model_fields)
    assert all({"field", "message", "type"} <= set(e) <= allowed for e in body["errors"])
    return {error["field"]: error["message"] for error in body["errors"]}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any]) -> str:
    """`alg: none`, no signature (PyJWT refuses to produce one unasked)."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."
