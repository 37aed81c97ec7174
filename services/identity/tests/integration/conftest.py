"""Fixtures over the real local stack: a fresh database with the kit's and identity's tables per test.

Run with the stack's environment (`set -a; source .stack/env; set +a`): POSTGRES_URL names a role that may
create databases.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_identity.adapters.postgres import PostgresUnitOfWork, unit_of_work_factory
from funmagic_kit.crypto import SecretBox, generate_secret_key
from funmagic_kit.db import create_pool
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
def secret_box() -> SecretBox:
    return SecretBox.from_base64(generate_secret_key())


@pytest.fixture
def uow(pool: AsyncConnectionPool, secret_box: SecretBox) -> Callable[[], PostgresUnitOfWork]:
    return unit_of_work_factory(pool, secret_box)
