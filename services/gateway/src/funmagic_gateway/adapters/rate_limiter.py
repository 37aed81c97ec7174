"""Rate limiting in Redis: fixed-window counters and the shared limit settings.

The original ran INCR, EXPIRE and TTL as three separate commands (ORIGINAL.md §3): a crash between
INCR and EXPIRE left a counter with no expiry, blocking its subject forever. Here one Lua script does
all of it atomically, and honours each limit's window instead of a hard-coded 60 s.
"""

from __future__ import annotations

__all__ = ["RateLimitSettingsStore", "RateLimiterUnavailable", "RedisRateLimiter"]

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from funmagic_gateway.domain.rate_limits import (
    RateLimit,
    RateLimitCategory,
    RateLimitDecision,
    RateLimitSettings,
)

log = logging.getLogger(__name__)

# KEYS[1] the counter, ARGV[1] the window in ms. Returns {count after this hit, ms until the window ends}.
# The expiry is (re)set when the window starts (count 1), when the key has no expiry (PTTL -1: someone
# PERSISTed it or SET it without EX, and it would otherwise block forever), and when it outlives the
# window (the window was shortened in the settings, which should apply now, not after the old window).
_FIXED_WINDOW_LUA = """
local count = redis.call('INCR', KEYS[1])
local window = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 or ttl > window then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return {count, ttl}
"""


class RateLimiterUnavailable(Exception):
    """Redis could not be reached or did not answer; callers decide whether to fail open."""


class RedisRateLimiter:
    def __init__(self, redis: Redis, *, prefix: str = "rl") -> None:
        self._prefix = prefix
        self._redis = redis
        # Registered once: redis-py calls EVALSHA and loads the script only when Redis lacks it.
        self._script = redis.register_script(_FIXED_WINDOW_LUA)

    def key(self, category: RateLimitCategory, subject: str) -> str:
        # The braces are a hash tag: in Redis Cluster every key of one subject lands on the same slot.
        return f"{self._prefix}:{RateLimitCategory(category).value}:{{{subject}}}"

    async def hit(self, category: RateLimitCategory, subject: str, limit: RateLimit) -> RateLimitDecision:
        """Count one request of `subject` against `limit` and say whether it may proceed."""
        return (await self.hit_many([(category, subject, limit)]))[0]

    async def hit_many(
        self, hits: Sequence[tuple[RateLimitCategory, str, RateLimit]]
    ) -> list[RateLimitDecision]:
        """Several counters of one request in one round trip (a pipeline; each script stays atomic)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for category, subject, limit in hits:
                    await self._script(
                        keys=[self.key(category, subject)], args=[limit.window_seconds * 1000], client=pipe
                    )
                replies = await pipe.execute()
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"rate limiter unavailable: {error}") from error
        return [
            self._decision(category, limit, int(count), int(ttl_ms))
            for (category, _, limit), (count, ttl_ms) in zip(hits, replies, strict=True)
        ]

    @staticmethod
    def _decision(
        category: RateLimitCategory, limit: RateLimit, count: int, ttl_ms: int
    ) -> RateLimitDecision:
        return RateLimitDecision(
            category=RateLimitCategory(category),
            allowed=count <= limit.limit,
            limit=limit.limit,
            remaining=max(0, limit.limit - count),
            # Rounded up, so a client that waits this long finds a fresh window.
            reset_seconds=max(1, math.ceil(int(ttl_ms) / 1000)),
        )


class RateLimitSettingsStore:
    """The limits every gateway replica applies, as JSON under one Redis key.

    Each replica keeps a copy for `cache_seconds`, so an admin's change applies everywhere within
    about that long while costing one GET per replica per period instead of one per request.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        key: str = "ratelimit:settings",
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._key = key
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: RateLimitSettings | None = None
        self._cached_at = 0.0
        # One reader refreshes an expired cache; concurrent requests wait for it instead of each
        # sending its own GET.
        self._refresh_lock = asyncio.Lock()

    async def get(self) -> RateLimitSettings:
        cached = self._fresh_cache()
        if cached is not None:
            return cached
        async with self._refresh_lock:
            cached = self._fresh_cache()
            if cached is not None:
                return cached
            settings = self._parse(await self._read())
            self._remember(settings)
            return settings

    async def put(self, settings: RateLimitSettings) -> None:
        try:
            await self._redis.set(self._key, settings.model_dump_json())
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"cannot store rate limit settings: {error}") from error
        self._remember(settings)

    def _fresh_cache(self) -> RateLimitSettings | None:
        if self._cached is not None and self._clock() - self._cached_at < self._cache_seconds:
            return self._cached
        return None

    def _remember(self, settings: RateLimitSettings) -> None:
        self._cached = settings
        self._cached_at = self._clock()

    async def _read(self) -> bytes | str | None:
        try:
            raw: bytes | str | None = await self._redis.get(self._key)
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"cannot read rate limit settings: {error}") from error
        return raw

    def _parse(self, raw: bytes | str | None) -> RateLimitSettings:
        if raw is None:
            return RateLimitSettings()
        try:
            return RateLimitSettings.model_validate_json(raw)
        except ValidationError as error:
            # A bad write must not take the API down or lift all limits: the defaults are safe limits.
            log.warning(
                "rate limit settings in Redis are invalid; using the defaults",
                extra={"key": self._key, "error": str(error)},
            )
            return RateLimitSettings()
