"""The kit's Redis client across a Redis restart: a Redis server of the test's own (SIGKILLed and started
again on the same port), so the shared stack's Redis is never touched."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from funmagic_kit.redis import create_redis, safe_to_retry
from funmagic_kit.testing import OwnRedisServer


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedisServer]:
    server = OwnRedisServer(tmp_path)
    yield server
    server.stop()


async def test_reads_and_idempotent_writes_survive_a_redis_restart(own_redis: OwnRedisServer) -> None:
    await own_redis.start()
    client = await create_redis(own_redis.url)
    try:
        # Several pooled connections, all of which die with the server.
        await asyncio.gather(*(client.set(f"k{i}", i) for i in range(8)))
        own_redis.kill()
        await own_redis.start()

        # The first commands after the restart meet dead connections: each is sent once more, afresh.
        assert await asyncio.gather(*(client.get(f"k{i}") for i in range(8))) == [None] * 8
        assert await asyncio.gather(*(client.set(f"k{i}", "again") for i in range(8))) == [True] * 8
        assert await client.get("k3") == b"again"
        # The unsafe ones find fresh connections too: the dead idle ones were closed on the first error.
        assert await client.incr("counter") == 1
    finally:
        await client.aclose()


def test_only_reads_and_idempotent_writes_are_retried() -> None:
    assert safe_to_retry(("GET", "k"))
    assert safe_to_retry(("XREAD", "COUNT", 10, "STREAMS", "s", "0"))
    assert safe_to_retry(("SET", "k", "v", "EX", 10))
    assert safe_to_retry(("DEL", "k"))
    assert not safe_to_retry(("SET", "k", "v", "NX"))  # a second run would see the first one's write
    assert not safe_to_retry(("SET", "k", "v", b"GET"))
    assert not safe_to_retry(("INCR", "k"))
    assert not safe_to_retry(("EVALSHA", "abc", 1, "k"))  # a Lua script may take a rate-limit slot
    assert not safe_to_retry(("XADD", "s", "*", "f", "v"))
