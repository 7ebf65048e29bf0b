"""No password, token or Authorization value in any log record or any error body."""

import logging

import httpx
import pytest

from app.core.logging import JsonFormatter
from app.core.schemas import FieldError
from tests.auth.helpers import AUTH, bearer, unique_email

FIELD_ERROR_KEYS = set(FieldError.model_fields)

PASSWORD = "Secret-Pw-7f3a9c-first"
NEW_PASSWORD = "Secret-Pw-7f3a9c-second"
WRONG_PASSWORD = "Secret-Pw-7f3a9c-wrong"
WEAK_PASSWORD = "Sec7f3a"  # 7 characters, refused
FORGED_TOKEN = "forged-7f3a9c-token"


class Recorder:
    """Every response of the walk, and the secrets that went over the wire."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.responses: list[httpx.Response] = []
        self.secrets = {PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, WEAK_PASSWORD, FORGED_TOKEN}

    async def call(self, method: str, path: str, **kwargs: object) -> dict[str, object]:
        response = await self.client.request(method, f"{AUTH}{path}", **kwargs)
        self.responses.append(response)
        body = response.json() if response.content else {}
        for key in ("access_token", "refresh_token"):
            if isinstance(body, dict) and key in body:
                self.secrets.add(str(body[key]))
        return body if isinstance(body, dict) else {}


async def walk_every_secret_bearing_route(rec: Recorder) -> None:
    email = unique_email("hygiene")
    await rec.call("POST", "/signup", json={"email": email, "password": WEAK_PASSWORD})
    first = await rec.call("POST", "/signup", json={"email": email, "password": PASSWORD})
    auth = bearer(str(first["access_token"]))
    await rec.call("POST", "/login", json={"email": email, "password": WRONG_PASSWORD})
    await rec.call("POST", "/login", json={"email": email, "password": PASSWORD, "x": PASSWORD})
    await rec.call("POST", "/token", data={"username": email, "password": WRONG_PASSWORD})
    await rec.call("POST", "/token", data={"username": email, "password": f"{PASSWORD}\x00"})
    await rec.call("POST", "/login", json={"email": email, "password": PASSWORD})
    await rec.call("POST", "/refresh", json={"refresh_token": first["refresh_token"]})
    await rec.call("POST", "/refresh", json={"refresh_token": first["refresh_token"]})  # reuse
    await rec.call("GET", "/me", headers=bearer(FORGED_TOKEN))
    await rec.call("GET", "/me", headers=auth)  # revoked by the reuse above
    login = await rec.call("POST", "/login", json={"email": email, "password": PASSWORD})
    auth = bearer(str(login["access_token"]))
    change = {"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD}
    await rec.call("POST", "/password", headers=auth, json=change)
    weak = {"current_password": PASSWORD, "new_password": WEAK_PASSWORD}
    await rec.call("POST", "/password", headers=auth, json=weak)
    change["current_password"] = PASSWORD
    await rec.call("POST", "/password", headers=auth, json=change)
    await rec.call("DELETE", "/me", headers=auth, json={"password": WRONG_PASSWORD})
    await rec.call("DELETE", "/me", headers=auth, json={"password": NEW_PASSWORD})


class TestSecretHygiene:
    @pytest.fixture
    async def walked(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> tuple[Recorder, list[logging.LogRecord]]:
        caplog.set_level(logging.DEBUG)
        rec = Recorder(client)
        await walk_every_secret_bearing_route(rec)
        return rec, list(caplog.records)

    async def test_walk_covers_successes_and_failures(
        self, walked: tuple[Recorder, list[logging.LogRecord]]
    ) -> None:
        rec, records = walked
        statuses = [r.status_code for r in rec.responses]
        signup_and_login = [422, 201, 401, 422, 401, 422, 200]
        tokens = [200, 401, 401, 401, 200]
        account = [401, 422, 204, 401, 204]
        assert statuses == signup_and_login + tokens + account
        assert len(rec.secrets) >= 11  # five passwords, the forged token, six tokens issued
        assert any(record.name == "app.access" for record in records)

    async def test_no_secret_in_any_log_record(
        self, walked: tuple[Recorder, list[logging.LogRecord]]
    ) -> None:
        rec, records = walked
        formatter = JsonFormatter()
        for record in records:
            text = f"{formatter.format(record)} {record.args!r} {vars(record)!r}"
            leaked = [secret for secret in rec.secrets if secret in text]
            assert not leaked, (record.name, record.getMessage())

    async def test_no_secret_in_any_error_body(
        self, walked: tuple[Recorder, list[logging.LogRecord]]
    ) -> None:
        rec, _ = walked
        errors = [r for r in rec.responses if r.status_code >= 400]
        assert len(errors) == 11
        for response in errors:
            assert response.headers["content-type"].startswith("application/problem+json")
            leaked = [secret for secret in rec.secrets if secret in response.text]
            assert not leaked, response.text
            for error in response.json().get("errors", []):
                # never FastAPI's `input` (nor `ctx`, which may quote it): only ours
                assert {"field", "message", "type"} <= set(error) <= FIELD_ERROR_KEYS
