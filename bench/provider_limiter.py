"""The per-provider rate limiter: acquire + release pairs against a bare EVALSHA, in the same run.

`CONCURRENCY` asyncio tasks share one Redis client (as a worker process does) against the stack's Redis.

1. Limiter: each op is `ProviderRateLimiter.acquire` then `release` of a fresh lease, on a provider whose
   config sets all three limits, high enough never to deny (a denial fails the benchmark). The config is
   known in process after the first call; an acquire is one EVALSHA of the acquire script (the releases
   noted before it, then sweep, checks, ZADD, INCR ×2); a release is written behind and carried by the next
   acquire of the provider, or sent by a flush `release_delay_seconds` later when none comes. Under this
   load a pair costs about one round trip.
2. Baseline: EVALSHA of `return 1`, one round trip, same client and concurrency: the floor any Redis
   limiter pays per call.
3. For scale: three round trips with no work in them (GET of a missing key, EVALSHA of `return 1`, ZREM of
   a missing member), what the limiter cost before its config was kept in process and its releases
   written behind.

Each is warmed up for `WARMUP_SECONDS`, then measured for `MEASURE_SECONDS`. The machine may be shared:
compare ratios rather than absolute rates. The benchmark's keys (a provider named `bench-<hex>`) are
deleted at the end, after the limiter's last releases are flushed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from funmagic_kit.redis import create_redis
from funmagic_providers.adapters.rate_limiter import ProviderRateLimiter

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WARMUP_SECONDS = 1.0
MEASURE_SECONDS = float(os.environ.get("BENCH_MEASURE_SECONDS", "5"))
SCOPE = "web"
# Limits set but out of reach: every check runs, none denies (~10k pairs/s for a minute stays far below).
RATE_LIMIT = {"maxConcurrency": 10_000, "maxPerMinute": 100_000_000, "maxPerDay": 1_000_000_000}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(op: Callable[[int], Awaitable[None]]) -> dict[str, float]:
    """Run `op(n)` from CONCURRENCY tasks: a warm-up, then a timed window; latency per op."""
    counter = 0
    latencies_ms: list[float] = []
    measure_from = time.perf_counter() + WARMUP_SECONDS
    stop_at = measure_from + MEASURE_SECONDS

    async def worker() -> None:
        nonlocal counter
        while (started := time.perf_counter()) < stop_at:
            counter += 1
            await op(counter)
            if started >= measure_from:
                latencies_ms.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - measure_from
    return {
        "ops_per_s": round(len(latencies_ms) / seconds, 1),
        "p50_ms": round(statistics.median(latencies_ms), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3),
        "ops": len(latencies_ms),
        "seconds": round(seconds, 3),
    }


async def _measure_all(redis: Redis, provider: str) -> dict[str, dict[str, float]]:
    async def load_config(scope: str, name: str) -> dict[str, Any] | None:
        return {"rateLimit": RATE_LIMIT} if name == provider else None

    limiter = ProviderRateLimiter(redis, load_config)
    denials = 0

    async def acquire_release(n: int) -> None:
        nonlocal denials
        lease = f"lease-{n}"
        admission = await limiter.acquire(SCOPE, provider, lease)
        if not admission.admitted:
            denials += 1
            return
        await limiter.release(SCOPE, provider, lease)

    trivial = redis.register_script("return 1")
    missing = f"bench-missing:{{{provider}}}"

    async def bare_evalsha(n: int) -> None:
        await trivial(keys=[missing], args=[n])

    async def three_round_trips(n: int) -> None:
        await redis.get(missing)
        await trivial(keys=[missing], args=[n])
        await redis.zrem(missing, f"lease-{n}")

    results: dict[str, dict[str, float]] = {}
    print(f"  baseline: EVALSHA 'return 1', {CONCURRENCY} tasks …", flush=True)
    results["baseline_bare_evalsha"] = await measure(bare_evalsha)
    print(f"    {results['baseline_bare_evalsha']}", flush=True)

    print(f"  limiter: acquire + release, all three limits set, {CONCURRENCY} tasks …", flush=True)
    results["limiter_acquire_release"] = await measure(acquire_release)
    await limiter.flush_releases()
    print(f"    {results['limiter_acquire_release']}", flush=True)
    if denials:
        raise RuntimeError(f"the limiter denied {denials} acquisitions: raise RATE_LIMIT, the run is void")

    print(f"  for scale: GET + EVALSHA 'return 1' + ZREM, {CONCURRENCY} tasks …", flush=True)
    results["three_empty_round_trips"] = await measure(three_round_trips)
    print(f"    {results['three_empty_round_trips']}", flush=True)
    return results


async def run() -> dict[str, object]:
    url = os.environ.get("REDIS_URL")
    if not url:
        raise SystemExit(
            "provider_limiter needs the local stack's REDIS_URL: set -a; source .stack/env; set +a"
        )
    redis = await create_redis(url)
    provider = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        results = await _measure_all(redis, provider)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"*{{{provider}}}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()

    limiter = results["limiter_acquire_release"]
    bare = results["baseline_bare_evalsha"]
    empty = results["three_empty_round_trips"]
    ratio = {
        "throughput_vs_bare_evalsha": round(limiter["ops_per_s"] / bare["ops_per_s"], 4),
        "p50_vs_bare_evalsha": round(limiter["p50_ms"] / bare["p50_ms"], 2),
        "p99_vs_bare_evalsha": round(limiter["p99_ms"] / bare["p99_ms"], 2),
        "throughput_vs_three_empty_round_trips": round(limiter["ops_per_s"] / empty["ops_per_s"], 4),
    }
    print(f"  ratio        : {ratio}", flush=True)
    return {
        "limiter_acquire_release": limiter,
        "baseline_bare_evalsha": bare,
        "three_empty_round_trips": empty,
        "ratio_to_baseline": ratio,
        "settings": {
            "concurrency": CONCURRENCY,
            "warmup_s": WARMUP_SECONDS,
            "measure_s": MEASURE_SECONDS,
            "rate_limit": RATE_LIMIT,
            "round_trips_per_op": {"limiter": "1 (releases ride on later acquires)", "baseline": 1},
        },
    }
