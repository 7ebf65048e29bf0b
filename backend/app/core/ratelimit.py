"""Rate limits on the `limits` library: in process memory by default, in Redis when
REDIS_URL is set (so every server process shares the same counters)."""

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from app.core.config import Settings
from app.core.errors import AppError, RateLimited

logger = logging.getLogger("app.ratelimit")

DEFAULT_KEY_PREFIX = "todo-api"
REDIS_TIMEOUT_SECONDS = 2.0


class RateLimitUnavailable(AppError):
    """The shared counters cannot be read. Fail closed: answering without them would
    switch brute-force protection off exactly while Redis is down."""

    status_code = 503
    code = "rate_limit_unavailable"
    detail = "The service is temporarily unavailable, retry later"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "5"})


class RateLimiter:
    def __init__(self, settings: Settings, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        """`key_prefix` namespaces the Redis keys: every process of one deployment must
        use the same one (that is what shares the counters); tests use their own."""
        self.enabled = settings.RATE_LIMIT_ENABLED
        self.storage: Storage
        if settings.REDIS_URL:
            uri = settings.REDIS_URL
            if not uri.startswith("async+"):
                uri = f"async+{uri}"
            self.storage = RedisStorage(
                uri,
                implementation="redispy",
                key_prefix=key_prefix,
                wrap_exceptions=True,  # every Redis failure arrives as StorageError
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
        else:
            self.storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, limit: str, *key: str) -> None:
        """Count one hit; raise RateLimited (with Retry-After) once over the limit."""
        if not self.enabled:
            return
        item = parse(limit)
        async with _storage_errors():
            if not await self._strategy.hit(item, *key):
                raise RateLimited(await self._retry_after(item, key))

    async def check(self, limit: str, *key: str) -> None:
        """Raise RateLimited if the limit is already used up, without counting."""
        if not self.enabled:
            return
        item = parse(limit)
        async with _storage_errors():
            if not await self._strategy.test(item, *key):
                raise RateLimited(await self._retry_after(item, key))

    async def _retry_after(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        stats = await self._strategy.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def reset(self) -> None:
        await self.storage.reset()


@asynccontextmanager
async def _storage_errors() -> AsyncIterator[None]:
    try:
        yield
    except StorageError as exc:
        # The type only: the message could name a key, and keys hold emails.
        logger.error("rate limit storage unavailable: %s", type(exc.storage_error).__name__)
        raise RateLimitUnavailable() from None
