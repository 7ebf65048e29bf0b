"""Rate limits on login/token, signup and refresh (per client) and on failed logins (per
account), each run on in-memory storage and on Redis (`limited` fixture)."""

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from app.core.config import Settings
from tests.auth.conftest import LIMITS, LimitedApps
from tests.auth.helpers import AUTH, assert_problem, client_at, login, unique_email
from tests.conftest import PASSWORD, AppFactory, UserHandle, client_for


def assert_rate_limited(response: httpx.Response) -> None:
    assert_problem(response, 429, "rate_limited")
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after  # whole seconds, as RFC 9110 requires
    assert 1 <= int(retry_after) <= 60  # every limit in these tests is per minute


async def token_form(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(f"{AUTH}/token", data={"username": email, "password": password})


class TestLoginRateLimit:
    async def test_fourth_login_from_one_client_is_429(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        app = limited.build()  # LOGIN_RATE_LIMIT=3/minute
        async with client_at(app, "203.0.113.1") as client:
            for _ in range(3):
                assert (await login(client, user.email, user.password)).status_code == 200
            assert_rate_limited(await login(client, user.email, user.password))
        async with client_at(app, "203.0.113.2") as elsewhere:
            assert (await login(elsewhere, user.email, user.password)).status_code == 200

    async def test_token_and_login_share_one_counter(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        async with client_at(limited.build()) as client:
            assert (await login(client, user.email, user.password)).status_code == 200
            assert (await token_form(client, user.email, user.password)).status_code == 200
            assert (await login(client, user.email, user.password)).status_code == 200
            assert_rate_limited(await token_form(client, user.email, user.password))
            assert_rate_limited(await login(client, user.email, user.password))

    async def test_limits_can_be_switched_off(self, make_app: AppFactory, user: UserHandle) -> None:
        app = make_app(RATE_LIMIT_ENABLED=False, LOGIN_RATE_LIMIT="1/minute")
        async with client_for(app) as client:
            for _ in range(3):
                assert (await login(client, user.email, user.password)).status_code == 200


class TestSignupRateLimit:
    async def test_third_signup_from_one_client_is_429(self, limited: LimitedApps) -> None:
        app = limited.build()  # SIGNUP_RATE_LIMIT=2/minute
        body = {"password": PASSWORD}
        async with client_at(app, "203.0.113.7") as client:
            for _ in range(2):
                response = await client.post(
                    f"{AUTH}/signup", json={**body, "email": unique_email()}
                )
                assert response.status_code == 201
            email = unique_email()
            response = await client.post(f"{AUTH}/signup", json={**body, "email": email})
            assert_rate_limited(response)
        async with client_at(app, "203.0.113.8") as elsewhere:
            response = await elsewhere.post(f"{AUTH}/signup", json={**body, "email": email})
            assert response.status_code == 201  # the refused signup created nothing


class TestRefreshRateLimit:
    async def test_third_refresh_from_one_client_is_429(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        app = limited.build()  # REFRESH_RATE_LIMIT=2/minute
        token = user.refresh_token
        async with client_at(app, "203.0.113.9") as client:
            for _ in range(2):
                response = await client.post(f"{AUTH}/refresh", json={"refresh_token": token})
                assert response.status_code == 200
                token = response.json()["refresh_token"]
            limited_response = await client.post(f"{AUTH}/refresh", json={"refresh_token": token})
            assert_rate_limited(limited_response)
        async with client_at(app, "203.0.113.10") as elsewhere:
            # Refused before it was looked at: the token is still good, not spent.
            response = await elsewhere.post(f"{AUTH}/refresh", json={"refresh_token": token})
            assert response.status_code == 200


class TestFailedLoginLimit:
    async def test_failures_from_many_clients_lock_the_account(
        self, limited: LimitedApps, user: UserHandle, other_user: UserHandle
    ) -> None:
        app = limited.build(LOGIN_RATE_LIMIT="100/minute")  # FAILED_LOGIN_LIMIT=3/minute
        for n in range(3):
            async with client_at(app, f"198.51.100.{n}") as client:
                assert (await login(client, user.email, "wrong password")).status_code == 401
        async with client_at(app, "198.51.100.99") as client:
            assert_rate_limited(await login(client, user.email, user.password))
            assert_rate_limited(await token_form(client, user.email.upper(), user.password))
            assert (await login(client, other_user.email, other_user.password)).status_code == 200

    async def test_unknown_email_is_locked_alike(self, limited: LimitedApps) -> None:
        """No enumeration through the lock either: unknown accounts lock the same way."""
        app = limited.build(LOGIN_RATE_LIMIT="100/minute")
        email = unique_email("nobody")
        async with client_at(app) as client:
            for _ in range(3):
                assert (await login(client, email, "wrong password")).status_code == 401
            assert_rate_limited(await login(client, email, "wrong password"))

    async def test_email_spellings_share_one_counter(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        app = limited.build(LOGIN_RATE_LIMIT="100/minute")
        async with client_at(app) as client:
            for spelling in (user.email, user.email.upper(), f"  {user.email}  "):
                assert (await login(client, spelling, "wrong password")).status_code == 401
            assert_rate_limited(await login(client, user.email, user.password))

    async def test_successful_logins_are_not_counted(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        app = limited.build(LOGIN_RATE_LIMIT="100/minute")
        async with client_at(app) as client:
            for _ in range(5):
                assert (await login(client, user.email, user.password)).status_code == 200

    async def test_wrong_current_passwords_count_too(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        """/password and DELETE /me cannot be used to brute-force around the lock."""
        app = limited.build(LOGIN_RATE_LIMIT="100/minute")
        body = {"current_password": "wrong password", "new_password": "a new passphrase 9"}
        async with client_at(app) as client:
            for _ in range(3):
                response = await client.post(f"{AUTH}/password", headers=user.headers, json=body)
                assert response.status_code == 401
            body["current_password"] = user.password
            response = await client.post(f"{AUTH}/password", headers=user.headers, json=body)
            assert_rate_limited(response)
            assert_rate_limited(await login(client, user.email, user.password))


class TestLimitsAcrossProcesses:
    async def test_redis_counters_are_shared_between_apps(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        """Two apps stand for two server processes: with REDIS_URL they share counters;
        in memory each process counts alone."""
        first, second = limited.build(), limited.build()
        async with client_at(first) as one, client_at(second) as two:
            for client in (one, one, two):
                assert (await login(client, user.email, user.password)).status_code == 200
            fourth = await login(two, user.email, user.password)
        if limited.redis_url:
            assert_rate_limited(fourth)
        else:
            assert fourth.status_code == 200

    async def test_account_lock_is_shared_between_apps(
        self, limited: LimitedApps, user: UserHandle
    ) -> None:
        first, second = (limited.build(LOGIN_RATE_LIMIT="100/minute") for _ in range(2))
        async with client_at(first) as one, client_at(second) as two:
            for _ in range(3):
                assert (await login(one, user.email, "wrong password")).status_code == 401
            response = await login(two, user.email, user.password)
        if limited.redis_url:
            assert_rate_limited(response)
        else:
            assert response.status_code == 200

    @pytest.mark.redis
    async def test_counters_live_in_redis_under_the_prefix(
        self, make_app: AppFactory, redis_url: str, user: UserHandle
    ) -> None:
        apps = LimitedApps(make_app, redis_url)
        try:
            async with client_at(apps.build()) as client:
                await login(client, user.email, "wrong password")
            connection = aioredis.Redis.from_url(redis_url)
            try:
                keys = [key.decode() async for key in connection.scan_iter(f"{apps.prefix}:*")]
            finally:
                await connection.aclose()
        finally:
            await apps.limiters[0].reset()
        assert any("/login/" in key for key in keys), keys
        assert any("/failed-login/" in key for key in keys), keys


class TestRateLimitStorageDown:
    async def test_unreachable_redis_fails_closed_with_503(
        self, make_app: AppFactory, user: UserHandle, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Never a 500, and never a silent bypass of brute-force protection."""
        app = make_app(**{**LIMITS, "REDIS_URL": "redis://127.0.0.1:1/0"})
        async with client_at(app) as client:
            responses = [
                await login(client, user.email, user.password),
                await token_form(client, user.email, user.password),
                await client.post(f"{AUTH}/refresh", json={"refresh_token": user.refresh_token}),
            ]
        for response in responses:
            assert_problem(response, 503, "rate_limit_unavailable")
            assert response.headers["retry-after"] == "5"
        assert any("rate limit storage unavailable" in r.getMessage() for r in caplog.records)
        assert not any(user.email in r.getMessage() for r in caplog.records)


class TestTrustedProxies:
    """Whose X-Forwarded-For counts: nobody's by default, so a client cannot choose its
    own rate-limit bucket; the configured proxies' when FORWARDED_ALLOW_IPS names them."""

    async def _signups(self, client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
        statuses = []
        for address in forwarded_for:
            response = await client.post(
                f"{AUTH}/signup",
                json={"email": unique_email(), "password": PASSWORD},
                headers={"X-Forwarded-For": address},
            )
            statuses.append(response.status_code)
        return statuses

    async def test_forwarded_for_is_ignored_by_default(self, make_app: AppFactory) -> None:
        app = make_app(**LIMITS)  # SIGNUP_RATE_LIMIT=2/minute, FORWARDED_ALLOW_IPS unset
        async with client_at(app, "198.51.100.1") as client:
            statuses = await self._signups(client, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
        assert statuses == [201, 201, 429]  # one bucket: the peer's

    async def test_a_trusted_proxy_names_the_client(self, make_app: AppFactory) -> None:
        app = make_app(**LIMITS, FORWARDED_ALLOW_IPS=["198.51.100.0/24"])
        async with client_at(app, "198.51.100.1") as proxy:
            statuses = await self._signups(proxy, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
            assert statuses == [201, 201, 201]  # a bucket per client behind the proxy
            again = await self._signups(proxy, ["203.0.113.1", "203.0.113.1"])
            assert again == [201, 429]  # 203.0.113.1's third signup

    async def test_an_untrusted_peer_cannot_borrow_the_proxys_trust(
        self, make_app: AppFactory
    ) -> None:
        app = make_app(**LIMITS, FORWARDED_ALLOW_IPS=["198.51.100.1"])
        async with client_at(app, "192.0.2.99") as stranger:
            statuses = await self._signups(stranger, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])
        assert statuses == [201, 201, 429]

    @pytest.mark.parametrize("value", ["proxy.internal", "10.0.0.0/33", "127.0.0.1;*"])
    def test_a_malformed_entry_is_refused_at_start(self, settings: Settings, value: str) -> None:
        with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
            Settings.model_validate({**settings.model_dump(), "FORWARDED_ALLOW_IPS": value})
