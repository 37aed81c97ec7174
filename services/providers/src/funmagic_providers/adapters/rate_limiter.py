"""The per-provider rate limiter in Redis (DESIGN.md §5): concurrency, calls per minute, calls per day.

Keys of one provider in one scope, the provider name in braces as a Redis Cluster hash tag so the one
Lua script touches a single slot:

    prl:{scope}:{<provider>}:config             cached `rateLimit` JSON, `config_ttl_seconds`
    prl:{scope}:{<provider>}:sem                sorted set of leases, score = lease expiry (ms)
    prl:{scope}:{<provider>}:rpm                calls in the current minute (fixed window from the first)
    prl:{scope}:{<provider>}:rpd:{YYYY-MM-DD}   calls on that UTC day

What the original got wrong (ORIGINAL.md, provider layer) and how this differs:
- Its three gates ran as separate commands with non-atomic rollbacks; here one script checks all limits
  and takes all of them, or none.
- Its semaphore entries were scored with the start time and swept after 10 min, and never renewed;
  here a lease carries its expiry, long calls `renew` it, and a crashed worker's slot frees itself when
  the lease ends (the set also expires once every lease in it has).
- It released the slot in a `finally` even after a timeout, while the provider call was still running.
  `release` is for calls that have ended; an abandoned call that may still be running keeps its lease
  until it expires.

Releases are written behind: `release` notes the lease, and the next acquire of the same provider in this
process removes it in its own script (the same slot, the same round trip), or, when none comes within
`release_delay_seconds`, a background flush sends the removals in one pipeline. Under load an acquire and
a release therefore cost one round trip together; a slot is given back a few milliseconds later than the
call ended, which only ever admits fewer calls, never more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from funmagic_kit.clock import SystemClock
from funmagic_providers.domain.documents import JsonObject
from funmagic_providers.domain.queue import LimiterUsage
from funmagic_providers.domain.rate_limit import InvalidRateLimitConfig, RateLimitConfig

__all__ = ["SCOPES", "Admission", "ProviderRateLimiter", "RateLimiterUnavailable"]

log = logging.getLogger(__name__)

SCOPES = frozenset({"web", "admin"})
# After a concurrency denial nobody knows when a holder releases; the hint is the time until the
# earliest lease expires, kept between these bounds so a retry neither spins nor waits a whole lease.
_CONCURRENCY_WAIT_MIN_MS = 10
_LIMIT_NAMES = {1: "concurrency", 2: "per_minute", 3: "per_day"}
# Releases one acquire carries at most (Lua's unpack has a stack limit); the rest wait for the next one.
_RELEASES_PER_ACQUIRE = 100
# After a flush that could not reach Redis, the next try; until then the releases stay noted here.
_RELEASE_RETRY_SECONDS = 1.0

# KEYS: sem, rpm, rpd. ARGV: now_ms, lease_ms, lease_id, max_concurrency, max_per_minute, max_per_day
# (0 = not limited), ms until the UTC day ends, shortest and longest concurrency hint in ms, then the
# leases of ended calls to release first (written behind, see the module).
# The minute window is 60000 ms from its first call; the day counter lives 86400 s from its first call.
# Returns {1, 0, 0} when admitted, else {0, retry_after_ms, limit} with limit 1 concurrency,
# 2 per minute, 3 per day: of the limits that deny, the one with the longest wait, so the caller does
# not retry at a concurrency hint only to meet a daily limit. Nothing is written on a denial.
_ACQUIRE_LUA = """
local sem, rpm, rpd = KEYS[1], KEYS[2], KEYS[3]
local now, lease_ms, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local max_concurrency, max_rpm, max_rpd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local day_left_ms, wait_min, wait_max = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
if #ARGV > 9 then redis.call('ZREM', sem, unpack(ARGV, 10)) end

local function keep_sem_until_last_lease()
  -- Every lease in the set ends within lease_ms, so the set need not outlive that.
  if redis.call('PTTL', sem) < lease_ms then redis.call('PEXPIRE', sem, lease_ms) end
end

redis.call('ZREMRANGEBYSCORE', sem, '-inf', now)
-- The same lease asking again (a retry after a lost reply) already holds its slot and was counted.
if redis.call('ZSCORE', sem, lease) then
  redis.call('ZADD', sem, now + lease_ms, lease)
  keep_sem_until_last_lease()
  return {1, 0, 0}
end

local wait, limit = -1, 0
if max_concurrency > 0 and redis.call('ZCARD', sem) >= max_concurrency then
  local earliest = redis.call('ZRANGE', sem, 0, 0, 'WITHSCORES')
  local w = math.min(math.max(tonumber(earliest[2]) - now, wait_min), wait_max)
  if w > wait then wait, limit = w, 1 end
end
if max_rpm > 0 and tonumber(redis.call('GET', rpm) or '0') >= max_rpm then
  local w = redis.call('PTTL', rpm)
  if w < 0 then
    -- A counter without expiry (written by hand) would deny forever: give it its window.
    redis.call('PEXPIRE', rpm, 60000)
    w = 60000
  end
  if w > wait then wait, limit = w, 2 end
end
if max_rpd > 0 and tonumber(redis.call('GET', rpd) or '0') >= max_rpd then
  -- The key names the day, so the next day starts from zero whatever its TTL says.
  local w = math.max(day_left_ms, 1)
  if w > wait then wait, limit = w, 3 end
end
if limit > 0 then return {0, wait, limit} end

redis.call('ZADD', sem, now + lease_ms, lease)
keep_sem_until_last_lease()
if max_rpm > 0 and redis.call('INCR', rpm) == 1 then redis.call('PEXPIRE', rpm, 60000) end
-- A day of TTL from the first call of the day outlives the day.
if max_rpd > 0 and redis.call('INCR', rpd) == 1 then redis.call('EXPIRE', rpd, 86400) end
return {1, 0, 0}
"""

# KEYS: sem. ARGV: now_ms, lease_ms, lease_id. Returns 1 if the lease was still held and now runs
# lease_ms from now, 0 if it was released or had expired (its slot may already be someone else's).
_RENEW_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[3])
local now, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
if not score or tonumber(score) <= now then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + lease_ms, ARGV[3])
if redis.call('PTTL', KEYS[1]) < lease_ms then redis.call('PEXPIRE', KEYS[1], lease_ms) end
return 1
"""


class RateLimiterUnavailable(Exception):
    """Redis could not be reached or did not answer; the caller decides whether to delay or fail."""


@dataclass(frozen=True)
class Admission:
    admitted: bool
    retry_after: float = 0.0  # seconds until a slot may be free (denied only)
    limit: str | None = None  # "concurrency" | "per_minute" | "per_day" when denied


ConfigLoader = Callable[[str, str], Awaitable[JsonObject | None]]


class ProviderRateLimiter:
    """Admission of provider calls per (scope, provider).

    `acquire` before the call; on admission the caller holds a lease for `lease_seconds` and must
    `renew` it (every third of the lease or so) while a call runs longer, then `release` it once the
    call has ended. On a denial, delay the job by `retry_after`; it is not a failure.
    """

    def __init__(
        self,
        redis: Redis,
        load_config: ConfigLoader,
        *,
        lease_seconds: float = 60.0,
        config_ttl_seconds: int = 300,
        clock: Callable[[], datetime] | None = None,
        concurrency_retry_seconds: float = 1.0,
        local_config_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
        release_delay_seconds: float = 0.005,
    ) -> None:
        if lease_seconds <= 0 or config_ttl_seconds <= 0 or concurrency_retry_seconds <= 0:
            raise ValueError("lease_seconds, config_ttl_seconds and concurrency_retry_seconds must be > 0")
        if release_delay_seconds < 0:
            raise ValueError("release_delay_seconds must be >= 0")
        self._redis = redis
        self._load_config = load_config
        self._lease_ms = max(1, round(lease_seconds * 1000))
        self._config_ttl_seconds = config_ttl_seconds
        self._clock = clock or SystemClock().now
        self._concurrency_wait_max_ms = max(_CONCURRENCY_WAIT_MIN_MS, round(concurrency_retry_seconds * 1000))
        # Registered once: redis-py sends EVALSHA and loads the script only when Redis lacks it.
        self._acquire_script = redis.register_script(_ACQUIRE_LUA)
        self._renew_script = redis.register_script(_RENEW_LUA)
        # One database load per cold (scope, provider) in this process, however many jobs ask at once.
        self._loading: dict[tuple[str, str], asyncio.Future[RateLimitConfig]] = {}
        # The config as this process last read it, for `local_config_seconds`: an acquire is then one
        # round trip (the script). An edit in this process forgets it at once; other processes see the
        # edit when their copy expires.
        self._local_seconds = local_config_seconds
        self._monotonic = monotonic
        self._local: dict[tuple[str, str], tuple[float, RateLimitConfig]] = {}
        # Bumped by every `forget_config`: a config read across a forget is used but not kept locally.
        self._forgotten = 0
        # Leases of ended calls not yet removed from Redis (see the module), and the flush that will.
        self._releases: dict[tuple[str, str], set[str]] = {}
        self._release_delay = release_delay_seconds
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    @staticmethod
    def key(scope: str, provider: str, suffix: str) -> str:
        """`prl:{scope}:{<provider>}:{suffix}`; the braces are the Redis Cluster hash tag."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {sorted(SCOPES)}, got {scope!r}")
        if not isinstance(provider, str) or not provider or "{" in provider or "}" in provider:
            # A brace would end the hash tag early and scatter one provider's keys over several slots.
            raise ValueError(f"provider name must be non-empty and without braces, got {provider!r}")
        return f"prl:{scope}:{{{provider}}}:{suffix}"

    async def config(self, scope: str, provider: str) -> RateLimitConfig:
        """The provider's limits: this process's copy, else the Redis cache, else the loader (then cached,
        "none" too)."""
        local = self._local.get((scope, provider))
        if local is not None and self._monotonic() < local[0]:
            return local[1]
        forgotten = self._forgotten
        config = await self._shared_config(scope, provider)
        if forgotten == self._forgotten and self._local_seconds > 0:
            self._local[(scope, provider)] = (self._monotonic() + self._local_seconds, config)
        return config

    async def _shared_config(self, scope: str, provider: str) -> RateLimitConfig:
        key = self.key(scope, provider, "config")
        with _unavailable("read the rate limit config"):
            raw = await self._redis.get(key)
        if raw is not None:
            cached = _parse_cached(raw)
            if cached is not None:
                return cached
        flight = self._loading.get((scope, provider))
        if flight is None:
            flight = asyncio.ensure_future(self._load_and_cache(scope, provider, key))
            self._loading[(scope, provider)] = flight
            flight.add_done_callback(lambda done: self._forget_flight(scope, provider, done))
        # Shielded: one waiter being cancelled must not cancel the load the others wait on.
        return await asyncio.shield(flight)

    async def acquire(self, scope: str, provider: str, lease_id: str) -> Admission:
        """Take a slot for one call, or say which limit denies it and when to try again."""
        _check_lease_id(lease_id)
        config = await self.config(scope, provider)
        if not config.limits_admission:
            return Admission(admitted=True)  # no limits: no script, no keys
        now = self._now()
        keys = [
            self.key(scope, provider, "sem"),
            self.key(scope, provider, "rpm"),
            self.key(scope, provider, f"rpd:{now:%Y-%m-%d}"),
        ]
        args = [
            _epoch_ms(now),
            self._lease_ms,
            lease_id,
            config.max_concurrency or 0,
            config.max_per_minute or 0,
            config.max_per_day or 0,
            _ms_until_next_utc_day(now),
            _CONCURRENCY_WAIT_MIN_MS,
            self._concurrency_wait_max_ms,
        ]
        releases = self._take_releases(scope, provider, lease_id)
        try:
            with _unavailable("acquire a provider slot"):
                admitted, wait_ms, limit = await self._evalsha(self._acquire_script, keys, [*args, *releases])
        except RateLimiterUnavailable:
            self._note_releases(scope, provider, releases)  # not sent: the next acquire or flush sends them
            raise
        if int(admitted):
            return Admission(admitted=True)
        return Admission(admitted=False, retry_after=int(wait_ms) / 1000, limit=_LIMIT_NAMES[int(limit)])

    async def release(self, scope: str, provider: str, lease_id: str) -> None:
        """Give the slot back once the call has ended. Idempotent; an unknown lease is ignored. Written
        behind (see the module): the next acquire of the provider or a flush within
        `release_delay_seconds` removes the lease.

        Not after a timeout while the provider may still be working on the call: that would admit
        another call over the limit. Let such a lease expire instead.
        """
        _check_lease_id(lease_id)
        self.key(scope, provider, "sem")  # checks the names now rather than at the flush
        # No config lookup: a limit changed since the acquire must not strand the lease.
        self._note_releases(scope, provider, [lease_id])
        if self._flush_timer is None and self._flushing is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(self._release_delay, self._start_flush)

    async def flush_releases(self) -> None:
        """Remove the leases released in this process and not yet carried by an acquire (one pipeline).

        Runs by itself `release_delay_seconds` after a release; call it at shutdown so that no slot waits
        for its lease to expire. Raises `RateLimiterUnavailable` when Redis does not answer; the releases
        stay noted for the next try.
        """
        pending, self._releases = self._releases, {}
        if not pending:
            return
        try:
            with _unavailable("release provider slots"):
                pipe = self._redis.pipeline(transaction=False)
                for (scope, provider), leases in pending.items():
                    pipe.zrem(self.key(scope, provider, "sem"), *leases)
                await pipe.execute()
        except RateLimiterUnavailable:
            for (scope, provider), leases in pending.items():
                self._note_releases(scope, provider, leases)
            raise

    def _note_releases(self, scope: str, provider: str, leases: Iterable[str]) -> None:
        self._releases.setdefault((scope, provider), set()).update(leases)

    def _take_releases(self, scope: str, provider: str, acquiring: str) -> list[str]:
        noted = self._releases.get((scope, provider))
        if not noted:
            return []
        # The lease being acquired goes first if it was released: the script must remove it before it looks
        # (a lease still in the set counts as held by this acquire), and no later flush may remove it.
        taken = [acquiring] if acquiring in noted else []
        noted.discard(acquiring)
        taken += [noted.pop() for _ in range(min(len(noted), _RELEASES_PER_ACQUIRE - len(taken)))]
        if not noted:
            del self._releases[(scope, provider)]
        return taken

    def _start_flush(self) -> None:
        self._flush_timer = None
        self._flushing = asyncio.ensure_future(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        retry = False
        try:
            await self.flush_releases()
        except RateLimiterUnavailable as error:
            log.warning("releasing provider slots failed; retrying", extra={"error": str(error)})
            retry = True
        finally:
            self._flushing = None
        if retry or self._releases:
            # Released meanwhile, or not sent: the leases expire by themselves if Redis stays away.
            loop = asyncio.get_running_loop()
            delay = _RELEASE_RETRY_SECONDS if retry else self._release_delay
            self._flush_timer = loop.call_later(delay, self._start_flush)

    async def renew(self, scope: str, provider: str, lease_id: str) -> bool:
        """Extend a held lease to `lease_seconds` from now; False if it was released or had expired.

        A provider without limits holds no leases, so there is nothing to lose: True.
        """
        _check_lease_id(lease_id)
        if not (await self.config(scope, provider)).limits_admission:
            return True
        if lease_id in self._releases.get((scope, provider), ()):
            return False  # released here, its removal not yet sent
        args = [_epoch_ms(self._now()), self._lease_ms, lease_id]
        with _unavailable("renew a provider lease"):
            held = await self._evalsha(self._renew_script, [self.key(scope, provider, "sem")], args)
        return bool(int(held))

    async def usage(self, scope: str, provider: str) -> LimiterUsage:
        """What the provider's keys hold now, for the queue monitor: unexpired leases, the calls of the
        current minute window (and when it ends) and of the UTC day. Reads only; nothing is written."""
        await self.flush_releases()  # this process's own releases count as done
        now = self._now()
        day = f"{now:%Y-%m-%d}"
        with _unavailable("read the limiter's state"):
            pipe = self._redis.pipeline(transaction=False)
            # Expired leases are still in the set until the next acquire sweeps them: count live ones only.
            pipe.zcount(self.key(scope, provider, "sem"), f"({_epoch_ms(now)}", "+inf")
            pipe.get(self.key(scope, provider, "rpm"))
            pipe.pttl(self.key(scope, provider, "rpm"))
            pipe.get(self.key(scope, provider, f"rpd:{day}"))
            in_flight, per_minute, minute_ttl_ms, per_day = await pipe.execute()
        return LimiterUsage(
            in_flight=int(in_flight),
            used_per_minute=int(per_minute or 0),
            minute_resets_in_seconds=minute_ttl_ms / 1000
            if per_minute is not None and minute_ttl_ms > 0
            else None,
            used_per_day=int(per_day or 0),
            day=day,
        )

    async def forget_config(self, scope: str, provider: str) -> None:
        """Drop the cached config so an admin's edit applies to the next acquire, in every worker.

        Call it after the edit has been committed. A load that read the old row just before the commit
        and writes just after this delete can still cache the old limits for one TTL; the window is one
        database read long.
        """
        key = self.key(scope, provider, "config")
        self._forgotten += 1
        self._local.pop((scope, provider), None)
        # A load in flight may have read the old row: its waiters keep it, later callers start afresh.
        self._loading.pop((scope, provider), None)
        with _unavailable("forget the rate limit config"):
            await self._redis.delete(key)

    async def _evalsha(self, script: AsyncScript, keys: list[str], args: list[object]) -> Any:
        """The script in one round trip: EVALSHA, and only if Redis lacks the script (restarted, flushed)
        SCRIPT LOAD and again (a script Redis lacked did not run, so nothing is counted twice)."""
        try:
            return await self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await script(keys=keys, args=args)

    async def _load_and_cache(self, scope: str, provider: str, key: str) -> RateLimitConfig:
        # Invalid configs raise here and are not cached: the next job reads the (fixed) row again.
        config = RateLimitConfig.from_provider_config(await self._load_config(scope, provider))
        # Only the normalised `rateLimit` part is cached: the rest of a provider's config (credentials,
        # endpoints) has no business in Redis. "No limits" is cached too, as a config without limits.
        with _unavailable("cache the rate limit config"):
            await self._redis.set(key, json.dumps(config.to_json()), ex=self._config_ttl_seconds)
        return config

    def _forget_flight(self, scope: str, provider: str, done: asyncio.Future[RateLimitConfig]) -> None:
        if self._loading.get((scope, provider)) is done:
            del self._loading[(scope, provider)]
        if not done.cancelled():
            done.exception()  # retrieved: a failed load is reported to its waiters, not logged again

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            # The day key is a UTC date; a naive time would be read as local time and shift it.
            raise ValueError("the rate limiter's clock must return an aware datetime")
        return now.astimezone(UTC)


def _parse_cached(raw: bytes | str) -> RateLimitConfig | None:
    """The cached config, or None when the cache holds something unusable (then it is reloaded)."""
    try:
        return RateLimitConfig.from_provider_config({"rateLimit": json.loads(raw)})
    except (ValueError, TypeError, InvalidRateLimitConfig):
        return None


def _check_lease_id(lease_id: str) -> None:
    if not isinstance(lease_id, str) or not lease_id:
        raise ValueError(f"lease_id must be a non-empty string, got {lease_id!r}")


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms_until_next_utc_day(now: datetime) -> int:
    next_day = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    return max(1, int((next_day - now).total_seconds() * 1000))


@contextmanager
def _unavailable(action: str) -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as error:
        raise RateLimiterUnavailable(f"cannot {action}: {error}") from error
