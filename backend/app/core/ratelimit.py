"""Rate limits on the `limits` library: in process memory by default, in Redis when
REDIS_URL is set (so every server process shares the same counters)."""

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from app.core.config import Settings
from app.core.errors import RateLimited


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.RATE_LIMIT_ENABLED
        self.storage: Storage
        if settings.REDIS_URL:
            uri = settings.REDIS_URL
            if not uri.startswith("async+"):
                uri = f"async+{uri}"
            self.storage = RedisStorage(uri, implementation="redispy", key_prefix="todo-api")
        else:
            self.storage = MemoryStorage()
        self._strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, limit: str, *key: str) -> None:
        """Count one hit; raise RateLimited (with Retry-After) once over the limit."""
        if not self.enabled:
            return
        item = parse(limit)
        if not await self._strategy.hit(item, *key):
            raise RateLimited(await self._retry_after(item, key))

    async def check(self, limit: str, *key: str) -> None:
        """Raise RateLimited if the limit is already used up, without counting."""
        if not self.enabled:
            return
        item = parse(limit)
        if not await self._strategy.test(item, *key):
            raise RateLimited(await self._retry_after(item, key))

    async def _retry_after(self, item: RateLimitItem, key: tuple[str, ...]) -> int:
        stats = await self._strategy.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def reset(self) -> None:
        await self.storage.reset()
