"""Integration fixtures of tasks, on the local stack (`set -a; source .stack/env; set +a`).

Postgres: a fresh database per test, migrated with the kit's tables (outbox, inbox) and every migration of
`funmagic_tasks.migrations`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_kit.db import create_pool
from funmagic_kit.testing import scratch_database

TASKS_MIGRATIONS = ("tasks", "funmagic_tasks.migrations")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hooks see every collected item, not only this folder's: mark just ours.
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("POSTGRES_URL")
    if not url:
        pytest.fail("POSTGRES_URL is unset: start the local stack (`make stack-up`) and source .stack/env")
    return url


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[AsyncConnectionPool]:
    async with scratch_database(postgres_url, "tasks_test", TASKS_MIGRATIONS) as url:
        pool = await create_pool(url, min_size=1, max_size=5, name="tasks-tests")
        try:
            yield pool
        finally:
            await pool.close()
