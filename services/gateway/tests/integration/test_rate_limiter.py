"""The Redis fixed-window limiter and the shared settings store, against the real local Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from gateway_test_support import KeptSettings
from redis.asyncio import Redis

from funmagic_gateway.adapters.rate_limiter import (
    CounterLeases,
    PurchasedCredits,
    RateLimiterUnavailable,
    RateLimitSettingsStore,
    RedisRateLimiter,
)
from funmagic_gateway.application.ports import Caller
from funmagic_gateway.domain.rate_limits import (
    LOCAL_REFUSAL_SECONDS,
    RateLimit,
    RateLimitCategory,
    RateLimitSettings,
    decide,
)
from funmagic_kit.http import HttpProblem
from funmagic_kit.testing import RoundTripConnection, wait_until

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


async def test_the_counters_and_another_key_of_the_subject_are_read_in_one_round_trip(
    limiter: RedisRateLimiter, redis: Redis, prefix: str
) -> None:
    await redis.set(f"{prefix}:extra:{{user-7}}", b"1200")
    windows = [(GLOBAL, "198.51.100.8", 60), (UPLOAD, "user-7", 30)]

    counted = await limiter.count(windows, also_get=f"{prefix}:extra:{{user-7}}")
    again = await limiter.count(windows)

    assert [count for count, _ in counted.counts] == [1, 1]
    assert all(0 < ttl_ms <= 60_000 for _, ttl_ms in counted.counts)
    assert counted.extra == b"1200"
    assert [count for count, _ in again.counts] == [2, 2]
    assert again.extra is None
    missing = await limiter.count(windows, also_get=f"{prefix}:extra:{{nobody}}")
    assert missing.extra is None


async def test_counting_a_request_is_one_round_trip_even_with_several_counters(
    prefix: str, redis_url: str
) -> None:
    client = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    limiter = RedisRateLimiter(client, prefix=prefix)
    windows = [(GLOBAL, "198.51.100.9", 60), (UPLOAD, "user-8", 30)]
    try:
        await limiter.count(windows)  # connects, and loads the script if Redis lacks it
        RoundTripConnection.sends = 0

        counted = await limiter.count(windows, also_get=f"{prefix}:extra:{{user-8}}")

        assert [count for count, _ in counted.counts] == [2, 2]
        assert RoundTripConnection.sends == 1
    finally:
        await client.aclose()


async def test_a_script_redis_lost_is_loaded_again_and_each_counter_counted_once(
    limiter: RedisRateLimiter, redis: Redis
) -> None:
    windows = [(GLOBAL, "198.51.100.10", 60), (UPLOAD, "user-9", 30)]
    await limiter.count(windows)

    await redis.script_flush()  # what a restarted Redis has forgotten
    counted = await limiter.count(windows)

    assert [count for count, _ in counted.counts] == [2, 2]


# --- leases: a replica counts hits in blocks --------------------------------------------------------


async def test_a_busy_subject_costs_one_round_trip_per_lease(
    prefix: str, redis_url: str, redis: Redis
) -> None:
    client = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    leases = CounterLeases(RedisRateLimiter(client, prefix=prefix))
    limit = RateLimit(limit=1000, window_seconds=60)  # leases of 1000 / 16 = 62 hits
    try:
        await leases.count([(GLOBAL, "198.51.100.20", limit)])  # connects, loads the script
        RoundTripConnection.sends = 0

        counted = [await leases.count([(GLOBAL, "198.51.100.21", limit)]) for _ in range(62)]

        assert [c.counts[0][0] for c in counted] == list(range(1, 63))
        assert RoundTripConnection.sends == 1
        assert await redis.get(f"{prefix}:global_api:{{198.51.100.21}}") == b"62"
    finally:
        await client.aclose()


async def test_concurrent_requests_share_one_lease_instead_of_each_asking(
    prefix: str, redis_url: str
) -> None:
    client = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    leases = CounterLeases(RedisRateLimiter(client, prefix=prefix))
    limit = RateLimit(limit=1000, window_seconds=60)
    try:
        await leases.count([(GLOBAL, "198.51.100.22", limit)])
        RoundTripConnection.sends = 0

        counted = await asyncio.gather(*(leases.count([(GLOBAL, "198.51.100.23", limit)]) for _ in range(40)))

        assert sorted(c.counts[0][0] for c in counted) == list(range(1, 41))
        assert RoundTripConnection.sends == 1
    finally:
        await client.aclose()


async def test_replicas_leasing_from_one_counter_never_admit_more_than_the_limit(
    redis: Redis, prefix: str
) -> None:
    replicas = [CounterLeases(RedisRateLimiter(redis, prefix=prefix)) for _ in range(3)]
    limit = RateLimit(limit=200, window_seconds=60)

    admitted = 0
    for n in range(600):
        counted = await replicas[n % 3].count([(GLOBAL, "198.51.100.24", limit)])
        count, ttl_ms = counted.counts[0]
        admitted += decide(GLOBAL, limit, count, ttl_ms).allowed

    assert admitted <= 200
    # What the others leased and did not use is refused early: at most a 16th of the limit each.
    assert admitted >= 200 - 2 * 200 // 16


async def test_requests_refused_at_the_limit_are_added_to_the_counter_with_the_next_lease(
    redis: Redis, prefix: str
) -> None:
    leases = CounterLeases(RedisRateLimiter(redis, prefix=prefix))
    key = f"{prefix}:upload:{{user-20}}"
    tight = RateLimit(limit=2, window_seconds=60)
    for _ in range(5):
        await leases.count([(UPLOAD, "user-20", tight)])
    assert await redis.get(key) == b"2", "three refused without asking Redis"

    raised = await leases.count([(UPLOAD, "user-20", RateLimit(limit=10, window_seconds=60))])

    assert raised.counts[0][0] == 6
    assert await redis.get(key) == b"6"


async def test_a_counter_reset_in_redis_frees_a_refused_subject_within_the_local_refusal_period(
    redis: Redis, prefix: str
) -> None:
    clock = FakeClock()
    leases = CounterLeases(RedisRateLimiter(redis, prefix=prefix), clock=clock)
    key = f"{prefix}:upload:{{user-21}}"
    tight = RateLimit(limit=2, window_seconds=60)
    counts = [(await leases.count([(UPLOAD, "user-21", tight)])).counts[0][0] for _ in range(5)]
    assert counts == [1, 2, 3, 4, 5]  # the last three refused, without asking Redis

    await redis.delete(key)  # an operator's reset
    clock.now += LOCAL_REFUSAL_SECONDS
    after_reset = await leases.count([(UPLOAD, "user-21", tight)])

    assert after_reset.counts[0][0] == 1, "the refused hits belonged to the window that was reset"
    assert await redis.get(key) == b"1"


async def test_while_redis_is_down_every_waiting_request_learns_it(unreachable_redis: Redis) -> None:
    leases = CounterLeases(RedisRateLimiter(unreachable_redis, prefix="unused"))
    limit = RateLimit(limit=1000, window_seconds=60)

    answers = await asyncio.gather(
        *(leases.count([(GLOBAL, "198.51.100.25", limit)]) for _ in range(3)), return_exceptions=True
    )

    assert all(isinstance(answer, RateLimiterUnavailable) for answer in answers)


async def test_a_redis_that_hangs_is_given_up_on() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes every command, answers none, until the client goes

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hanging = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    leases = CounterLeases(RedisRateLimiter(hanging, prefix="unused"), timeout_seconds=0.2)
    try:
        with pytest.raises(RateLimiterUnavailable, match=r"did not answer within 0\.2 s"):
            await leases.count([(GLOBAL, "198.51.100.26", RateLimit(limit=10, window_seconds=60))])
    finally:
        await hanging.aclose()
        server.close()


class SlowRedis:
    """A TCP proxy in front of the real Redis: commands reach it at once; while `slow`, the answer to a
    counting script (EVALSHA) is held `delay` seconds on its way back — a Redis (or a gateway's event loop)
    too busy to answer in time. Connecting stays quick, so every command given up on did reach Redis."""

    def __init__(self, redis_url: str, delay: float) -> None:
        self._target = urlsplit(redis_url)
        self.delay = delay
        self.slow = False
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        redis_reader, redis_writer = await asyncio.open_connection(self._target.hostname, self._target.port)
        counting = False

        async def commands() -> None:
            nonlocal counting
            while chunk := await client_reader.read(65536):
                counting = counting or b"EVALSHA" in chunk.upper()
                redis_writer.write(chunk)
                await redis_writer.drain()

        async def replies() -> None:
            nonlocal counting
            while chunk := await redis_reader.read(65536):
                if counting and self.slow:
                    await asyncio.sleep(self.delay)
                counting = False
                client_writer.write(chunk)
                await client_writer.drain()

        try:
            await asyncio.gather(commands(), replies())
        except ConnectionError:
            pass  # the client gave up on the connection
        finally:
            client_writer.close()
            redis_writer.close()


LEASED_UP_TO = RateLimit(limit=600, window_seconds=60)  # leases of 600 / 16 = 37 hits


@pytest.fixture
async def slow(redis_url: str, prefix: str) -> AsyncIterator[tuple[SlowRedis, CounterLeases]]:
    """Leases through a `SlowRedis`, slow once they have connected; they give up after 0.2 s."""
    proxy = SlowRedis(redis_url, delay=0.5)
    async with proxy as slow_url:
        client = Redis.from_url(slow_url)
        leases = CounterLeases(RedisRateLimiter(client, prefix=prefix), timeout_seconds=0.2)
        try:
            await leases.count([(GLOBAL, "198.51.100.29", LEASED_UP_TO)])  # connects, loads the script
            proxy.slow = True
            yield proxy, leases
        finally:
            await client.aclose()


async def test_requests_waiting_on_an_ask_that_timed_out_do_not_each_ask_again(
    slow: tuple[SlowRedis, CounterLeases], redis: Redis, prefix: str
) -> None:
    _, leases = slow
    answers = await asyncio.gather(
        *(leases.count([(GLOBAL, "198.51.100.27", LEASED_UP_TO)]) for _ in range(8)), return_exceptions=True
    )

    assert all(isinstance(answer, RateLimiterUnavailable) for answer in answers), answers
    assert {str(answer) for answer in answers} == {
        "rate limiter unavailable: Redis did not answer within 0.2 s"
    }, "the waiters were told what the asker learnt"
    key = f"{prefix}:global_api:{{198.51.100.27}}"

    async def block_arrived() -> bool:
        return await redis.get(key) is not None

    await wait_until(block_arrived, timeout=5, what="the given-up block to reach Redis")
    assert await redis.get(key) == b"37", "one block for the eight, not one each"


async def test_after_a_timed_out_ask_the_next_lease_is_of_one_hit(
    slow: tuple[SlowRedis, CounterLeases], redis: Redis, prefix: str
) -> None:
    proxy, leases = slow
    key = f"{prefix}:global_api:{{198.51.100.28}}"
    for _ in range(3):  # one request after another, each given up on
        with pytest.raises(RateLimiterUnavailable):
            await leases.count([(GLOBAL, "198.51.100.28", LEASED_UP_TO)])

    async def all_arrived() -> bool:
        return await redis.get(key) == b"39"

    await wait_until(all_arrived, timeout=5, what="a block and two single hits in Redis")
    proxy.slow = False
    recovered = await leases.count([(GLOBAL, "198.51.100.28", LEASED_UP_TO)])
    after = await leases.count([(GLOBAL, "198.51.100.28", LEASED_UP_TO)])

    assert recovered.counts[0][0] == 40, "the first answer after the timeouts is a lease of one hit"
    assert after.counts[0][0] == 41
    # The given-up block may still be arriving in this window: no blocks till it is over.
    assert await redis.get(key) == b"41"


async def test_a_redis_slow_on_and_off_costs_a_subject_one_block_a_window_not_one_each_time(
    slow: tuple[SlowRedis, CounterLeases], redis: Redis, prefix: str
) -> None:
    proxy, leases = slow
    key = f"{prefix}:global_api:{{198.51.100.30}}"
    window = RateLimit(limit=600, window_seconds=2)
    asked = 0
    given_up_at = 0.0
    for _ in range(4):  # slow, then answered a few times, again and again
        proxy.slow = True
        with pytest.raises(RateLimiterUnavailable):
            await leases.count([(GLOBAL, "198.51.100.30", window)])
        given_up_at = time.monotonic()
        proxy.slow = False
        for _ in range(3):
            await leases.count([(GLOBAL, "198.51.100.30", window)])
        asked += 4

    async def arrived() -> bool:
        return int(await redis.get(key) or 0) >= asked

    await wait_until(arrived, timeout=5, what="every given-up hit to reach Redis")
    # One block (600 / 16 = 37) given up on, then one hit a request: 37 + 15 — not a block each time.
    assert await redis.get(key) == str(37 + asked - 1).encode()

    async def window_over() -> bool:
        # Redis's window, and the one the last given-up ask may have added to (it started by then).
        return await redis.get(key) is None and time.monotonic() > given_up_at + window.window_seconds

    await wait_until(window_over, timeout=5, what="the 2 s windows to end")
    await leases.count([(GLOBAL, "198.51.100.30", window)])
    assert await redis.get(key) == b"37", "a new window: blocks again"


# --- settings store -------------------------------------------------------------------------------

ADMIN = Caller(token="an-admins-token")
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


async def test_missing_settings_are_the_defaults(redis: Redis, prefix: str, kept: KeptSettings) -> None:
    store = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")
    assert await store.get() == RateLimitSettings()


async def test_settings_written_by_one_replica_are_read_by_another(
    redis: Redis, prefix: str, kept: KeptSettings
) -> None:
    writer = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")
    reader = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")

    await writer.put(CUSTOM, ADMIN)

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
    redis: Redis, prefix: str, raw: bytes, caplog: pytest.LogCaptureFixture, kept: KeptSettings
) -> None:
    await redis.set(f"{prefix}:settings", raw)
    store = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")

    with caplog.at_level(logging.WARNING, logger="funmagic_gateway.adapters.rate_limiter"):
        settings = await store.get()

    assert settings == RateLimitSettings()
    assert any("invalid" in record.getMessage() for record in caplog.records)


async def test_the_cache_holds_for_cache_seconds_then_refreshes(
    redis: Redis, prefix: str, kept: KeptSettings
) -> None:
    clock = FakeClock()
    replica = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings", cache_seconds=1.0, clock=clock)
    admin = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")
    assert await replica.get() == RateLimitSettings()

    await admin.put(CUSTOM, ADMIN)
    clock.now += 0.5
    assert await replica.get() == RateLimitSettings(), "served from the cache within cache_seconds"

    clock.now += 0.6
    assert await replica.get() == CUSTOM, "re-read once cache_seconds have passed"


async def test_put_refreshes_the_local_cache_at_once(redis: Redis, prefix: str, kept: KeptSettings) -> None:
    clock = FakeClock()
    store = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings", clock=clock)
    assert await store.get() == RateLimitSettings()

    await store.put(CUSTOM, ADMIN)

    assert await store.get() == CUSTOM


async def test_a_change_reaches_other_replicas_within_about_a_second(
    redis: Redis, prefix: str, wait_for: WaitFor, kept: KeptSettings
) -> None:
    replica = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")
    assert await replica.get() == RateLimitSettings()
    await RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings").put(CUSTOM, ADMIN)

    async def applied() -> bool:
        return await replica.get() == CUSTOM

    started = asyncio.get_running_loop().time()
    await wait_for(applied, timeout=3.0, what="the other replica to see the new settings")
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_an_unreachable_settings_store_is_reported_as_unavailable(
    unreachable_redis: Redis, kept: KeptSettings
) -> None:
    store = RateLimitSettingsStore(unreachable_redis, kept)
    with pytest.raises(RateLimiterUnavailable):
        await store.get()
    with pytest.raises(RateLimiterUnavailable):
        await store.put(RateLimitSettings(), ADMIN)


# --- the settings survive Redis: identity keeps them -------------------------------------------------


async def test_a_change_is_kept_by_identity_first_with_who_made_it(
    redis: Redis, prefix: str, kept: KeptSettings
) -> None:
    store = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")

    await store.put(CUSTOM, ADMIN)

    assert kept.settings == CUSTOM
    assert kept.saved_by == [ADMIN]
    assert RateLimitSettings.model_validate_json(await redis.get(f"{prefix}:settings")) == CUSTOM
    assert 0 < await redis.ttl(f"{prefix}:settings") <= 300, "Redis holds a cache, not the settings"


async def test_a_redis_that_lost_the_settings_reads_them_back_from_identity(
    redis: Redis, prefix: str, kept: KeptSettings
) -> None:
    await RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings").put(CUSTOM, ADMIN)
    await redis.delete(f"{prefix}:settings")  # what a restart without persistence leaves

    fresh_replica = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")

    assert await fresh_replica.get() == CUSTOM, "not the defaults"
    cached = await redis.get(f"{prefix}:settings")
    assert cached is not None, "the cache is filled again"
    assert RateLimitSettings.model_validate_json(cached) == CUSTOM


async def test_settings_identity_never_kept_are_the_defaults_and_cached_as_such(
    redis: Redis, prefix: str, kept: KeptSettings
) -> None:
    store = RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings")

    assert await store.get() == RateLimitSettings()
    assert kept.loads == 1
    assert await redis.get(f"{prefix}:settings") is not None


class SlowKeptSettings(KeptSettings):
    """Identity answering a read only when told to: a change may land while the read is on its way."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.answer = asyncio.Event()

    async def load(self) -> RateLimitSettings | None:
        before = self.settings
        self.reading.set()
        await self.answer.wait()
        return before


async def test_a_read_from_identity_overtaken_by_a_change_never_overwrites_the_change(
    redis: Redis, prefix: str
) -> None:
    slow = SlowKeptSettings()
    reader = RateLimitSettingsStore(redis, slow, key=f"{prefix}:settings")
    admin = RateLimitSettingsStore(redis, slow, key=f"{prefix}:settings")

    read = asyncio.create_task(reader.get())
    await asyncio.wait_for(slow.reading.wait(), 5)
    await admin.put(CUSTOM, ADMIN)  # lands while the read is on its way
    slow.answer.set()

    assert await read == RateLimitSettings(), "the read answers what identity said then"
    stored = await redis.get(f"{prefix}:settings")
    assert RateLimitSettings.model_validate_json(stored) == CUSTOM, "the change stays in the cache"
    assert await RateLimitSettingsStore(redis, slow, key=f"{prefix}:settings").get() == CUSTOM


class UnreachableKeptSettings(KeptSettings):
    async def load(self) -> RateLimitSettings | None:
        raise HttpProblem(503, "Service Unavailable", "identity is not reachable; retry")

    async def save(self, settings: RateLimitSettings, caller: Caller) -> None:
        raise HttpProblem(503, "Service Unavailable", "identity is not reachable; retry")


async def test_while_identity_is_down_a_cache_miss_uses_the_defaults_without_caching_them(
    redis: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = RateLimitSettingsStore(redis, UnreachableKeptSettings(), key=f"{prefix}:settings")

    with caplog.at_level(logging.WARNING, logger="funmagic_gateway.adapters.rate_limiter"):
        assert await store.get() == RateLimitSettings()

    assert await redis.get(f"{prefix}:settings") is None, "the next read asks identity again"
    assert any("cannot be read from their store" in r.getMessage() for r in caplog.records)


async def test_a_change_identity_cannot_keep_changes_nothing(redis: Redis, prefix: str) -> None:
    await redis.set(f"{prefix}:settings", CUSTOM.model_dump_json())
    store = RateLimitSettingsStore(redis, UnreachableKeptSettings(), key=f"{prefix}:settings")

    with pytest.raises(HttpProblem) as refused:
        await store.put(RateLimitSettings(), ADMIN)

    assert refused.value.status == 503
    assert RateLimitSettings.model_validate_json(await redis.get(f"{prefix}:settings")) == CUSTOM
    assert await store.get() == CUSTOM


async def test_an_invalid_cached_value_is_replaced_by_what_identity_keeps(
    redis: Redis, prefix: str, kept: KeptSettings
) -> None:
    kept.settings = CUSTOM
    await redis.set(f"{prefix}:settings", b"{not json")

    assert await RateLimitSettingsStore(redis, kept, key=f"{prefix}:settings").get() == CUSTOM
    assert RateLimitSettings.model_validate_json(await redis.get(f"{prefix}:settings")) == CUSTOM


# --- what users bought, for their tier ---------------------------------------------------------------


class FakePurchases:
    """Stands in for credits' purchases route: what each user bought, and who was asked about."""

    def __init__(self, bought: dict[str, int] | None = None, *, delay: float = 0.0) -> None:
        self.bought = dict(bought or {})
        self.asked: list[str] = []
        self.delay = delay
        self.failure: Exception | None = None

    async def lifetime_purchased(self, user_id: str) -> int:
        self.asked.append(user_id)
        answer = self.bought.get(user_id, 0)  # what credits knew when asked, answered after the delay
        await asyncio.sleep(self.delay)
        if self.failure is not None:
            raise self.failure
        return answer


@pytest.fixture
def purchases() -> FakePurchases:
    return FakePurchases({"buyer": 1000})


@pytest.fixture
def purchased(redis: Redis, prefix: str, purchases: FakePurchases) -> PurchasedCredits:
    return PurchasedCredits(redis, purchases, prefix=f"{prefix}:purchased", lookup_timeout_seconds=0.5)


async def test_a_cached_value_is_used_without_asking_credits(
    purchased: PurchasedCredits, purchases: FakePurchases
) -> None:
    assert purchased.key("buyer").endswith(":purchased:{buyer}"), "hash-tagged like the user's counters"

    assert await purchased.lifetime_purchased("buyer", b"25") == 25
    assert purchases.asked == []


async def test_on_a_miss_credits_is_asked_once_and_the_answer_cached_for_five_minutes(
    redis: Redis, purchased: PurchasedCredits, purchases: FakePurchases
) -> None:
    purchases.delay = 0.05

    answers = await asyncio.gather(*(purchased.lifetime_purchased("buyer", None) for _ in range(10)))

    assert answers == [1000] * 10
    assert purchases.asked == ["buyer"], "concurrent misses share one lookup"
    assert await redis.get(purchased.key("buyer")) == b"1000"
    assert 290 <= await redis.ttl(purchased.key("buyer")) <= 300
    assert await purchased.lifetime_purchased("newcomer", b"not a number") == 0


@pytest.mark.parametrize(
    "failure", [HttpProblem(503, "Service Unavailable", "credits is not reachable"), TimeoutError()]
)
async def test_while_credits_cannot_say_nothing_bought_is_assumed_and_nothing_cached(
    redis: Redis, purchased: PurchasedCredits, purchases: FakePurchases, failure: Exception
) -> None:
    purchases.failure = failure

    assert await purchased.lifetime_purchased("buyer", None) is None
    assert await redis.get(purchased.key("buyer")) is None


async def test_after_credits_failed_misses_do_not_ask_it_again_for_a_while(
    redis: Redis, prefix: str, purchases: FakePurchases
) -> None:
    clock = FakeClock()
    purchased = PurchasedCredits(
        redis, purchases, prefix=f"{prefix}:purchased", pause_after_failure_seconds=5.0, clock=clock
    )
    purchases.failure = HttpProblem(503, "Service Unavailable", "credits is not reachable")
    assert await purchased.lifetime_purchased("buyer", None) is None
    purchases.failure = None

    clock.now += 4.9
    paused = await purchased.lifetime_purchased("buyer", None)
    clock.now += 0.2
    resumed = await purchased.lifetime_purchased("buyer", None)

    assert paused is None
    assert resumed == 1000
    assert purchases.asked == ["buyer", "buyer"], "asked when it failed, then only after the pause"


async def test_a_slow_credits_is_given_up_on(purchased: PurchasedCredits, purchases: FakePurchases) -> None:
    purchases.delay = 2.0

    assert await purchased.lifetime_purchased("buyer", None) is None


async def test_a_purchase_refreshes_the_cached_value_at_once(
    redis: Redis, purchased: PurchasedCredits, purchases: FakePurchases
) -> None:
    await redis.set(purchased.key("buyer"), 0, ex=300)
    purchases.bought["buyer"] = 1500

    await purchased.refresh("buyer")

    assert await redis.get(purchased.key("buyer")) == b"1500"
    assert purchases.asked == ["buyer"]


async def test_a_lookup_from_before_a_purchase_never_replaces_the_refreshed_value(
    redis: Redis, purchased: PurchasedCredits, purchases: FakePurchases
) -> None:
    purchases.bought["late"] = 0
    purchases.delay = 0.2
    stale = asyncio.create_task(purchased.lifetime_purchased("late", None))
    await asyncio.sleep(0.05)  # credits was asked (and will answer 0)
    purchases.bought["late"] = 100
    purchases.delay = 0.0

    await purchased.refresh("late")  # the purchase's event, handled while the old lookup is on its way

    assert await stale == 0, "the old lookup answers what credits said then"
    assert await redis.get(purchased.key("late")) == b"100", "and does not overwrite the refreshed value"


async def test_a_refresh_while_credits_is_down_still_drops_the_old_value(
    redis: Redis, purchased: PurchasedCredits, purchases: FakePurchases
) -> None:
    await redis.set(purchased.key("buyer"), 0, ex=300)
    purchases.failure = HttpProblem(503, "Service Unavailable", "credits is not reachable")

    await purchased.refresh("buyer")

    assert await redis.get(purchased.key("buyer")) is None, "the next request asks credits again"


async def test_a_refresh_without_redis_is_reported_so_the_event_is_retried(
    unreachable_redis: Redis, purchases: FakePurchases
) -> None:
    with pytest.raises(RateLimiterUnavailable):
        await PurchasedCredits(unreachable_redis, purchases).refresh("buyer")
