"""Fixtures over the real local Redis: a client per test, unique key prefixes, and stand-ins for the services
behind the gateway's Redis caches (identity keeping the rate limits)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from funmagic_kit.testing import wait_until

# The tests' shared fakes live beside this file, in a module whose name no other tests use (no
# __init__.py here: with one, collecting the whole repository would clash with the other `integration`s).
sys.path.insert(0, str(Path(__file__).parent))

from gateway_test_support import KeptSettings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hooks see every collected item, not only this folder's: mark just ours.
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is unset: start the local stack (`make stack-up`) and source .stack/env")
    return url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=False)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        pytest.fail(f"Redis at {redis_url} does not answer: {error}")
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    value = f"test-rl-{uuid.uuid4().hex[:12]}"
    yield value
    keys = [key async for key in redis.scan_iter(match=f"{value}*")]
    if keys:
        await redis.delete(*keys)


WaitFor = Callable[..., Awaitable[None]]


async def _wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Poll a condition until it holds; fail naming `what` after `timeout` seconds."""
    await wait_until(condition, timeout=timeout, what=what, interval=0.05)


@pytest.fixture
def wait_for() -> WaitFor:
    """`await wait_for(condition, timeout=..., what=...)`: a deadline loop instead of a fixed sleep."""
    return _wait_for


@pytest.fixture
def kept() -> KeptSettings:
    """Identity's settings store, one per test (every store of the test shares it, as replicas do)."""
    return KeptSettings()
