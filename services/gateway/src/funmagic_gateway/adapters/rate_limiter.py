"""Rate limiting in Redis: fixed-window counters, the shared limit settings, and what users bought.

The original ran INCR, EXPIRE and TTL as three separate commands (ORIGINAL.md §3): a crash between
INCR and EXPIRE left a counter with no expiry, blocking its subject forever. Here one Lua script does
all of it atomically, and honours each limit's window instead of a hard-coded 60 s.

The settings are kept by identity (Postgres) and cached in Redis: a Redis that restarted empty reads them
back from identity, so it no longer resets them to the defaults (the original's did). A user's tier comes
from the credits they ever bought, cached in Redis beside the counters (one GET in the counters' round
trip) and refreshed by credits' `CreditsPurchased` events (`entrypoints.kafka`).
"""

from __future__ import annotations

__all__ = [
    "CountedWindows",
    "PurchasedCredits",
    "RateLimitSettingsStore",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
]

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError

from funmagic_gateway.application.ports import Caller, Purchases, RateLimitSettingsRecords
from funmagic_gateway.domain.rate_limits import (
    RateLimit,
    RateLimitCategory,
    RateLimitDecision,
    RateLimitSettings,
    decide,
)
from funmagic_kit.errors import TransientError
from funmagic_kit.http import HttpProblem

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


class RateLimiterUnavailable(TransientError):
    """Redis could not be reached or did not answer; callers decide whether to fail open (an admin's
    request for the settings is a 503)."""


@dataclass(frozen=True)
class CountedWindows:
    """One request's counters after its hits, `(count, ms until the window ends)` each in the order
    asked, and the value of the extra key read in the same round trip (None: absent or not asked)."""

    counts: list[tuple[int, int]]
    extra: bytes | str | None = None


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
        counted = await self.count([(c, subject, limit.window_seconds) for c, subject, limit in hits])
        return [
            decide(category, limit, count, ttl_ms)
            for (category, _, limit), (count, ttl_ms) in zip(hits, counted.counts, strict=True)
        ]

    async def count(
        self, windows: Sequence[tuple[RateLimitCategory, str, int]], *, also_get: str | None = None
    ) -> CountedWindows:
        """Count one hit in each `(category, subject, window seconds)` window and read `also_get` (a key
        of the same subject, such as its purchased credits), all in one round trip: the limits are decided
        afterwards (`domain.rate_limits.decide`), once what the extra key says is known."""
        counters = [
            (self.key(category, subject), window_seconds * 1000)
            for category, subject, window_seconds in windows
        ]
        try:
            # EVALSHA by hand: redis-py's pipeline would ask SCRIPT EXISTS first, a second round trip on
            # every request. A script Redis lacks (restarted, flushed) did not run: it is loaded and only
            # those counters are counted again.
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, window_ms in counters:
                    pipe.evalsha(self._script.sha, 1, key, window_ms)
                if also_get is not None:
                    pipe.get(also_get)
                replies = await pipe.execute(raise_on_error=False)
            missing = [
                i for i, reply in enumerate(replies[: len(counters)]) if isinstance(reply, NoScriptError)
            ]
            for i in missing:
                key, window_ms = counters[i]
                replies[i] = await self._script(keys=[key], args=[window_ms])
            failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
            if failed is not None:
                raise failed
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"rate limiter unavailable: {error}") from error
        counts = [(int(count), int(ttl_ms)) for count, ttl_ms in replies[: len(windows)]]
        return CountedWindows(counts, replies[len(windows)] if also_get is not None else None)


class RateLimitSettingsStore:
    """The limits every gateway replica applies: kept by identity (`records`, its Postgres), cached as JSON
    under one Redis key for `cache_ttl_seconds`, and in each replica for `cache_seconds`.

    A change is stored by identity first, then written to Redis, so an admin's change applies on every
    replica within about `cache_seconds` while costing one GET per replica per period instead of one per
    request. A Redis that lost the key (restarted, evicted) reads it back from identity: the cache is filled
    only where it is empty (SET NX), so a value read before a change never overwrites the change.
    """

    def __init__(
        self,
        redis: Redis,
        records: RateLimitSettingsRecords,
        *,
        key: str = "ratelimit:settings",
        cache_seconds: float = 1.0,
        cache_ttl_seconds: int = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._records = records
        self._key = key
        self._cache_seconds = cache_seconds
        self._cache_ttl_seconds = cache_ttl_seconds
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
            settings = await self._read_through()
            self._remember(settings)
            return settings

    async def put(self, settings: RateLimitSettings, caller: Caller) -> None:
        """Stores the settings with identity, then in the cache; returns once both hold them (identity
        refusing or unreachable: its problem, and nothing changed)."""
        await self._records.save(settings, caller)
        try:
            await self._redis.set(self._key, settings.model_dump_json(), ex=self._cache_ttl_seconds)
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(
                f"the settings are stored, but not yet applied (the cache is unavailable: {error}); retry"
            ) from error
        self._remember(settings)

    def _fresh_cache(self) -> RateLimitSettings | None:
        if self._cached is not None and self._clock() - self._cached_at < self._cache_seconds:
            return self._cached
        return None

    def _remember(self, settings: RateLimitSettings) -> None:
        self._cached = settings
        self._cached_at = self._clock()

    async def _read_through(self) -> RateLimitSettings:
        raw = await self._read()
        if raw is not None:
            try:
                return RateLimitSettings.model_validate_json(raw)
            except ValidationError as error:
                # A bad write to the cache must not take the API down or lift all limits.
                log.warning(
                    "rate limit settings in Redis are invalid; reading them from their store",
                    extra={"key": self._key, "error": str(error)},
                )
        settings, stored = await self._load()
        if stored:
            # Over an invalid value; else only into an empty key: a change written meanwhile stays.
            await self._write(settings, only_if_absent=raw is None)
        return settings

    async def _load(self) -> tuple[RateLimitSettings, bool]:
        """The kept settings (the defaults when none were ever kept) and True; while identity cannot say,
        the defaults (safe limits) and False, so they are not cached in its place."""
        try:
            settings = await self._records.load()
        except (HttpProblem, ValueError) as error:
            log.warning(
                "rate limit settings cannot be read from their store; using the defaults for now",
                extra={"error": str(error)},
            )
            return RateLimitSettings(), False
        return settings or RateLimitSettings(), True

    async def _read(self) -> bytes | str | None:
        try:
            raw: bytes | str | None = await self._redis.get(self._key)
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"cannot read rate limit settings: {error}") from error
        return raw

    async def _write(self, settings: RateLimitSettings, *, only_if_absent: bool) -> None:
        try:
            await self._redis.set(
                self._key, settings.model_dump_json(), ex=self._cache_ttl_seconds, nx=only_if_absent
            )
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"cannot cache rate limit settings: {error}") from error


class PurchasedCredits:
    """How many credits each user ever bought, for their tier: cached in Redis for `ttl_seconds` (read in
    the rate limiter's round trip, see `key`), asked of credits on a miss.

    After a purchase (`CreditsPurchased`), `refresh` drops the cached value and puts credits' new answer in
    its place, so the higher tier applies within the event's delivery. A lookup on a miss fills the cache
    only where it is empty (SET NX): an answer read just before a purchase never replaces the refreshed one.
    """

    def __init__(
        self,
        redis: Redis,
        purchases: Purchases,
        *,
        prefix: str = "ratelimit:purchased",
        ttl_seconds: int = 300,
        lookup_timeout_seconds: float = 1.0,
        pause_after_failure_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._purchases = purchases
        self._pause_after_failure_seconds = pause_after_failure_seconds
        # After credits failed to answer, misses do not ask it again until then: a request each would
        # otherwise wait for a down service (up to the lookup timeout) and hammer it as it comes back.
        self._paused_until: float | None = None
        self._prefix = prefix
        self._ttl_seconds = ttl_seconds
        self._lookup_timeout_seconds = lookup_timeout_seconds
        self._clock = clock
        # One lookup per user at a time in this replica; concurrent requests share its answer.
        self._lookups: dict[str, asyncio.Future[int | None]] = {}
        self._last_warning: float | None = None

    def key(self, user_id: str) -> str:
        # Hash-tagged like the user's counters, so it can be read in their pipeline on a Redis Cluster too.
        return f"{self._prefix}:{{{user_id}}}"

    async def lifetime_purchased(self, user_id: str, cached: bytes | str | None) -> int | None:
        """What the user bought: `cached` (the key's value, read with the counters) or, on a miss, credits'
        answer (then cached). None while credits cannot say: the caller counts that as nothing bought."""
        value = _purchased(cached)
        if value is not None:
            return value
        if self._paused_until is not None and self._clock() < self._paused_until:
            return None
        lookup = self._lookups.get(user_id)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(user_id, only_if_absent=True))
            self._lookups[user_id] = lookup
            lookup.add_done_callback(lambda done: self._forget_lookup(user_id, done))
        # Shielded: a request that gives up waiting does not cancel the lookup the others wait for.
        return await asyncio.shield(lookup)

    async def refresh(self, user_id: str) -> None:
        """After a purchase: the cached value goes at once, and credits' new answer takes its place (if
        credits does not answer, the next request asks it again)."""
        try:
            await self._redis.delete(self.key(user_id))
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(
                f"cannot drop what {user_id} bought from the cache: {error}"
            ) from error
        await self._look_up(user_id, only_if_absent=False)

    async def _look_up(self, user_id: str, *, only_if_absent: bool) -> int | None:
        try:
            async with asyncio.timeout(self._lookup_timeout_seconds):
                value = await self._purchases.lifetime_purchased(user_id)
        except (HttpProblem, TimeoutError, ValueError) as error:
            self._paused_until = self._clock() + self._pause_after_failure_seconds
            self._warn("cannot ask credits what a user bought; their tier counts nothing bought", error)
            return None
        self._paused_until = None
        try:
            await self._redis.set(self.key(user_id), value, ex=self._ttl_seconds, nx=only_if_absent)
        except (RedisError, OSError) as error:
            self._warn("cannot cache what a user bought", error)
        return value

    def _forget_lookup(self, user_id: str, done: asyncio.Future[int | None]) -> None:
        if self._lookups.get(user_id) is done:
            del self._lookups[user_id]

    def _warn(self, message: str, error: BaseException) -> None:
        # Once a minute at most: while credits is down, every uncached user would log it.
        now = self._clock()
        if self._last_warning is None or now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning(message, extra={"error": str(error) or type(error).__name__})


def _purchased(raw: bytes | str | None) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None
