"""POST /auth/logout and POST /auth/logout-all."""

import httpx

from tests.auth.helpers import AUTH, assert_invalid_token, assert_problem, login_handle
from tests.conftest import UserHandle


async def me_status(client: httpx.AsyncClient, handle: UserHandle) -> int:
    return (await client.get(f"{AUTH}/me", headers=handle.headers)).status_code


async def refresh_status(client: httpx.AsyncClient, handle: UserHandle) -> int:
    response = await client.post(f"{AUTH}/refresh", json={"refresh_token": handle.refresh_token})
    return response.status_code


class TestLogout:
    async def test_ends_this_session_at_once(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(f"{AUTH}/logout", headers=user.headers)
        assert response.status_code == 204
        assert response.content == b""
        assert_invalid_token(await client.get(f"{AUTH}/me", headers=user.headers))
        assert await refresh_status(client, user) == 401

    async def test_other_sessions_continue(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        second = await login_handle(client, user)
        await client.post(f"{AUTH}/logout", headers=user.headers)
        for handle in (second, other_user):
            assert await me_status(client, handle) == 200
            assert await refresh_status(client, handle) == 200

    async def test_twice_is_401(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        await client.post(f"{AUTH}/logout", headers=user.headers)
        assert_invalid_token(await client.post(f"{AUTH}/logout", headers=user.headers))

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.post(f"{AUTH}/logout")
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"


class TestLogoutAll:
    async def test_ends_every_session_of_the_user(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        sessions = [user, await login_handle(client, user), await login_handle(client, user)]
        response = await client.post(f"{AUTH}/logout-all", headers=sessions[1].headers)
        assert response.status_code == 204
        for handle in sessions:
            assert await me_status(client, handle) == 401
            assert await refresh_status(client, handle) == 401

    async def test_other_users_are_unaffected(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        await client.post(f"{AUTH}/logout-all", headers=user.headers)
        assert await me_status(client, other_user) == 200
        assert await refresh_status(client, other_user) == 200

    async def test_user_can_log_in_again(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        await client.post(f"{AUTH}/logout-all", headers=user.headers)
        fresh = await login_handle(client, user)
        assert await me_status(client, fresh) == 200

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.post(f"{AUTH}/logout-all"), 401, "not_authenticated")
