"""Request bodies: size limit, content types, malformed JSON, forbidden characters."""

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from tests.conftest import PASSWORD, UserHandle
from tests.core.conftest import assert_problem

LIMIT = 1024 * 1024
SIGNUP = "/api/v1/auth/signup"
ME = "/api/v1/auth/me"
JSON = {"content-type": "application/json"}


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


def _padded_signup(size: int) -> bytes:
    """A valid JSON signup body of exactly `size` bytes, with an unknown field `pad`."""
    document = {"email": _email(), "password": PASSWORD, "pad": ["p" * 100] * (size // 110)}
    raw = json.dumps(document).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))  # trailing whitespace is valid JSON


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


class TestBodyLimit:
    async def test_declared_length_over_limit_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post(SIGNUP, content=b"x" * (LIMIT + 1), headers=JSON)
        assert_problem(response, 413, "payload_too_large")

    async def test_chunked_body_over_limit_is_413(self, client: httpx.AsyncClient) -> None:
        request = client.build_request(
            "POST", SIGNUP, content=_chunks(b" " * (LIMIT + 1)), headers=JSON
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        assert_problem(await client.send(request), 413, "payload_too_large")

    async def test_limit_applies_outside_the_api(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/health", content=b"x" * (LIMIT + 1))
        assert_problem(response, 413, "payload_too_large")

    async def test_body_at_the_limit_passes(self, client: httpx.AsyncClient) -> None:
        response = await client.post(SIGNUP, content=_padded_signup(LIMIT), headers=JSON)
        body = assert_problem(response, 422)  # refused by the schema, not by the limit
        assert [e["field"] for e in body["errors"]] == ["body.pad"]

    async def test_chunked_body_at_the_limit_passes(self, client: httpx.AsyncClient) -> None:
        request = client.build_request(
            "POST", SIGNUP, content=_chunks(_padded_signup(LIMIT)), headers=JSON
        )
        body = assert_problem(await client.send(request), 422)
        assert [e["field"] for e in body["errors"]] == ["body.pad"]

    async def test_small_chunked_body_is_processed(self, client: httpx.AsyncClient) -> None:
        raw = json.dumps({"email": _email(), "password": PASSWORD, "name": "<i>Chunk</i>"})
        request = client.build_request(
            "POST", SIGNUP, content=_chunks(raw.encode(), 7), headers=JSON
        )
        response = await client.send(request)
        assert response.status_code == 201, response.text
        assert response.json()["user"]["name"] == "Chunk"


class TestContentType:
    async def test_text_plain_is_415(self, client: httpx.AsyncClient) -> None:
        body = json.dumps({"email": _email(), "password": PASSWORD})
        response = await client.post(SIGNUP, content=body, headers={"content-type": "text/plain"})
        assert_problem(response, 415, "unsupported_media_type")

    async def test_missing_content_type_with_a_body_is_415(self, client: httpx.AsyncClient) -> None:
        request = client.build_request(
            "POST", SIGNUP, content=json.dumps({"email": _email(), "password": PASSWORD})
        )
        assert "content-type" not in request.headers
        assert_problem(await client.send(request), 415, "unsupported_media_type")

    async def test_form_body_on_a_json_route_is_415(self, client: httpx.AsyncClient) -> None:
        response = await client.post(SIGNUP, data={"email": _email(), "password": PASSWORD})
        assert_problem(response, 415, "unsupported_media_type")

    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json",
            "APPLICATION/JSON",
            "application/json; charset=utf-8",
            "Application/Json;charset=UTF-8",
            "application/x+json",
            "application/merge-patch+json",
            "application/vnd.todo.v1+json",
        ],
    )
    async def test_every_json_type_is_sanitized(
        self, client: httpx.AsyncClient, content_type: str
    ) -> None:
        body = json.dumps({"email": _email(), "password": PASSWORD, "name": "<b>Al</b>"})
        response = await client.post(SIGNUP, content=body, headers={"content-type": content_type})
        assert response.status_code == 201, response.text
        assert response.json()["user"]["name"] == "Al"

    async def test_oauth2_form_route_takes_a_form(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "bearer"

    async def test_oauth2_form_route_takes_multipart(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            "/api/v1/auth/token",
            files={"username": (None, user.email), "password": (None, PASSWORD)},
        )
        assert response.status_code == 200, response.text

    async def test_oauth2_form_route_refuses_text(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/token", content="username=a", headers={"content-type": "text/plain"}
        )
        assert_problem(response, 415, "unsupported_media_type")

    async def test_empty_body_reaches_validation(self, client: httpx.AsyncClient) -> None:
        response = await client.post(SIGNUP, headers={"content-type": "text/plain"})
        body = assert_problem(response, 422)
        assert body["errors"][0]["field"] == "body"


class TestMalformedJson:
    @pytest.mark.parametrize(
        "raw",
        [
            b'{"email": ',
            b"{'email': 'a'}",
            b'{"email": "a",}',
            b"   ",
            b'{"name": NaN}',
            b'{"name": Infinity}',
        ],
    )
    async def test_malformed_json_is_400(self, client: httpx.AsyncClient, raw: bytes) -> None:
        assert_problem(await client.post(SIGNUP, content=raw, headers=JSON), 400, "malformed_json")

    @pytest.mark.parametrize(
        "raw",
        [b'{"name": "\xff\xfe"}', b'{"name": "caf\xe9"}', '{"name": "é"}'.encode("utf-16")],
    )
    async def test_invalid_utf8_is_400(self, client: httpx.AsyncClient, raw: bytes) -> None:
        assert_problem(await client.post(SIGNUP, content=raw, headers=JSON), 400, "malformed_json")

    @pytest.mark.parametrize("raw", [b"[]", b'"a string"', b"42", b"null", b"true"])
    async def test_json_that_is_not_an_object_is_422(
        self, client: httpx.AsyncClient, raw: bytes
    ) -> None:
        assert_problem(await client.post(SIGNUP, content=raw, headers=JSON), 422)

    @pytest.mark.parametrize("depth", [40, 1_500, 100_000])
    async def test_deep_nesting_is_refused_not_500(
        self, client: httpx.AsyncClient, depth: int
    ) -> None:
        raw = b'{"email": "a@example.com", "x": ' + b"[" * depth + b"]" * depth + b"}"
        response = await client.post(SIGNUP, content=raw, headers=JSON)
        assert response.status_code in (400, 422)
        assert_problem(response, response.status_code)

    async def test_huge_integer_next_to_sanitized_text_is_not_500(
        self, client: httpx.AsyncClient
    ) -> None:
        raw = json.dumps({"email": _email(), "password": PASSWORD, "name": "<b>x</b>"})
        raw = raw[:-1] + ', "n": ' + "9" * 40 + "}"
        response = await client.post(SIGNUP, content=raw, headers=JSON)
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["body.n"]


class TestForbiddenCharacters:
    """C0 controls (but tab, LF, CR) and lone surrogates: 422 naming the field."""

    @pytest.mark.parametrize(
        "char", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x0e", "\x1b", "\x1f"]
    )
    async def test_control_character_in_name_is_422(
        self, client: httpx.AsyncClient, user: UserHandle, char: str
    ) -> None:
        response = await client.patch(ME, json={"name": f"a{char}b"}, headers=user.headers)
        body = assert_problem(response, 422)
        [error] = body["errors"]
        assert error == {
            "field": "body.name",
            "message": error["message"],
            "type": "forbidden_character",
        }
        assert "not allowed" in body["errors"][0]["message"]

    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            (rb'{"name": "\ud800"}', "body.name"),
            (rb'{"name": "ok\udfff"}', "body.name"),
            (rb'{"name": "x", "tags": ["a", "\udc00"]}', "body.tags.1"),
            (rb'{"name": "x", "meta": {"list": [{"deep": "a\ud83d"}]}}', "body.meta.list.0.deep"),
            (rb'{"name": "x", "tags": ["a", "b\u0000"]}', "body.tags.1"),
            (rb'{"name": "x", "meta": {"inner": "\u0007"}}', "body.meta.inner"),
        ],
    )
    async def test_nested_values_are_checked(
        self, client: httpx.AsyncClient, user: UserHandle, raw: bytes, field: str
    ) -> None:
        response = await client.patch(ME, content=raw, headers={**user.headers, **JSON})
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == [field]

    async def test_control_character_in_a_key_is_422(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.patch(ME, json={"na\u0000me": "x"}, headers=user.headers)
        assert_problem(response, 422)

    async def test_control_character_in_a_password_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            SIGNUP, json={"email": _email(), "password": PASSWORD + "\x00"}
        )
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["body.password"]

    async def test_paired_surrogates_are_fine(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        raw = rb'{"name": "smile \ud83d\ude00"}'
        response = await client.patch(ME, content=raw, headers={**user.headers, **JSON})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "smile \U0001f600"

    async def test_tab_lf_cr_are_accepted(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.patch(ME, json={"name": "a\tb\nc\rd"}, headers=user.headers)
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "a\tb\nc\rd"
        me = await client.get(ME, headers=user.headers)
        assert me.json()["name"] == "a\tb\nc\rd"

    async def test_oversized_string_is_422_without_echo(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.patch(ME, json={"name": "N" * 50_000}, headers=user.headers)
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == ["body.name"]
        assert "N" * 20 not in response.text


class TestQueryParameters:
    async def test_unknown_query_parameters_are_ignored(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.get(
            ME, params={"foo": "bar", "limit": "zzz", "x[]": "1"}, headers=user.headers
        )
        assert response.status_code == 200
        assert (await client.get("/health?unknown=1&&=")).status_code == 200


async def test_client_gone_mid_body_gets_no_answer(app: FastAPI) -> None:
    """A client that disconnects while sending: nothing reaches the route, nothing is sent."""
    messages = iter(
        [
            {"type": "http.request", "body": b'{"email": ', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": SIGNUP, "raw_path": SIGNUP.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1), "server": ("test", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent == []
