"""GET, PATCH and DELETE /auth/me."""

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.schemas import utcnow
from tests.auth.helpers import (
    AUTH,
    TIMESTAMP,
    assert_invalid_token,
    assert_problem,
    field_messages,
    login,
    login_handle,
    session_id,
    signup,
)
from tests.conftest import UserHandle, recorded_statements


class TestReadMe:
    async def test_returns_the_user(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        response = await client.get(f"{AUTH}/me", headers=user.headers)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"id", "email", "name", "auth_provider", "created_at"}
        assert body["id"] == user.id
        assert body["email"] == user.email
        assert body["auth_provider"] == "local"
        assert TIMESTAMP.match(body["created_at"])

    async def test_user_and_session_are_checked_in_one_query(
        self, client: httpx.AsyncClient, app: FastAPI, user: UserHandle
    ) -> None:
        with recorded_statements(app) as statements:
            assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200
        assert len(statements) == 1, statements
        assert "user_account" in statements[0]
        assert "user_session" in statements[0]

    async def test_a_due_last_used_at_is_written_by_that_same_query(
        self, client: httpx.AsyncClient, app: FastAPI, db: asyncpg.Connection, user: UserHandle
    ) -> None:
        sid, an_hour_ago = uuid.UUID(session_id(user.access_token)), utcnow() - timedelta(hours=1)
        await db.execute(
            "UPDATE user_session SET last_used_at = $2 WHERE id = $1", sid, an_hour_ago
        )
        with recorded_statements(app) as statements:
            assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200
        assert len(statements) == 1, statements
        used = await db.fetchval("SELECT last_used_at FROM user_session WHERE id = $1", sid)
        assert used > an_hour_ago + timedelta(minutes=59)

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{AUTH}/me")
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    async def test_other_scheme_is_401(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        headers = {"Authorization": f"Basic {user.access_token}"}
        assert_problem(await client.get(f"{AUTH}/me", headers=headers), 401, "not_authenticated")


class TestUpdateMe:
    async def patch(
        self, client: httpx.AsyncClient, user: UserHandle, body: dict[str, Any]
    ) -> httpx.Response:
        return await client.patch(f"{AUTH}/me", headers=user.headers, json=body)

    @pytest.mark.parametrize(
        ("sent", "stored"),
        [
            ("Grace Hopper", "Grace Hopper"),
            ("   Grace   ", "Grace"),
            ("<script>alert(1)</script>Grace <b>H.</b>", "alert(1)Grace H."),
            ("Tom & Jerry <3 a < b", "Tom & Jerry <3 a < b"),
            ("n" * 100, "n" * 100),
        ],
        ids=["plain", "trimmed", "markup-removed", "plain-text-kept", "longest"],
    )
    async def test_sets_the_name(
        self, client: httpx.AsyncClient, user: UserHandle, sent: str, stored: str
    ) -> None:
        response = await self.patch(client, user, {"name": sent})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == stored
        me = await client.get(f"{AUTH}/me", headers=user.headers)
        assert me.json()["name"] == stored

    async def test_null_clears_the_name(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        await self.patch(client, user, {"name": "Someone"})
        response = await self.patch(client, user, {"name": None})
        assert response.status_code == 200
        assert response.json()["name"] is None

    async def test_empty_body_changes_nothing(self, client: httpx.AsyncClient) -> None:
        user = await signup(client, name="Kept")
        response = await self.patch(client, user, {})
        assert response.status_code == 200
        assert response.json()["name"] == "Kept"

    @pytest.mark.parametrize(
        "name",
        ["   ", "<b></b>", "n" * 101, "tab\tok?\x07bell", "nul\x00byte", 42],
        ids=["blank", "blank-after-sanitizing", "too-long", "bell", "nul", "not-a-string"],
    )
    async def test_invalid_name_is_422(
        self, client: httpx.AsyncClient, user: UserHandle, name: object
    ) -> None:
        response = await self.patch(client, user, {"name": name})
        body = assert_problem(response, 422, "validation_error")
        assert "body.name" in field_messages(body)

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "new@example.com"},
            {"id": "00000000-0000-0000-0000-000000000001"},
            {"name": "Ok", "created_at": "2020-01-01T00:00:00Z"},
            {"password": "another password 1"},
        ],
        ids=["email", "id", "created_at", "password"],
    )
    async def test_unknown_fields_are_422(
        self, client: httpx.AsyncClient, user: UserHandle, body: dict[str, Any]
    ) -> None:
        response = await self.patch(client, user, body)
        assert_problem(response, 422, "validation_error")
        me = (await client.get(f"{AUTH}/me", headers=user.headers)).json()
        assert me["email"] == user.email
        assert me["name"] is None

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.patch(f"{AUTH}/me", json={"name": "x"})
        assert_problem(response, 401, "not_authenticated")


class TestDeleteMe:
    async def delete(
        self, client: httpx.AsyncClient, user: UserHandle, password: str
    ) -> httpx.Response:
        return await client.request(
            "DELETE", f"{AUTH}/me", headers=user.headers, json={"password": password}
        )

    async def test_deletes_the_user_and_ends_every_session(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        second = await login_handle(client, user)
        response = await self.delete(client, user, user.password)
        assert response.status_code == 204
        for handle in (user, second):
            assert_invalid_token(await client.get(f"{AUTH}/me", headers=handle.headers))
            refreshed = await client.post(
                f"{AUTH}/refresh", json={"refresh_token": handle.refresh_token}
            )
            assert_invalid_token(refreshed)
        assert (await login(client, user.email, user.password)).status_code == 401

    async def test_email_is_free_again(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        await self.delete(client, user, user.password)
        again = await signup(client, email=user.email)
        assert again.id != user.id

    async def test_wrong_password_is_401_and_keeps_the_account(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await self.delete(client, user, user.password + "!")
        assert_problem(response, 401, "invalid_credentials")
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200
        assert (await login(client, user.email, user.password)).status_code == 200

    @pytest.mark.parametrize("body", [None, "null"])
    async def test_no_password_is_401_and_keeps_the_account(
        self, client: httpx.AsyncClient, user: UserHandle, body: str | None
    ) -> None:
        """Our accounts confirm a deletion with their password (an external one needs
        none, see test_external.py): without one, nothing is deleted."""
        headers = {**user.headers, "Content-Type": "application/json"}
        response = await client.request("DELETE", f"{AUTH}/me", content=body, headers=headers)
        assert_problem(response, 401, "invalid_credentials")
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200

    async def test_other_users_are_unaffected(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        await self.delete(client, user, user.password)
        assert (await client.get(f"{AUTH}/me", headers=other_user.headers)).status_code == 200

    @pytest.mark.parametrize("body", [{}, {"password": "x" * 12, "force": True}])
    async def test_missing_or_extra_fields_are_422(
        self, client: httpx.AsyncClient, user: UserHandle, body: dict[str, Any] | None
    ) -> None:
        response = await client.request("DELETE", f"{AUTH}/me", headers=user.headers, json=body)
        assert_problem(response, 422, "validation_error")
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.request("DELETE", f"{AUTH}/me", json={"password": "whatever1"})
        assert_problem(response, 401, "not_authenticated")
