"""POST /auth/signup."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from tests.auth.helpers import (
    AUTH,
    TIMESTAMP,
    TOKEN_KEYS,
    assert_no_store,
    assert_problem,
    bearer,
    field_messages,
    login,
    unique_email,
)
from tests.conftest import PASSWORD, recorded_statements


class TestSignup:
    async def test_returns_user_and_token_pair(self, client: httpx.AsyncClient) -> None:
        email = unique_email()
        response = await client.post(
            f"{AUTH}/signup", json={"email": email, "password": PASSWORD, "name": "Ada"}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == {"user", *TOKEN_KEYS}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 15 * 60
        assert set(body["user"]) == {"id", "email", "name", "auth_provider", "created_at"}
        assert body["user"]["email"] == email
        assert body["user"]["name"] == "Ada"
        assert TIMESTAMP.match(body["user"]["created_at"])
        assert_no_store(response)

    async def test_account_session_and_token_are_one_statement(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        with recorded_statements(app) as statements:
            response = await client.post(
                f"{AUTH}/signup", json={"email": unique_email(), "password": PASSWORD}
            )
        assert response.status_code == 201, response.text
        assert len(statements) == 1, statements

    async def test_tokens_work_at_once(self, client: httpx.AsyncClient) -> None:
        body = (
            await client.post(
                f"{AUTH}/signup", json={"email": unique_email(), "password": PASSWORD}
            )
        ).json()
        me = await client.get(f"{AUTH}/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200
        assert me.json()["id"] == body["user"]["id"]
        refreshed = await client.post(
            f"{AUTH}/refresh", json={"refresh_token": body["refresh_token"]}
        )
        assert refreshed.status_code == 200

    async def test_email_is_trimmed_and_lower_cased(self, client: httpx.AsyncClient) -> None:
        email = unique_email()
        response = await client.post(
            f"{AUTH}/signup", json={"email": f"  {email.upper()}\t", "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
        assert response.json()["user"]["email"] == email
        assert (await login(client, email, PASSWORD)).status_code == 200

    async def test_name_is_optional(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{AUTH}/signup", json={"email": unique_email(), "password": PASSWORD}
        )
        assert response.status_code == 201
        assert response.json()["user"]["name"] is None

    async def test_name_is_sanitized_and_trimmed(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{AUTH}/signup",
            json={"email": unique_email(), "password": PASSWORD, "name": "  <b>Ada</b> L.  "},
        )
        assert response.status_code == 201
        assert response.json()["user"]["name"] == "Ada L."

    async def test_taken_email_is_409_ignoring_case(self, client: httpx.AsyncClient) -> None:
        email = unique_email()
        first = await client.post(f"{AUTH}/signup", json={"email": email, "password": PASSWORD})
        assert first.status_code == 201
        again = await client.post(
            f"{AUTH}/signup", json={"email": f" {email.upper()} ", "password": PASSWORD + "2"}
        )
        body = assert_problem(again, 409, "email_taken")
        assert "errors" not in body

    @pytest.mark.parametrize(
        ("password", "reason"),
        [
            ("short1!", "at least 8 characters"),
            ("iloveyou", "commonly used"),
            ("Password123", "commonly used"),
            ("x" * 129, "at most 128 characters"),
        ],
        ids=["too-short", "common", "common-any-case", "too-long"],
    )
    async def test_weak_password_is_422_saying_why(
        self, client: httpx.AsyncClient, password: str, reason: str
    ) -> None:
        response = await client.post(
            f"{AUTH}/signup", json={"email": unique_email(), "password": password}
        )
        body = assert_problem(response, 422, "validation_error")
        assert reason in field_messages(body)["body.password"]
        assert password not in response.text

    @pytest.mark.parametrize("password", ["q7-Vx!kd", "é" * 128, "pässwörd-日本語-🔑"])
    async def test_boundary_and_non_ascii_passwords_work(
        self, client: httpx.AsyncClient, password: str
    ) -> None:
        email = unique_email()
        response = await client.post(f"{AUTH}/signup", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        assert (await login(client, email, password)).status_code == 200

    async def test_password_is_never_sanitized(self, client: httpx.AsyncClient) -> None:
        email, password = unique_email(), "<b>pass&word</b>1x"
        response = await client.post(f"{AUTH}/signup", json={"email": email, "password": password})
        assert response.status_code == 201
        assert (await login(client, email, password)).status_code == 200
        assert (await login(client, email, "pass&word1x")).status_code == 401

    @pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "", "a b@example.com"])
    async def test_bad_email_is_422(self, client: httpx.AsyncClient, email: str) -> None:
        response = await client.post(f"{AUTH}/signup", json={"email": email, "password": PASSWORD})
        body = assert_problem(response, 422, "validation_error")
        assert "body.email" in field_messages(body)

    @pytest.mark.parametrize(
        "extra", [{"id": "00000000-0000-0000-0000-000000000001"}, {"created_at": "2020-01-01"}]
    )
    async def test_unknown_fields_are_422(
        self, client: httpx.AsyncClient, extra: dict[str, str]
    ) -> None:
        response = await client.post(
            f"{AUTH}/signup", json={"email": unique_email(), "password": PASSWORD, **extra}
        )
        body = assert_problem(response, 422, "validation_error")
        assert f"body.{next(iter(extra))}" in field_messages(body)

    async def test_concurrent_signups_with_one_email(self, client: httpx.AsyncClient) -> None:
        """On PostgreSQL these truly race; the unique constraint decides."""
        email = unique_email()
        responses = await asyncio.gather(
            *(
                client.post(f"{AUTH}/signup", json={"email": email, "password": PASSWORD})
                for _ in range(5)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
        for response in responses:
            if response.status_code == 409:
                assert_problem(response, 409, "email_taken")
