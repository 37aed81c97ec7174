"""The per-provider rate limiter against the real local Redis (database 9, see conftest.py)."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from funmagic_kit.testing import RoundTripConnection, wait_until
from funmagic_providers.adapters.rate_limiter import (
    Admission,
    ProviderRateLimiter,
    RateLimiterUnavailable,
)
from funmagic_providers.domain.rate_limit import InvalidRateLimitConfig, RateLimitConfig

pytestmark = pytest.mark.integration

WaitFor = Callable[..., Awaitable[None]]


class ConfigSource:
    """Stands in for the providers tables: the `config` JSON per (scope, provider), and who asked."""

    def __init__(self) -> None:
        self.configs: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.calls: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None  # when set, loads wait for it (to overlap them)

    def set(self, scope: str, provider: str, **rate_limit: Any) -> None:
        # A credential beside the limits, as in a real row: it must not end up in Redis.
        self.configs[(scope, provider)] = {"rateLimit": rate_limit, "apiKey": "sk-secret"}

    async def __call__(self, scope: str, provider: str) -> dict[str, Any] | None:
        self.calls.append((scope, provider))
        if self.gate is not None:
            await self.gate.wait()
        return self.configs.get((scope, provider))


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def provider(redis: Redis) -> AsyncIterator[str]:
    """A provider name no other test uses; every key of it, in both scopes, is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    keys = [key async for key in redis.scan_iter(match=f"prl:*:{{{name}}}:*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def source() -> ConfigSource:
    return ConfigSource()


@pytest.fixture
def limiter(redis: Redis, source: ConfigSource) -> ProviderRateLimiter:
    return ProviderRateLimiter(redis, source)


async def _keys_of(redis: Redis, provider: str) -> set[str]:
    return {key.decode() async for key in redis.scan_iter(match=f"prl:*:{{{provider}}}:*")}


def _lease() -> str:
    return uuid.uuid4().hex


# --- keys -------------------------------------------------------------------------------------------------


async def test_keys_carry_the_provider_as_a_hash_tag(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    clock = FakeClock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    limiter = ProviderRateLimiter(redis, source, clock=clock)
    source.set("web", provider, maxConcurrency=2, maxPerMinute=10, maxPerDay=100)

    assert (await limiter.acquire("web", provider, "lease-1")).admitted

    assert ProviderRateLimiter.key("web", "openai", "sem") == "prl:web:{openai}:sem"
    assert await _keys_of(redis, provider) == {
        f"prl:web:{{{provider}}}:config",
        f"prl:web:{{{provider}}}:sem",
        f"prl:web:{{{provider}}}:rpm",
        f"prl:web:{{{provider}}}:rpd:2026-03-14",
    }
    assert await redis.zrange(f"prl:web:{{{provider}}}:sem", 0, -1) == [b"lease-1"]
    assert await redis.get(f"prl:web:{{{provider}}}:rpm") == b"1"
    assert await redis.get(f"prl:web:{{{provider}}}:rpd:2026-03-14") == b"1"
    # Every key expires: the window, the day (at least its rest), the lease set, the cache.
    assert 0 < await redis.pttl(f"prl:web:{{{provider}}}:rpm") <= 60_000
    assert 12 * 3600 < await redis.ttl(f"prl:web:{{{provider}}}:rpd:2026-03-14") <= 86_400
    assert 0 < await redis.pttl(f"prl:web:{{{provider}}}:sem") <= 60_000
    assert 0 < await redis.ttl(f"prl:web:{{{provider}}}:config") <= 300


@pytest.mark.parametrize(
    ("scope", "provider_name"),
    [("studio", "openai"), ("", "openai"), ("web", ""), ("web", "open{ai}"), ("admin", "x}")],
)
async def test_bad_scope_or_provider_name_is_refused(
    limiter: ProviderRateLimiter, scope: str, provider_name: str
) -> None:
    with pytest.raises(ValueError, match=r"scope|provider name"):
        await limiter.acquire(scope, provider_name, "lease-1")


# --- concurrency ------------------------------------------------------------------------------------------


@pytest.fixture
async def pooled_redis(redis_url: str) -> AsyncIterator[Redis]:
    # redis-py's default pool refuses a 101st connection; 200 tasks of one process share 32, waiting.
    pool = BlockingConnectionPool.from_url(redis_url, max_connections=32, timeout=30)
    client = Redis(connection_pool=pool)
    yield client
    await client.aclose()
    await pool.disconnect()


async def test_200_acquirers_never_exceed_max_concurrency(
    redis: Redis, pooled_redis: Redis, source: ConfigSource, provider: str
) -> None:
    # A short concurrency hint so 195 waiters cycle quickly; the limit is what is under test.
    limiter = ProviderRateLimiter(pooled_redis, source, concurrency_retry_seconds=0.05)
    source.set("web", provider, maxConcurrency=5)
    sem = f"prl:web:{{{provider}}}:sem"
    holders = max_holders = completed = denials = 0
    sampled: list[int] = []
    all_done = asyncio.Event()

    async def sample() -> None:
        while not all_done.is_set():
            sampled.append(await redis.zcard(sem))

    async def call_provider() -> None:
        nonlocal holders, max_holders, completed, denials
        lease = _lease()
        while not (admission := await limiter.acquire("web", provider, lease)).admitted:
            assert admission.limit == "concurrency"
            assert 0.01 <= admission.retry_after <= 0.05
            denials += 1
            await asyncio.sleep(admission.retry_after)
        holders += 1
        max_holders = max(max_holders, holders)
        try:
            await asyncio.sleep(random.uniform(0.001, 0.01))  # the provider call
        finally:
            holders -= 1
            await limiter.release("web", provider, lease)
        completed += 1

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.wait_for(asyncio.gather(*(call_provider() for _ in range(200))), timeout=120)
    finally:
        all_done.set()
        await sampler

    assert completed == 200
    assert denials > 0
    assert max_holders == 5
    assert max(sampled) == 5, f"largest semaphore seen: {max(sampled)} in {len(sampled)} samples"
    await limiter.flush_releases()  # the last releases, written behind (as at shutdown)
    assert await redis.zcard(sem) == 0


async def test_a_crashed_holder_blocks_only_until_its_lease_expires(
    redis: Redis, source: ConfigSource, provider: str, wait_for: WaitFor
) -> None:
    limiter = ProviderRateLimiter(redis, source, lease_seconds=0.3)
    source.set("web", provider, maxConcurrency=1)

    assert (await limiter.acquire("web", provider, "crashed")).admitted  # never released
    taken_at = time.time()
    denied = await limiter.acquire("web", provider, "next")
    assert denied == Admission(admitted=False, retry_after=denied.retry_after, limit="concurrency")
    # The hint is the time left on the crashed lease.
    assert 0.01 <= denied.retry_after <= 0.3

    admitted: list[Admission] = []

    async def next_gets_in() -> bool:
        admission = await limiter.acquire("web", provider, "next")
        admitted.append(admission)
        return admission.admitted

    await wait_for(next_gets_in, timeout=5, what="the crashed lease to expire")
    assert time.time() - taken_at >= 0.29
    assert await redis.zrange(f"prl:web:{{{provider}}}:sem", 0, -1) == [b"next"]


async def test_renew_keeps_a_lease_past_its_original_expiry(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    clock = FakeClock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    limiter = ProviderRateLimiter(redis, source, lease_seconds=10, clock=clock)
    source.set("web", provider, maxConcurrency=1)
    assert (await limiter.acquire("web", provider, "long-call")).admitted

    # A call running three leases long, renewing every 8 s of its 10 s lease: nobody else gets in.
    for _ in range(4):
        clock.now += timedelta(seconds=8)
        assert await limiter.renew("web", provider, "long-call")
        assert not (await limiter.acquire("web", provider, "other")).admitted
    assert clock.now > datetime(2026, 3, 14, 12, 0, 30, tzinfo=UTC)
    expiry_ms = await redis.zscore(f"prl:web:{{{provider}}}:sem", "long-call")
    assert expiry_ms == (clock.now + timedelta(seconds=10)).timestamp() * 1000

    await limiter.release("web", provider, "long-call")
    assert not await limiter.renew("web", provider, "long-call")
    assert not await limiter.renew("web", provider, "never-acquired")
    assert (await limiter.acquire("web", provider, "other")).admitted


async def test_an_expired_lease_cannot_be_renewed(redis: Redis, source: ConfigSource, provider: str) -> None:
    clock = FakeClock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    limiter = ProviderRateLimiter(redis, source, lease_seconds=10, clock=clock)
    source.set("web", provider, maxConcurrency=1)
    assert (await limiter.acquire("web", provider, "slow")).admitted

    clock.now += timedelta(seconds=10, milliseconds=1)

    # Its slot may already be someone else's: renewing must not bring it back.
    assert not await limiter.renew("web", provider, "slow")
    assert (await limiter.acquire("web", provider, "other")).admitted


async def test_acquire_again_with_the_same_lease_is_not_counted_twice(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxConcurrency=1, maxPerMinute=5)

    # A retry after a lost reply: the lease already holds the one slot.
    assert (await limiter.acquire("web", provider, "job-1")).admitted
    assert (await limiter.acquire("web", provider, "job-1")).admitted

    assert await redis.zcard(f"prl:web:{{{provider}}}:sem") == 1
    assert await redis.get(f"prl:web:{{{provider}}}:rpm") == b"1"


# --- per minute and per day -------------------------------------------------------------------------------


async def test_per_minute_admits_exactly_the_limit_in_one_window(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxPerMinute=30)
    admissions = []
    for _ in range(50):
        lease = _lease()
        admissions.append(await limiter.acquire("web", provider, lease))
        await limiter.release("web", provider, lease)

    admitted = [a for a in admissions if a.admitted]
    denied = [a for a in admissions if not a.admitted]
    assert len(admitted) == 30
    assert admissions[:30] == admitted  # the first 30, then none
    assert len(denied) == 20
    assert {a.limit for a in denied} == {"per_minute"}
    assert all(0 < a.retry_after <= 60 for a in denied)
    # Denials are not counted: the counter stops at the limit.
    assert await redis.get(f"prl:web:{{{provider}}}:rpm") == b"30"


async def test_per_day_resets_at_the_utc_date_boundary(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    clock = FakeClock(datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC))
    limiter = ProviderRateLimiter(redis, source, clock=clock)
    source.set("admin", provider, maxPerDay=3)

    for n in range(3):
        assert (await limiter.acquire("admin", provider, f"day1-{n}")).admitted
        await limiter.release("admin", provider, f"day1-{n}")
    denied = await limiter.acquire("admin", provider, "day1-late")
    assert denied == Admission(admitted=False, retry_after=1.0, limit="per_day")  # until midnight

    clock.now = datetime(2026, 3, 15, 0, 0, 1, tzinfo=UTC)

    assert (await limiter.acquire("admin", provider, "day2-0")).admitted
    assert await redis.get(f"prl:admin:{{{provider}}}:rpd:2026-03-14") == b"3"
    assert await redis.get(f"prl:admin:{{{provider}}}:rpd:2026-03-15") == b"1"


async def test_a_denial_takes_nothing_and_names_the_longest_wait(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    clock = FakeClock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    limiter = ProviderRateLimiter(redis, source, clock=clock)
    source.set("web", provider, maxConcurrency=1, maxPerMinute=1, maxPerDay=10)
    assert (await limiter.acquire("web", provider, "first")).admitted

    # Concurrency and the minute both deny; the minute is the longer wait, so it is the answer.
    denied = await limiter.acquire("web", provider, "second")

    assert denied.limit == "per_minute"
    assert 59 < denied.retry_after <= 60
    assert await redis.zrange(f"prl:web:{{{provider}}}:sem", 0, -1) == [b"first"]
    assert await redis.get(f"prl:web:{{{provider}}}:rpm") == b"1"
    assert await redis.get(f"prl:web:{{{provider}}}:rpd:2026-03-14") == b"1"


# --- scopes and config ------------------------------------------------------------------------------------


async def test_web_and_admin_scopes_are_independent(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxConcurrency=1, maxPerMinute=1)
    source.set("admin", provider, maxConcurrency=1, maxPerMinute=1)

    assert (await limiter.acquire("web", provider, "web-1")).admitted
    assert not (await limiter.acquire("web", provider, "web-2")).admitted

    assert (await limiter.acquire("admin", provider, "admin-1")).admitted
    assert await redis.zrange(f"prl:admin:{{{provider}}}:sem", 0, -1) == [b"admin-1"]
    assert await redis.zrange(f"prl:web:{{{provider}}}:sem", 0, -1) == [b"web-1"]


async def test_no_config_admits_everything_without_touching_limit_keys(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    admissions = [await limiter.acquire("web", provider, _lease()) for _ in range(50)]

    assert set(admissions) == {Admission(admitted=True)}
    assert await _keys_of(redis, provider) == {f"prl:web:{{{provider}}}:config"}
    assert source.calls == [("web", provider)]  # "no config" is cached as well
    assert await limiter.renew("web", provider, "anything")  # nothing held, nothing lost
    await limiter.release("web", provider, "anything")
    assert await _keys_of(redis, provider) == {f"prl:web:{{{provider}}}:config"}


async def test_config_without_admission_limits_runs_no_script(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, retryOn429=False, maxRetries=1)

    assert (await limiter.acquire("web", provider, "job")).admitted
    assert await limiter.config("web", provider) == RateLimitConfig(retry_on_429=False, max_retries=1)
    assert await _keys_of(redis, provider) == {f"prl:web:{{{provider}}}:config"}


async def test_config_is_cached_and_forget_config_applies_an_edit_at_once(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxConcurrency=1, maxPerDay=1000)
    assert (await limiter.acquire("web", provider, "a")).admitted
    for _ in range(20):
        assert not (await limiter.acquire("web", provider, "b")).admitted
    assert source.calls == [("web", provider)]
    # Only the normalised limits are cached, not the rest of the provider's config.
    cached = json.loads(await redis.get(f"prl:web:{{{provider}}}:config"))
    assert cached == {"maxConcurrency": 1, "maxPerDay": 1000, "retryOn429": True, "maxRetries": 3,
                      "baseBackoffMs": 1000}  # fmt: skip

    source.set("web", provider, maxConcurrency=2, maxPerDay=1000)  # the admin edits the row …
    assert not (await limiter.acquire("web", provider, "b")).admitted  # … still cached
    await limiter.forget_config("web", provider)  # … and the admin endpoint drops the cache

    assert (await limiter.acquire("web", provider, "b")).admitted
    assert source.calls == [("web", provider)] * 2


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_with_its_config_known_an_acquire_is_one_round_trip_that_carries_the_releases_before_it(
    redis: Redis, redis_url: str, source: ConfigSource, provider: str
) -> None:
    client = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    sem = f"prl:web:{{{provider}}}:sem"
    try:
        # A delay no test waits out: only an acquire can send the release.
        limiter = ProviderRateLimiter(client, source, release_delay_seconds=3600)
        source.set("web", provider, maxConcurrency=2, maxPerMinute=100)
        assert (await limiter.acquire("web", provider, "first")).admitted  # connects, reads the config

        RoundTripConnection.sends = 0
        admitted = await limiter.acquire("web", provider, "second")
        acquire_trips = RoundTripConnection.sends
        RoundTripConnection.sends = 0
        await limiter.release("web", provider, "first")
        release_trips = RoundTripConnection.sends
        held_after_the_release = await redis.zrange(sem, 0, -1)
        RoundTripConnection.sends = 0
        next_admitted = await limiter.acquire("web", provider, "third")
        next_acquire_trips = RoundTripConnection.sends
    finally:
        await client.aclose()

    assert admitted.admitted
    assert next_admitted.admitted  # two slots: "first" was given back by this acquire's script
    assert (acquire_trips, release_trips, next_acquire_trips) == (1, 0, 1)
    assert sorted(held_after_the_release) == [b"first", b"second"]
    assert sorted(await redis.zrange(sem, 0, -1)) == [b"second", b"third"]


async def test_a_release_no_acquire_follows_is_sent_within_the_delay(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    limiter = ProviderRateLimiter(redis, source, release_delay_seconds=0.01)
    source.set("web", provider, maxConcurrency=1)
    assert (await limiter.acquire("web", provider, "only")).admitted

    await limiter.release("web", provider, "only")

    async def given_back() -> bool:
        return await redis.zscore(f"prl:web:{{{provider}}}:sem", "only") is None

    await wait_until(given_back, timeout=5, what="the written-behind release")
    assert not await limiter.renew("web", provider, "only")


async def test_a_lease_acquired_again_after_its_release_holds_a_fresh_slot_no_flush_removes(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    limiter = ProviderRateLimiter(redis, source, release_delay_seconds=3600)
    source.set("web", provider, maxConcurrency=2000)
    others = [f"other-{n}" for n in range(1000)]
    for lease in [*others, "job"]:
        assert (await limiter.acquire("web", provider, lease)).admitted
    for lease in [*others, "job"]:  # far more noted releases than one acquire carries
        await limiter.release("web", provider, lease)

    again = await limiter.acquire("web", provider, "job")  # the job retried with its lease
    await limiter.flush_releases()

    assert again.admitted
    assert await redis.zrange(f"prl:web:{{{provider}}}:sem", 0, -1) == [b"job"]
    assert await limiter.renew("web", provider, "job")


async def test_a_released_lease_is_not_renewed_before_its_removal_is_sent(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    limiter = ProviderRateLimiter(redis, source, release_delay_seconds=3600)
    source.set("web", provider, maxConcurrency=1)
    assert (await limiter.acquire("web", provider, "call")).admitted

    await limiter.release("web", provider, "call")

    assert not await limiter.renew("web", provider, "call")
    await limiter.flush_releases()
    assert await redis.zscore(f"prl:web:{{{provider}}}:sem", "call") is None


async def test_another_process_sees_an_edit_once_its_copy_of_the_config_expires(
    redis: Redis, source: ConfigSource, provider: str
) -> None:
    monotonic = Monotonic()
    editor = ProviderRateLimiter(redis, source)
    other = ProviderRateLimiter(redis, source, local_config_seconds=5.0, monotonic=monotonic)
    source.set("web", provider, maxConcurrency=1)
    assert (await other.acquire("web", provider, "a")).admitted

    source.set("web", provider, maxConcurrency=2)
    await editor.forget_config("web", provider)  # the admin's edit, served by another process
    monotonic.now += 4.9
    before = await other.acquire("web", provider, "b")
    monotonic.now += 0.2
    after = await other.acquire("web", provider, "b")

    assert not before.admitted
    assert after.admitted


async def test_a_script_redis_lost_is_loaded_again_and_the_call_counted_once(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxPerMinute=100)
    assert (await limiter.acquire("web", provider, "a")).admitted

    await redis.script_flush()  # what a restarted Redis has forgotten
    assert (await limiter.acquire("web", provider, "b")).admitted

    assert int(await redis.get(f"prl:web:{{{provider}}}:rpm")) == 2


class CountingRedis(Redis):
    """The real client, counting answered GETs: a test can tell when every lookup has read the cache."""

    gets = 0

    async def get(self, name: Any) -> Any:
        value = await super().get(name)
        self.gets += 1
        return value


async def test_concurrent_cold_lookups_load_the_config_once(
    redis_url: str, source: ConfigSource, provider: str, wait_for: WaitFor
) -> None:
    client = CountingRedis.from_url(redis_url)
    try:
        limiter = ProviderRateLimiter(client, source)
        source.set("web", provider, maxPerMinute=100)
        source.gate = asyncio.Event()
        lookups = [asyncio.create_task(limiter.config("web", provider)) for _ in range(20)]

        async def all_found_the_cache_empty() -> bool:
            return client.gets == 20

        # Each lookup joins the load in the step its GET answers in; hold the load until all have.
        await wait_for(all_found_the_cache_empty, timeout=5, what="20 cache reads")
        source.gate.set()
        configs = await asyncio.gather(*lookups)
    finally:
        await client.aclose()

    assert set(configs) == {RateLimitConfig(max_per_minute=100)}
    assert source.calls == [("web", provider)]


async def test_an_invalid_config_is_refused_and_not_cached(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxConcurrency=-3)

    with pytest.raises(InvalidRateLimitConfig, match="maxConcurrency must be at least 1"):
        await limiter.acquire("web", provider, "job")

    assert await redis.exists(f"prl:web:{{{provider}}}:config") == 0


async def test_an_unreadable_cache_entry_is_reloaded(
    redis: Redis, limiter: ProviderRateLimiter, source: ConfigSource, provider: str
) -> None:
    source.set("web", provider, maxConcurrency=4)
    await redis.set(f"prl:web:{{{provider}}}:config", b"{not json", ex=300)

    assert await limiter.config("web", provider) == RateLimitConfig(max_concurrency=4)
    assert json.loads(await redis.get(f"prl:web:{{{provider}}}:config"))["maxConcurrency"] == 4


async def test_redis_down_is_reported_as_unavailable(source: ConfigSource) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        limiter = ProviderRateLimiter(down, source)
        with pytest.raises(RateLimiterUnavailable, match="cannot read the rate limit config"):
            await limiter.acquire("web", "openai", "job")
        await limiter.release("web", "openai", "job")  # noted here; sent later
        with pytest.raises(RateLimiterUnavailable, match="cannot release provider slots"):
            await limiter.flush_releases()
        with pytest.raises(RateLimiterUnavailable, match="cannot release provider slots"):
            await limiter.flush_releases()  # still noted: the next try sends it again
    finally:
        await down.aclose()
