"""Auth test fixtures: forged tokens, Redis, and apps with the rate limits on."""

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.ratelimit import RateLimiter
from tests.auth.helpers import session_id
from tests.conftest import AppFactory, UserHandle

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")

# Limits small enough to reach in a test; each test builds its own app (and so its own
# in-memory counters) or uses its own Redis key prefix.
LIMITS = {
    "RATE_LIMIT_ENABLED": True,
    "LOGIN_RATE_LIMIT": "3/minute",
    "SIGNUP_RATE_LIMIT": "2/minute",
    "REFRESH_RATE_LIMIT": "2/minute",
    "FAILED_LOGIN_LIMIT": "3/minute",
}

Forge = Callable[..., str]


@pytest.fixture
def claims_for(settings: Settings) -> Callable[[UserHandle], dict[str, Any]]:
    """The claims the contract prescribes for a user's current session, valid now."""

    def build(user: UserHandle) -> dict[str, Any]:
        now = int(time.time())
        return {
            "sub": user.id,
            "sid": session_id(user.access_token),
            "iat": now,
            "exp": now + 600,
            "iss": settings.JWT_ISSUER,
            "aud": settings.JWT_AUDIENCE,
            "typ": "access",
        }

    return build


@pytest.fixture
def forge(settings: Settings) -> Forge:
    """Sign claims as a sibling service holding SECRET_KEY would (HS256 by default)."""

    def sign(claims: dict[str, Any], algorithm: str = "HS256", key: bytes | None = None) -> str:
        return jwt.encode(claims, key or settings.secret_key_bytes, algorithm=algorithm)

    return sign


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    connection = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis tests skipped: no Redis answers at {REDIS_TEST_URL} ({exc})")
    finally:
        connection.close()
    return REDIS_TEST_URL


@dataclass
class LimitedApps:
    """Builds apps with small rate limits, on in-memory or Redis storage.

    With Redis, every app built in one test shares one fresh key prefix (so they share
    counters, as the server processes of one deployment do)."""

    make_app: AppFactory
    redis_url: str | None
    prefix: str = field(default_factory=lambda: f"todo-api-test-{uuid.uuid4().hex}")
    limiters: list[RateLimiter] = field(default_factory=list)

    def build(self, **overrides: Any) -> FastAPI:
        app = self.make_app(**{**LIMITS, "REDIS_URL": self.redis_url, **overrides})
        if self.redis_url:
            limiter = RateLimiter(app.state.settings, key_prefix=self.prefix)
            app.state.auth.limiter = limiter
            self.limiters.append(limiter)
        return app


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limited(
    request: pytest.FixtureRequest, make_app: AppFactory
) -> AsyncIterator[LimitedApps]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    apps = LimitedApps(make_app, redis_url)
    yield apps
    if apps.limiters:  # delete this test's keys (only those under its prefix)
        await apps.limiters[0].reset()
