"""GET /auth/sessions and DELETE /auth/sessions/{id}."""

import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest

from app.core.schemas import utcnow
from tests.auth.helpers import (
    AUTH,
    TIMESTAMP,
    assert_invalid_token,
    assert_problem,
    login,
    session_id,
    without_request_id,
)
from tests.conftest import UserHandle


async def list_sessions(client: httpx.AsyncClient, user: UserHandle) -> list[dict[str, object]]:
    response = await client.get(f"{AUTH}/sessions", headers=user.headers)
    assert response.status_code == 200, response.text
    sessions: list[dict[str, object]] = response.json()
    return sessions


async def second_session(
    client: httpx.AsyncClient, user: UserHandle, agent: str = "phone/2.0"
) -> UserHandle:
    response = await login(client, user.email, user.password, **{"User-Agent": agent})
    assert response.status_code == 200
    return UserHandle(user.email, user.password, response.json())


class TestListSessions:
    async def test_lists_sessions_with_the_current_one_marked(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        phone = await second_session(client, user, agent="phone/2.0")
        sessions = await list_sessions(client, user)
        assert len(sessions) == 2
        for item in sessions:
            assert set(item) == {"id", "created_at", "last_used_at", "user_agent", "current"}
            assert TIMESTAMP.match(str(item["created_at"]))
            assert TIMESTAMP.match(str(item["last_used_at"]))
        by_id = {item["id"]: item for item in sessions}
        assert by_id[session_id(user.access_token)]["current"] is True
        assert by_id[session_id(phone.access_token)]["current"] is False
        assert by_id[session_id(phone.access_token)]["user_agent"] == "phone/2.0"
        assert str(by_id[session_id(user.access_token)]["user_agent"]).startswith("python-httpx")

    @pytest.mark.usefixtures("other_user")  # who has a session too, not to be listed
    async def test_only_the_callers_live_sessions(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        phone = await second_session(client, user)
        await client.post(f"{AUTH}/logout", headers=phone.headers)
        sessions = await list_sessions(client, user)
        assert [item["id"] for item in sessions] == [session_id(user.access_token)]

    async def test_last_used_at_is_refreshed_by_use(
        self, client: httpx.AsyncClient, db: asyncpg.Connection, user: UserHandle
    ) -> None:
        """Written at most every few minutes: an hour-old value is updated on the next use."""
        an_hour_ago = utcnow() - timedelta(hours=1)
        await db.execute(
            "UPDATE user_session SET last_used_at = $2 WHERE id = $1",
            uuid.UUID(session_id(user.access_token)),
            an_hour_ago,
        )
        touched = (await list_sessions(client, user))[0]["last_used_at"]
        assert str(touched) > an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # Used again at once: not written again (one write per interval, not per request).
        assert (await list_sessions(client, user))[0]["last_used_at"] == touched

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        assert_problem(await client.get(f"{AUTH}/sessions"), 401, "not_authenticated")


class TestRevokeSession:
    async def test_ends_that_session_only(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        phone = await second_session(client, user)
        response = await client.delete(
            f"{AUTH}/sessions/{session_id(phone.access_token)}", headers=user.headers
        )
        assert response.status_code == 204
        assert_invalid_token(await client.get(f"{AUTH}/me", headers=phone.headers))
        refreshed = await client.post(
            f"{AUTH}/refresh", json={"refresh_token": phone.refresh_token}
        )
        assert_invalid_token(refreshed)
        assert (await client.get(f"{AUTH}/me", headers=user.headers)).status_code == 200

    async def test_own_current_session_can_be_ended(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        url = f"{AUTH}/sessions/{session_id(user.access_token)}"
        assert (await client.delete(url, headers=user.headers)).status_code == 204
        assert_invalid_token(await client.get(f"{AUTH}/me", headers=user.headers))

    async def test_unknown_and_foreign_sessions_are_the_same_404(
        self, client: httpx.AsyncClient, user: UserHandle, other_user: UserHandle
    ) -> None:
        unknown = await client.delete(f"{AUTH}/sessions/{uuid.uuid4()}", headers=user.headers)
        foreign = await client.delete(
            f"{AUTH}/sessions/{session_id(other_user.access_token)}", headers=user.headers
        )
        for response in (unknown, foreign):
            assert_problem(response, 404, "session_not_found")
        assert without_request_id(unknown.json()) == without_request_id(foreign.json())
        assert (await client.get(f"{AUTH}/me", headers=other_user.headers)).status_code == 200

    async def test_already_ended_session_is_404(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        phone = await second_session(client, user)
        url = f"{AUTH}/sessions/{session_id(phone.access_token)}"
        await client.delete(url, headers=user.headers)
        assert_problem(await client.delete(url, headers=user.headers), 404, "session_not_found")

    async def test_malformed_id_is_422(self, client: httpx.AsyncClient, user: UserHandle) -> None:
        response = await client.delete(f"{AUTH}/sessions/not-a-uuid", headers=user.headers)
        assert_problem(response, 422, "validation_error")

    async def test_without_token_is_401(self, client: httpx.AsyncClient) -> None:
        response = await client.delete(f"{AUTH}/sessions/{uuid.uuid4()}")
        assert_problem(response, 401, "not_authenticated")
