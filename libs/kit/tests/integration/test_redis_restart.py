"""The kit's Redis client across a Redis restart: a Redis server of the test's own (SIGKILLed and started
again on the same port), so the shared stack's Redis is never touched."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from funmagic_kit.redis import create_redis, safe_to_retry
from funmagic_kit.testing import wait_until


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220 (starts at once; the wait below is async)
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

        async def answers() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        await wait_until(answers, timeout=10, what="redis-server to listen", interval=0.02)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(5)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


async def test_reads_and_idempotent_writes_survive_a_redis_restart(own_redis: OwnRedis) -> None:
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
