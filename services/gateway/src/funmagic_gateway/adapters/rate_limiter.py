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
    "CounterLeases",
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
    CounterLease,
    RateLimit,
    RateLimitCategory,
    RateLimitDecision,
    RateLimitSettings,
    decide,
    lease_size,
)
from funmagic_kit.errors import TransientError
from funmagic_kit.http import HttpProblem

log = logging.getLogger(__name__)

# KEYS[1] the counter, ARGV[1] the window in ms, ARGV[2] how many hits to add (a lease, see
# `CounterLeases`), ARGV[3] refused hits owed to the window in which the counter was seen at ARGV[4]:
# added only while it still holds that much (reset by an operator or restarted, it is another window).
# Returns {count after these hits, ms until the window ends}.
# The expiry is (re)set when the window starts (the count is just these hits), when the key has no
# expiry (PTTL -1: someone PERSISTed it or SET it without EX, and it would otherwise block forever), and
# when it outlives the window (the window was shortened in the settings, which should apply now, not
# after the old window).
_FIXED_WINDOW_LUA = """
local hits = tonumber(ARGV[2])
local owed = tonumber(ARGV[3])
if owed > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[4]) then
  hits = hits + owed
end
local count = redis.call('INCRBY', KEYS[1], hits)
local window = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == hits or ttl < 0 or ttl > window then
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
        return f"{self._prefix}:{category}:{{{subject}}}"

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
        self,
        windows: Sequence[tuple[RateLimitCategory, str, int]],
        *,
        also_get: str | None = None,
        hits: Sequence[int] | None = None,
        owed: Sequence[tuple[int, int]] | None = None,
    ) -> CountedWindows:
        """Count one hit (or `hits[i]`) in each `(category, subject, window seconds)` window and read
        `also_get` (a key of the same subject, such as its purchased credits), all in one round trip: the
        limits are decided afterwards (`domain.rate_limits.decide`), once what the extra key says is known.
        `owed[i]`: `(refused hits, count seen)`, added too while the counter still holds the count seen."""
        counters = [
            (
                self.key(category, subject),
                window_seconds * 1000,
                hits[i] if hits is not None else 1,
                *(owed[i] if owed is not None else (0, 0)),
            )
            for i, (category, subject, window_seconds) in enumerate(windows)
        ]
        try:
            # EVALSHA by hand: redis-py's pipeline would ask SCRIPT EXISTS first, a second round trip on
            # every request. A script Redis lacks (restarted, flushed) did not run: it is loaded and only
            # those counters are counted again.
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, *args in counters:
                    pipe.evalsha(self._script.sha, 1, key, *args)
                if also_get is not None:
                    pipe.get(also_get)
                replies = await pipe.execute(raise_on_error=False)
            missing = [
                i for i, reply in enumerate(replies[: len(counters)]) if isinstance(reply, NoScriptError)
            ]
            for i in missing:
                key, *args = counters[i]
                replies[i] = await self._script(keys=[key], args=args)
            failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
            if failed is not None:
                raise failed
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(f"rate limiter unavailable: {error}") from error
        counts = [(int(count), int(ttl_ms)) for count, ttl_ms in replies[: len(windows)]]
        return CountedWindows(counts, replies[len(windows)] if also_get is not None else None)


# Leases are swept (those of ended windows dropped) when this many are held, then at twice what is left.
_SWEEP_LEASES_AT = 4096


class CounterLeases:
    """Counts a request's hits from leases (`domain.rate_limits.CounterLease`): blocks of hits added to the
    Redis counters ahead of use and handed out in this replica, one round trip per block.

    Only one lease of a counter is asked for at a time: requests that find it used up while another asks
    Redis wait for that answer instead of each asking (and each leasing a block). The request that asked
    gets the first count of the block itself, so it never waits twice. When that ask finds Redis down or too
    slow, its waiters fail with it (unlimited for the moment, as on any outage) rather than each asking in
    turn.

    A round trip given up on (timed out) may still have added its block in Redis, where nobody will hand
    it out: that counter's leases are then of one hit until the window the block may have gone to is over
    (one round trip per request of that subject meanwhile), so a Redis slow now and then costs a subject at
    most one block a window, not a block per request that timed out. (Leasing blocks again at the next
    answer let a Redis slow on and off add a block per slow spell: a user of the composed platform with
    two gateways was refused at 200 requests a minute after ~70.)
    """

    def __init__(
        self,
        counters: RedisRateLimiter,
        *,
        timeout_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counters = counters
        # Bounds each round trip: a Redis that hangs instead of refusing must not hang the API either.
        self._timeout_seconds = timeout_seconds
        self._clock = clock
        self._leases: dict[str, CounterLease] = {}
        # The ask under way for a counter; it resolves to the outage that ended it, or None.
        self._asking: dict[str, asyncio.Future[RateLimiterUnavailable | None]] = {}
        # Counters whose ask failed, with when the window that ask may have added hits to is over (the
        # replica's monotonic clock): hits may be in Redis that no lease holds, so no blocks till then.
        self._unsure: dict[str, float] = {}
        self._sweep_at = _SWEEP_LEASES_AT

    async def count(
        self, windows: Sequence[tuple[RateLimitCategory, str, RateLimit]], *, also_get: str | None = None
    ) -> CountedWindows:
        """One hit in each `(category, subject, limit)` window, `(count, ms until the window ends)` each,
        and `also_get` (read in the round trip the leases need, or in one of its own).

        Each limit must be at least the one the request is decided by (while a user's tier is unknown, the
        highest tier's): a lease used up at it refuses the rest of its window without asking Redis.
        """
        keys = [self._counters.key(category, subject) for category, subject, _ in windows]
        counts = self._take(keys, windows)
        if also_get is None and None not in counts:
            return CountedWindows([count for count in counts if count is not None])
        asked_by_others = {
            self._asking[key]
            for key, count in zip(keys, counts, strict=True)
            if count is None and key in self._asking
        }
        if asked_by_others:
            # These never raise: they hand over the outage that ended the ask, if any.
            failed = next((error for error in await asyncio.gather(*asked_by_others) if error), None)
            if failed is not None:
                raise RateLimiterUnavailable(str(failed)) from failed
            counts = self._take(keys, windows, counts)
        missing = [i for i, count in enumerate(counts) if count is None]
        extra = await self._ask(windows, keys, missing, counts, also_get) if missing or also_get else None
        return CountedWindows([count for count in counts if count is not None], extra)

    def _take(
        self,
        keys: list[str],
        windows: Sequence[tuple[RateLimitCategory, str, RateLimit]],
        taken_before: list[tuple[int, int] | None] | None = None,
    ) -> list[tuple[int, int] | None]:
        """A count from each window's lease (kept from `taken_before` where it has one); None where a new
        lease is needed."""
        now = self._clock()
        counts: list[tuple[int, int] | None] = []
        for i, key in enumerate(keys):
            if taken_before is not None and taken_before[i] is not None:
                counts.append(taken_before[i])
                continue
            lease = self._leases.get(key)
            taken = lease.take(now, windows[i][2]) if lease is not None else None
            if taken is None:
                counts.append(None)
                continue
            count, left_ms, self._leases[key] = taken
            counts.append((count, left_ms))
        return counts

    async def _ask(
        self,
        windows: Sequence[tuple[RateLimitCategory, str, RateLimit]],
        keys: list[str],
        missing: list[int],
        counts: list[tuple[int, int] | None],
        also_get: str | None,
    ) -> bytes | str | None:
        """Leases for the `missing` windows (their first counts go into `counts`) and `also_get`, in one
        round trip."""
        now = self._clock()
        sizes = []
        owed = []
        for i in missing:
            lease = self._leases.get(keys[i])
            counted = lease.counted(now) if lease is not None else 0
            unsure = self._unsure.get(keys[i], now) > now
            sizes.append(1 if unsure else lease_size(windows[i][2].limit, counted))
            owed.append((lease.owed(now) if lease is not None else 0, counted))
        asking: asyncio.Future[RateLimiterUnavailable | None] = asyncio.get_running_loop().create_future()
        for i in missing:
            self._asking[keys[i]] = asking
        failure: BaseException | None = None
        try:
            async with asyncio.timeout(self._timeout_seconds):
                counted = await self._counters.count(
                    [(windows[i][0], windows[i][1], windows[i][2].window_seconds) for i in missing],
                    also_get=also_get,
                    hits=sizes,
                    owed=owed,
                )
        except TimeoutError as error:
            failure = RateLimiterUnavailable(
                f"rate limiter unavailable: Redis did not answer within {self._timeout_seconds} s"
            )
            raise failure from error
        except BaseException as error:
            failure = error
            raise
        finally:
            for i in missing:
                if self._asking.get(keys[i]) is asking:
                    del self._asking[keys[i]]
                if failure is not None:
                    self._unsure[keys[i]] = now + windows[i][2].window_seconds
            if len(self._unsure) > _SWEEP_LEASES_AT:
                # Drop the windows that are over; a long outage seen by many subjects: forget them all
                # (costs at most a block each, later).
                later = self._clock()
                self._unsure = {key: until for key, until in self._unsure.items() if until > later}
                if len(self._unsure) > _SWEEP_LEASES_AT:
                    self._unsure.clear()
            # Only an outage is shared: an asker cancelled (its client went) or failing otherwise says nothing
            # about Redis, and its waiters ask themselves.
            asking.set_result(failure if isinstance(failure, RateLimiterUnavailable) else None)
        now = self._clock()
        for i, size, (last_count, ttl_ms) in zip(missing, sizes, counted.counts, strict=True):
            first, self._leases[keys[i]] = CounterLease.granted(last_count, size, ttl_ms, now)
            counts[i] = (first, ttl_ms)
        self._sweep(now)
        return counted.extra

    def _sweep(self, now: float) -> None:
        if len(self._leases) < self._sweep_at:
            return
        self._leases = {key: lease for key, lease in self._leases.items() if now < lease.window_ends_at}
        self._sweep_at = max(_SWEEP_LEASES_AT, 2 * len(self._leases))


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

    def cached(self) -> RateLimitSettings | None:
        """The settings without a read, while the replica's copy is fresh; None: `get` them."""
        return self._fresh_cache()

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

    A value read from Redis is also remembered in this replica for `remember_seconds` (`remembered`), so a
    busy user's requests mostly need no round trip for it; the replica that refreshes forgets it at once,
    the others within that period.
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
        remember_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._remember_seconds = remember_seconds
        self._remembered: dict[str, tuple[int, float]] = {}
        self._sweep_remembered_at = _SWEEP_LEASES_AT
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

    def remembered(self, user_id: str) -> int | None:
        """What the user bought as read here less than `remember_seconds` ago; None: read it (`key`)."""
        entry = self._remembered.get(user_id)
        if entry is None or self._clock() - entry[1] >= self._remember_seconds:
            return None
        return entry[0]

    async def lifetime_purchased(self, user_id: str, cached: bytes | str | None) -> int | None:
        """What the user bought: `cached` (the key's value, read with the counters) or, on a miss, credits'
        answer (then cached). None while credits cannot say: the caller counts that as nothing bought."""
        value = _purchased(cached)
        if value is not None:
            self._remember(user_id, value)
            return value
        if self._paused_until is None or self._clock() >= self._paused_until:
            lookup = self._lookups.get(user_id)
            if lookup is None:
                lookup = asyncio.ensure_future(self._look_up(user_id, only_if_absent=True))
                self._lookups[user_id] = lookup
                lookup.add_done_callback(lambda done: self._forget_lookup(user_id, done))
            # Shielded: a request that gives up waiting does not cancel the lookup the others wait for.
            value = await asyncio.shield(lookup)
            # An answer is not remembered: like its SET NX, one given just before a purchase must not stand
            # in for the refreshed value; the next request reads what Redis holds.
            if value is not None:
                return value
        # Credits cannot say: nothing bought, remembered as if read, so the user's next requests need no
        # round trip to learn the same.
        self._remember(user_id, 0)
        return None

    async def refresh(self, user_id: str) -> None:
        """After a purchase: the cached value goes at once, and credits' new answer takes its place (if
        credits does not answer, the next request asks it again)."""
        self._remembered.pop(user_id, None)
        try:
            await self._redis.delete(self.key(user_id))
        except (RedisError, OSError) as error:
            raise RateLimiterUnavailable(
                f"cannot drop what {user_id} bought from the cache: {error}"
            ) from error
        value = await self._look_up(user_id, only_if_absent=False)
        if value is not None:
            self._remember(user_id, value)

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

    def _remember(self, user_id: str, value: int) -> None:
        now = self._clock()
        if len(self._remembered) >= self._sweep_remembered_at:
            self._remembered = {
                user: (bought, at)
                for user, (bought, at) in self._remembered.items()
                if now - at < self._remember_seconds
            }
            self._sweep_remembered_at = max(_SWEEP_LEASES_AT, 2 * len(self._remembered))
        self._remembered[user_id] = (value, now)

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
