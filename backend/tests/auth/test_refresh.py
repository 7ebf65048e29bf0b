"""POST /auth/refresh: rotation and reuse detection."""

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.schemas import utcnow
from tests.auth.helpers import (
    AUTH,
    TOKEN_KEYS,
    assert_invalid_token,
    assert_no_store,
    assert_problem,
    bearer,
    login_handle,
    session_id,
)
from tests.conftest import UserHandle, recorded_statements


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{AUTH}/refresh", json={"refresh_token": token})


class TestRefresh:
    async def test_returns_a_new_pair_in_the_same_session(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await refresh(client, user.refresh_token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"user", *TOKEN_KEYS}
        assert body["token_type"] == "bearer"
        assert body["user"]["id"] == user.id
        assert body["refresh_token"] != user.refresh_token
        assert session_id(body["access_token"]) == session_id(user.access_token)
        assert_no_store(response)
        me = await client.get(f"{AUTH}/me", headers=bearer(body["access_token"]))
        assert me.status_code == 200

    async def test_rotation_is_one_statement(
        self, client: httpx.AsyncClient, app: FastAPI, user: UserHandle
    ) -> None:
        with recorded_statements(app) as statements:
            assert (await refresh(client, user.refresh_token)).status_code == 200
        assert len(statements) == 1, statements

    async def test_old_refresh_token_is_spent(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert (await refresh(client, user.refresh_token)).status_code == 200
        assert_invalid_token(await refresh(client, user.refresh_token))

    async def test_new_refresh_token_rotates_again(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        token = user.refresh_token
        for _ in range(3):
            response = await refresh(client, token)
            assert response.status_code == 200
            token = response.json()["refresh_token"]

    async def test_reuse_of_a_spent_token_revokes_the_session(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        rotated = (await refresh(client, user.refresh_token)).json()
        assert_invalid_token(await refresh(client, user.refresh_token))  # the reuse
        assert_invalid_token(await refresh(client, rotated["refresh_token"]))
        for access in (rotated["access_token"], user.access_token):
            assert_invalid_token(await client.get(f"{AUTH}/me", headers=bearer(access)))

    async def test_reuse_leaves_other_sessions_alone(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        other = await login_handle(client, user)
        await refresh(client, user.refresh_token)
        await refresh(client, user.refresh_token)
        assert (await client.get(f"{AUTH}/me", headers=other.headers)).status_code == 200
        assert (await refresh(client, other.refresh_token)).status_code == 200

    async def test_concurrent_use_of_one_token_lets_one_win(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        """Two uses of one token: the second is a reuse, never a second pair or a 500."""
        responses = await asyncio.gather(*(refresh(client, user.refresh_token) for _ in range(2)))
        assert sorted(r.status_code for r in responses) == [200, 401]
        winner = next(r for r in responses if r.status_code == 200).json()
        assert_invalid_token(await refresh(client, winner["refresh_token"]))

    async def test_token_of_a_logged_out_session_is_refused(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert (await client.post(f"{AUTH}/logout", headers=user.headers)).status_code == 204
        assert_invalid_token(await refresh(client, user.refresh_token))

    async def test_expired_session_is_refused(
        self, client: httpx.AsyncClient, db: asyncpg.Connection, user: UserHandle
    ) -> None:
        await db.execute(
            "UPDATE user_session SET expires_at = $2 WHERE id = $1",
            uuid.UUID(session_id(user.access_token)),
            utcnow() - timedelta(seconds=1),
        )
        assert_invalid_token(await refresh(client, user.refresh_token))
        assert_invalid_token(await client.get(f"{AUTH}/me", headers=user.headers))

    @pytest.mark.parametrize("token", ["garbage", "x" * 512, "ç" * 40])
    async def test_unknown_token_is_401(self, client: httpx.AsyncClient, token: str) -> None:
        assert_invalid_token(await refresh(client, token))

    async def test_access_token_is_not_a_refresh_token(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        assert_invalid_token(await refresh(client, user.access_token))

    @pytest.mark.parametrize(
        "body",
        [{}, {"refresh_token": ""}, {"refresh_token": "abc", "user_id": "x"}, {"token": "abc"}],
        ids=["empty", "blank", "extra-field", "wrong-name"],
    )
    async def test_malformed_body_is_422(
        self, client: httpx.AsyncClient, body: dict[str, str]
    ) -> None:
        assert_problem(await client.post(f"{AUTH}/refresh", json=body), 422, "validation_error")
