"""Fixtures over the real local stack: a fresh database with the kit's and identity's tables per test, the
stack's Redis, and identity's settings pointing at both.

Run with the stack's environment (`set -a; source .stack/env; set +a`): POSTGRES_URL names a role that may
create databases.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_identity.adapters.postgres import IdentityUnitOfWork
from funmagic_identity.config import IdentitySettings
from funmagic_kit.crypto import SecretBox, generate_secret_key
from funmagic_kit.db import create_pool
from funmagic_kit.redis import create_redis
from funmagic_kit.settings import load_settings
from funmagic_kit.testing import scratch_database

IDENTITY_MIGRATIONS = ("identity", "funmagic_identity.migrations")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hooks see every collected item, not only this folder's: mark just ours.
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("POSTGRES_URL")
    if not url:
        pytest.fail("POSTGRES_URL is unset: source the local stack's env (.stack/env) or run `make test`")
    return url


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A new database with the kit's and identity's tables; dropped afterwards."""
    async with scratch_database(postgres_url, "identity_test", IDENTITY_MIGRATIONS) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await create_pool(database_url, min_size=1, max_size=5, name="identity-tests")
    yield pool
    await pool.close()


@pytest.fixture
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture
def secret_box(secret_key: str) -> SecretBox:
    return SecretBox.from_base64(secret_key)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is unset: source the local stack's env (.stack/env) or run `make test`")
    return url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    # Shared with whatever else uses the stack: tests touch only keys of their own users and emails.
    client = await create_redis(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def settings(database_url: str, redis_url: str, secret_key: str) -> IdentitySettings:
    """Identity's settings on the test's database and the stack's Redis; Kafka and the JWKS URL are never
    dialled by what the tests run. Passwords hash cheaply, the sign-in guard trips after two failures."""
    return load_settings(
        IdentitySettings,
        env={
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": secret_key,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "INTERNAL_API_TOKEN": "identity-tests-internal-token-0123456789",
            "AUTH_JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
            "PUBLIC_APP_URL": "https://app.funmagic.test",
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8192",
            "SIGN_IN_MAX_FAILURES": "2",
            "SIGN_IN_FAILURE_WINDOW_SECONDS": "60",
        },
    )


@pytest.fixture
def uow(pool: AsyncConnectionPool, secret_box: SecretBox) -> Callable[[], IdentityUnitOfWork]:
    return lambda: IdentityUnitOfWork(pool, secret_box)
