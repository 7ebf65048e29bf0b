"""POST /auth/password."""

import uuid
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from app.auth import service
from app.auth.exceptions import InvalidCredentials
from app.core.tokens import AccessClaims
from tests.auth.helpers import (
    AUTH,
    assert_invalid_token,
    assert_problem,
    field_messages,
    login,
    login_handle,
)
from tests.conftest import UserHandle

NEW_PASSWORD = "a brand new passphrase 2"


async def change(
    client: httpx.AsyncClient, user: UserHandle, current: str, new: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(
        f"{AUTH}/password",
        headers=user.headers,
        json={"current_password": current, "new_password": new},
    )


async def refresh(client: httpx.AsyncClient, handle: UserHandle) -> httpx.Response:
    return await client.post(f"{AUTH}/refresh", json={"refresh_token": handle.refresh_token})


class TestChangePassword:
    async def test_a_change_checked_against_a_replaced_password_writes_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, user: UserHandle
    ) -> None:
        """Two changes that both checked the old password: the later one is refused
        (the password it was given is no longer the current one), not silently lost."""
        database, auth = app.state.database, app.state.auth
        token = jwt.decode(user.access_token, options={"verify_signature": False})
        claims = AccessClaims(uuid.UUID(token["sub"]), uuid.UUID(token["sid"]))
        loaded = await service.authenticate(database, claims)  # as the first request did
        assert (await change(client, user, user.password)).status_code == 204
        with pytest.raises(InvalidCredentials):
            await service.change_password(
                database, auth, loaded, claims, user.password, "a third passphrase 3"
            )
        assert (await login(client, user.email, NEW_PASSWORD)).status_code == 200

    async def test_new_password_logs_in_and_old_does_not(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await change(client, user, user.password)
        assert response.status_code == 204
        assert response.content == b""
        assert (await login(client, user.email, NEW_PASSWORD)).status_code == 200
        assert_problem(await login(client, user.email, user.password), 401, "invalid_credentials")

    async def test_other_sessions_end_and_this_one_continues(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        others = [await login_handle(client, user), await login_handle(client, user)]
        assert (await change(client, user, user.password)).status_code == 204
        for handle in others:
            assert_invalid_token(await client.get(f"{AUTH}/me", headers=handle.headers))
            assert_invalid_token(await refresh(client, handle))
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200
        assert (await refresh(client, user)).status_code == 200
        assert (await client.get(f"{AUTH}/me", headers=other_user.headers)).status_code == 200

    async def test_wrong_current_password_is_401_and_changes_nothing(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        other = await login_handle(client, user)
        response = await change(client, user, "not my password")
        assert_problem(response, 401, "invalid_credentials")
        assert (await login(client, user.email, user.password)).status_code == 200
        assert (await client.get(f"{AUTH}/me", headers=other.headers)).status_code == 200
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200

    @pytest.mark.parametrize(
        ("new", "reason"),
        [("sh0rt!", "at least 8"), ("qwertyuiop", "commonly used"), ("y" * 129, "at most 128")],
        ids=["short", "common", "too-long"],
    )
    async def test_weak_new_password_is_422(
        self, client: httpx.AsyncClient, user: UserHandle, new: str, reason: str
    ) -> None:
        response = await change(client, user, user.password, new)
        body = assert_problem(response, 422, "validation_error")
        assert reason in field_messages(body)["body.new_password"]
        assert new not in response.text
        assert user.password not in response.text
        assert (await login(client, user.email, user.password)).status_code == 200

    async def test_new_password_is_stored_exactly(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        new = "  <i>spaced & marked</i>  "
        assert (await change(client, user, user.password, new)).status_code == 204
        assert (await login(client, user.email, new)).status_code == 200
        assert (await login(client, user.email, new.strip())).status_code == 401

    @pytest.mark.parametrize(
        "body",
        [
            {"new_password": NEW_PASSWORD},
            {"current_password": "x", "new_password": NEW_PASSWORD, "x": 1},
        ],
        ids=["no-current", "extra-field"],
    )
    async def test_malformed_body_is_422(
        self, client: httpx.AsyncClient, user: UserHandle, body: dict[str, Any]
    ) -> None:
        response = await client.post(f"{AUTH}/password", headers=user.headers, json=body)
        assert_problem(response, 422, "validation_error")

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{AUTH}/password", json={"current_password": "x" * 8, "new_password": NEW_PASSWORD}
        )
        assert_problem(response, 401, "not_authenticated")
