"""Integration fixtures of providers, on the local stack (`set -a; source .stack/env; set +a`).

Redis: the stack's server, database 9, which no other suite uses (e2e uses 3, the rest 0), so a stray
key here never meets another suite's. Tests still name their keys uniquely and delete them afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from redis.asyncio import Redis

from funmagic_kit.testing import wait_until

sys.path.insert(0, str(Path(__file__).parent))

from providers_test_support import FakeStorage, providers_settings

from funmagic_providers.adapters.apis.recorded_http import provider_session
from funmagic_providers.bootstrap import Providers, build

PROVIDERS_REDIS_DB = 9


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hooks see every collected item, not only this folder's: mark just ours.
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is unset: start the local stack (`make stack-up`) and source .stack/env")
    # The database is the URL's path; from_url prefers it to a db= argument, so it is replaced here.
    return urlunsplit(urlsplit(url)._replace(path=f"/{PROVIDERS_REDIS_DB}"))


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


WaitFor = Callable[..., Awaitable[None]]


async def _wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, what: str = ""
) -> None:
    """Poll a condition until it holds; fail naming `what` after `timeout` seconds."""
    await wait_until(condition, timeout=timeout, what=what, interval=0.01)


@pytest.fixture
def wait_for() -> WaitFor:
    """`await wait_for(condition, timeout=..., what=...)`: a deadline loop instead of a fixed sleep."""
    return _wait_for


# --- Postgres: a fresh, migrated providers database per test ----------------------------------------


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    from funmagic_kit.testing import scratch_database

    postgres_url = os.environ.get("POSTGRES_URL")
    if not postgres_url:
        pytest.fail("POSTGRES_URL is unset: start the local stack (`make stack-up`) and source .stack/env")
    async with scratch_database(
        postgres_url, "providers_test", ("providers", "funmagic_providers.migrations")
    ) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[object]:
    from funmagic_kit.db import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=5, name="providers-tests")
    try:
        yield pool
    finally:
        await pool.close()


# --- the service, built as production builds it (with a stand-in for storage) -------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # The session the service builds: its middleware records the adapters' calls (provider diagnostics).
    async with provider_session(60.0) as session:
        yield session


@pytest.fixture
def storage() -> FakeStorage:
    return FakeStorage()


BuildProviders = Callable[..., Providers]


@pytest.fixture
def build_providers(pool, redis, http, storage) -> BuildProviders:
    """`build_providers(clock=…, owner=…, **settings_env)`: the service's application objects."""

    def build_them(**options: Any) -> Providers:
        env = {key: str(options.pop(key)) for key in list(options) if key.isupper()}
        return build(providers_settings(**env), pool=pool, redis=redis, http=http, storage=storage, **options)

    return build_them
