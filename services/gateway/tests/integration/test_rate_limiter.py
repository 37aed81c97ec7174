"""The Redis fixed-window limiter and the shared settings store, against the real local Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from funmagic_gateway.adapters.rate_limiter import (
    RateLimiterUnavailable,
    RateLimitSettingsStore,
    RedisRateLimiter,
)
from funmagic_gateway.domain.rate_limits import RateLimit, RateLimitCategory, RateLimitSettings

WaitFor = Callable[..., Awaitable[None]]
GLOBAL = RateLimitCategory.GLOBAL_API
UPLOAD = RateLimitCategory.UPLOAD


@pytest.fixture
def limiter(redis: Redis, prefix: str) -> RedisRateLimiter:
    return RedisRateLimiter(redis, prefix=prefix)


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[Redis]:
    # A real client aimed at a port nothing listens on: what the gateway sees while Redis is down.
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    yield client
    await client.aclose()


async def test_allows_the_limit_then_denies(limiter: RedisRateLimiter) -> None:
    limit = RateLimit(limit=3, window_seconds=60)
    decisions = [await limiter.hit(GLOBAL, "198.51.100.1", limit) for _ in range(5)]

    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0, 0]
    assert {d.limit for d in decisions} == {3}
    assert {d.category for d in decisions} == {GLOBAL}
    assert all(1 <= d.reset_seconds <= 60 for d in decisions)
    # The window is not extended by further hits: the reset only counts down.
    assert decisions[-1].reset_seconds <= decisions[0].reset_seconds


async def test_key_is_hash_tagged_per_category_and_subject(
    limiter: RedisRateLimiter, redis: Redis, prefix: str
) -> None:
    await limiter.hit(UPLOAD, "user-42", RateLimit(limit=5, window_seconds=30))

    key = f"{prefix}:upload:{{user-42}}"
    assert limiter.key(UPLOAD, "user-42") == key
    assert await redis.get(key) == b"1"
    assert 0 < await redis.pttl(key) <= 30_000


async def test_subjects_and_categories_are_counted_separately(limiter: RedisRateLimiter) -> None:
    limit = RateLimit(limit=1, window_seconds=60)
    assert (await limiter.hit(GLOBAL, "198.51.100.1", limit)).allowed
    assert not (await limiter.hit(GLOBAL, "198.51.100.1", limit)).allowed
    assert (await limiter.hit(GLOBAL, "198.51.100.2", limit)).allowed
    assert (await limiter.hit(RateLimitCategory.AUTH_ACTION, "198.51.100.1", limit)).allowed


async def test_the_window_is_honoured(
    limiter: RedisRateLimiter, redis: Redis, prefix: str, wait_for: WaitFor
) -> None:
    # The original always used 60 s; a 1 s window must reopen after about a second.
    limit = RateLimit(limit=2, window_seconds=1)
    first, second, third = [await limiter.hit(GLOBAL, "198.51.100.3", limit) for _ in range(3)]
    assert (first.allowed, second.allowed, third.allowed) == (True, True, False)
    assert third.reset_seconds == 1
    key = limiter.key(GLOBAL, "198.51.100.3")
    assert 0 < await redis.pttl(key) <= 1000

    async def window_ended() -> bool:
        return not await redis.exists(key)

    await wait_for(window_ended, timeout=5.0, what="the 1 s window to expire")
    fresh = await limiter.hit(GLOBAL, "198.51.100.3", limit)
    assert fresh.allowed
    assert fresh.remaining == 1


async def test_concurrent_hits_never_over_admit(limiter: RedisRateLimiter) -> None:
    limit = RateLimit(limit=20, window_seconds=60)
    decisions = await asyncio.gather(*(limiter.hit(GLOBAL, "198.51.100.4", limit) for _ in range(50)))

    allowed = [d for d in decisions if d.allowed]
    assert len(allowed) == 20
    # Each admitted request saw a distinct count: the INCR and its reading are one atomic step.
    assert sorted(d.remaining for d in allowed) == list(range(20))
    assert all(d.remaining == 0 for d in decisions if not d.allowed)


async def test_a_counter_that_lost_its_expiry_gets_one_again(limiter: RedisRateLimiter, redis: Redis) -> None:
    # The original's INCR-then-EXPIRE could leave such a key after a crash: blocked forever.
    key = limiter.key(GLOBAL, "198.51.100.5")
    await redis.set(key, 10)

    decision = await limiter.hit(GLOBAL, "198.51.100.5", RateLimit(limit=5, window_seconds=30))

    assert not decision.allowed
    assert 0 < await redis.pttl(key) <= 30_000
    assert 1 <= decision.reset_seconds <= 30


async def test_a_shortened_window_applies_to_a_running_counter(
    limiter: RedisRateLimiter, redis: Redis
) -> None:
    key = limiter.key(GLOBAL, "198.51.100.6")
    await redis.set(key, 1, px=3_600_000)

    decision = await limiter.hit(GLOBAL, "198.51.100.6", RateLimit(limit=5, window_seconds=2))

    assert decision.reset_seconds <= 2
    assert await redis.pttl(key) <= 2000


async def test_an_unreachable_redis_is_reported_as_unavailable(unreachable_redis: Redis) -> None:
    limiter = RedisRateLimiter(unreachable_redis, prefix="unused")
    with pytest.raises(RateLimiterUnavailable):
        await limiter.hit(GLOBAL, "198.51.100.7", RateLimit(limit=1, window_seconds=1))


# --- settings store -------------------------------------------------------------------------------

CUSTOM = RateLimitSettings(
    task_creation=RateLimit(limit=3, window_seconds=10),
    upload=RateLimit(limit=7, window_seconds=3600),
)


class FakeClock:
    """A monotonic clock the test moves by hand, to cross the cache period without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_missing_settings_are_the_defaults(redis: Redis, prefix: str) -> None:
    store = RateLimitSettingsStore(redis, key=f"{prefix}:settings")
    assert await store.get() == RateLimitSettings()


async def test_settings_written_by_one_replica_are_read_by_another(redis: Redis, prefix: str) -> None:
    writer = RateLimitSettingsStore(redis, key=f"{prefix}:settings")
    reader = RateLimitSettingsStore(redis, key=f"{prefix}:settings")

    await writer.put(CUSTOM)

    assert await reader.get() == CUSTOM
    stored = await redis.get(f"{prefix}:settings")
    assert RateLimitSettings.model_validate_json(stored) == CUSTOM


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"upload": {"limit": 0, "window_seconds": 60}}',
        b'{"uploads": {"limit": 5, "window_seconds": 60}}',
        b'"just a string"',
    ],
)
async def test_corrupt_settings_fall_back_to_the_defaults_with_a_warning(
    redis: Redis, prefix: str, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    await redis.set(f"{prefix}:settings", raw)
    store = RateLimitSettingsStore(redis, key=f"{prefix}:settings")

    with caplog.at_level(logging.WARNING, logger="funmagic_gateway.adapters.rate_limiter"):
        settings = await store.get()

    assert settings == RateLimitSettings()
    assert any("invalid" in record.getMessage() for record in caplog.records)


async def test_the_cache_holds_for_cache_seconds_then_refreshes(redis: Redis, prefix: str) -> None:
    clock = FakeClock()
    replica = RateLimitSettingsStore(redis, key=f"{prefix}:settings", cache_seconds=1.0, clock=clock)
    admin = RateLimitSettingsStore(redis, key=f"{prefix}:settings")
    assert await replica.get() == RateLimitSettings()

    await admin.put(CUSTOM)
    clock.now += 0.5
    assert await replica.get() == RateLimitSettings(), "served from the cache within cache_seconds"

    clock.now += 0.6
    assert await replica.get() == CUSTOM, "re-read once cache_seconds have passed"


async def test_put_refreshes_the_local_cache_at_once(redis: Redis, prefix: str) -> None:
    clock = FakeClock()
    store = RateLimitSettingsStore(redis, key=f"{prefix}:settings", clock=clock)
    assert await store.get() == RateLimitSettings()

    await store.put(CUSTOM)

    assert await store.get() == CUSTOM


async def test_a_change_reaches_other_replicas_within_about_a_second(
    redis: Redis, prefix: str, wait_for: WaitFor
) -> None:
    replica = RateLimitSettingsStore(redis, key=f"{prefix}:settings")
    assert await replica.get() == RateLimitSettings()
    await RateLimitSettingsStore(redis, key=f"{prefix}:settings").put(CUSTOM)

    async def applied() -> bool:
        return await replica.get() == CUSTOM

    started = asyncio.get_running_loop().time()
    await wait_for(applied, timeout=3.0, what="the other replica to see the new settings")
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_an_unreachable_settings_store_is_reported_as_unavailable(unreachable_redis: Redis) -> None:
    store = RateLimitSettingsStore(unreachable_redis)
    with pytest.raises(RateLimiterUnavailable):
        await store.get()
    with pytest.raises(RateLimiterUnavailable):
        await store.put(RateLimitSettings())
