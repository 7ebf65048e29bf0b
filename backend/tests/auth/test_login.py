"""POST /auth/login (JSON) and POST /auth/token (OAuth2 password form)."""

import statistics
import time
import uuid
from datetime import timedelta

import asyncpg
import bcrypt
import httpx
import pytest
from fastapi import FastAPI

from app.auth import statements
from app.core.schemas import utcnow
from tests.auth.helpers import (
    AUTH,
    TOKEN_KEYS,
    assert_no_store,
    assert_problem,
    bearer,
    field_messages,
    login,
    signup,
    unique_email,
    without_request_id,
)
from tests.conftest import PASSWORD, AppFactory, UserHandle, client_for, recorded_statements


async def stored_hash(db: asyncpg.Connection, email: str) -> str:
    hashed: str = await db.fetchval(
        "SELECT hashed_password FROM user_account WHERE email = $1", email
    )
    return hashed


class TestLogin:
    async def test_returns_user_and_token_pair(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await login(client, user.email, user.password)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"user", *TOKEN_KEYS}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 15 * 60
        assert body["user"]["id"] == user.id
        assert body["access_token"] != user.access_token
        assert_no_store(response)
        me = await client.get(f"{AUTH}/me", headers=bearer(body["access_token"]))
        assert me.json()["email"] == user.email

    async def test_email_is_trimmed_and_case_insensitive(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await login(client, f"  {user.email.upper()} ", user.password)
        assert response.status_code == 200
        assert response.json()["user"]["id"] == user.id

    async def test_unknown_email_and_wrong_password_answer_alike(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        wrong_password = await login(client, user.email, user.password + "x")
        unknown_email = await login(client, unique_email("nobody"), user.password)
        for response in (wrong_password, unknown_email):
            assert_problem(response, 401, "invalid_credentials")
            assert response.headers["www-authenticate"] == "Bearer"
        assert without_request_id(wrong_password.json()) == without_request_id(unknown_email.json())
        assert set(wrong_password.headers) == set(unknown_email.headers)

    async def test_unknown_email_costs_a_password_verification(self, make_app: AppFactory) -> None:
        """Equal work, not a speed limit: if no dummy hash were verified for an unknown
        email, that answer would come ~10x sooner than a wrong password's (bcrypt cost 9)."""
        async with client_for(make_app(BCRYPT_ROUNDS=9)) as client:
            user = await signup(client)
            await login(client, user.email, "warm-up-password")
            timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
            for _ in range(7):  # interleaved, so load on the machine hits both alike
                for kind, email in (("unknown", unique_email("nobody")), ("wrong", user.email)):
                    start = time.perf_counter()
                    response = await login(client, email, "not-the-password")
                    timings[kind].append(time.perf_counter() - start)
                    assert response.status_code == 401
        unknown, wrong = (statistics.median(timings[k]) for k in ("unknown", "wrong"))
        assert unknown >= 0.5 * wrong, timings

    async def test_password_sharing_first_80_bytes_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        """Plain bcrypt ignores everything past 72 bytes; here every character counts."""
        prefix = "k" * 80
        user = await signup(client, password=prefix + "-one")
        assert (await login(client, user.email, prefix + "-two")).status_code == 401
        assert (await login(client, user.email, prefix)).status_code == 401
        assert (await login(client, user.email, prefix + "-one")).status_code == 200

    async def test_plain_bcrypt_hash_logs_in_and_is_upgraded(
        self, client: httpx.AsyncClient, db: asyncpg.Connection
    ) -> None:
        email, password = unique_email("legacy"), "legacy password 42"
        legacy = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
        await db.execute(
            "INSERT INTO user_account (id, email, hashed_password, created_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $4)",
            uuid.uuid4(),
            email,
            legacy,
            utcnow(),
        )
        assert (await login(client, email, "legacy password 43")).status_code == 401
        assert await stored_hash(db, email) == legacy
        response = await login(client, email, password)
        assert response.status_code == 200, response.text
        upgraded = await stored_hash(db, email)
        assert upgraded.startswith("$bcrypt-sha256$")
        assert (await login(client, email, password)).status_code == 200

    async def test_an_upgrade_never_overwrites_a_password_changed_meanwhile(
        self, db: asyncpg.Connection, user: UserHandle
    ) -> None:
        """A login verified the hash it read, then the password changed before the
        login's write: the upgraded old hash must not replace the new password."""
        current, now = await stored_hash(db, user.email), utcnow()
        started = await db.fetchval(
            statements.LOGIN,
            uuid.UUID(user.id),
            "$2b$04$the.hash.the.login.read.before.the.change.......",
            "$bcrypt-sha256$v=2,t=2b,r=4$upgraded.old.password",
            uuid.uuid4(),
            now,
            now + timedelta(days=1),
            None,
            "0" * 64,
        )
        assert started
        assert await stored_hash(db, user.email) == current

    async def test_hash_of_another_cost_is_upgraded(
        self, make_app: AppFactory, db: asyncpg.Connection, user: UserHandle
    ) -> None:
        assert ",r=4$" in await stored_hash(db, user.email)
        async with client_for(make_app(BCRYPT_ROUNDS=5)) as client:
            assert (await login(client, user.email, user.password)).status_code == 200
        assert ",r=5$" in await stored_hash(db, user.email)

    async def test_costs_a_read_and_a_write(
        self, client: httpx.AsyncClient, app: FastAPI, user: UserHandle
    ) -> None:
        """The user is read, the password checked with no connection held, then the
        session and its refresh token are written in one statement."""
        with recorded_statements(app) as statements:
            assert (await login(client, user.email, user.password)).status_code == 200
        assert len(statements) == 2, statements

    async def test_each_login_starts_a_session(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        await login(client, user.email, user.password)
        await login(client, user.email, user.password)
        sessions = await client.get(f"{AUTH}/sessions", headers=user.headers)
        assert len(sessions.json()) == 3

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "a@example.com", "password": PASSWORD, "remember_me": True},
            {"email": "a@example.com"},
            {"password": PASSWORD},
            {"email": "", "password": PASSWORD},
            {"email": "a@example.com", "password": "x" * 513},
        ],
        ids=["extra-field", "no-password", "no-email", "empty-email", "oversized-password"],
    )
    async def test_malformed_body_is_422(
        self, client: httpx.AsyncClient, body: dict[str, object]
    ) -> None:
        response = await client.post(f"{AUTH}/login", json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert problem["errors"]
        assert "x" * 100 not in response.text

    async def test_json_route_refuses_a_form(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{AUTH}/login", data={"email": "a@example.com", "password": PASSWORD}
        )
        assert_problem(response, 415, "unsupported_media_type")


class TestToken:
    async def test_form_login_returns_token_pair(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            f"{AUTH}/token", data={"username": user.email, "password": user.password}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == TOKEN_KEYS
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 15 * 60
        assert_no_store(response)
        me = await client.get(f"{AUTH}/me", headers=bearer(body["access_token"]))
        assert me.json()["id"] == user.id
        refreshed = await client.post(
            f"{AUTH}/refresh", json={"refresh_token": body["refresh_token"]}
        )
        assert refreshed.status_code == 200

    async def test_username_is_trimmed_and_case_insensitive(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            f"{AUTH}/token", data={"username": f" {user.email.upper()} ", "password": user.password}
        )
        assert response.status_code == 200

    async def test_bad_credentials_answer_like_login(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        wrong = await client.post(
            f"{AUTH}/token", data={"username": user.email, "password": "wrong password"}
        )
        unknown = await client.post(
            f"{AUTH}/token", data={"username": unique_email(), "password": "wrong password"}
        )
        json_login = await login(client, user.email, "wrong password")
        for response in (wrong, unknown):
            assert_problem(response, 401, "invalid_credentials")
            assert without_request_id(response.json()) == without_request_id(json_login.json())

    @pytest.mark.parametrize(
        ("form", "field"),
        [
            ({"username": "a@example.com"}, "body.password"),
            ({"password": "x" * 12}, "body.username"),
            ({"username": "   ", "password": "x" * 12}, "body.username"),
            ({"username": "a@example.com", "password": "x" * 513}, "body.password"),
        ],
        ids=["no-password", "no-username", "blank-username", "oversized-password"],
    )
    async def test_invalid_form_is_problem_json_422(
        self, client: httpx.AsyncClient, form: dict[str, str], field: str
    ) -> None:
        response = await client.post(f"{AUTH}/token", data=form)
        body = assert_problem(response, 422, "validation_error")
        assert field in field_messages(body)

    async def test_control_character_is_422(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            f"{AUTH}/token", data={"username": user.email, "password": "bad\x00password"}
        )
        body = assert_problem(response, 422, "validation_error")
        assert "body.password" in field_messages(body)

    async def test_wrong_grant_type_is_422(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            f"{AUTH}/token",
            data={"username": user.email, "password": user.password, "grant_type": "implicit"},
        )
        assert_problem(response, 422, "validation_error")

    async def test_multipart_form_is_accepted(
        self, client: httpx.AsyncClient, user: UserHandle
    ) -> None:
        response = await client.post(
            f"{AUTH}/token",
            files={"username": (None, user.email), "password": (None, user.password)},
        )
        assert response.status_code == 200, response.text

    async def test_other_content_type_is_415(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            f"{AUTH}/token",
            content=b"username=a&password=b",
            headers={"content-type": "text/plain"},
        )
        assert_problem(response, 415, "unsupported_media_type")
