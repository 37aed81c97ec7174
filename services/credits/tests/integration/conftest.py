"""Integration fixtures of credits: a fresh, migrated database per test on the local stack's Postgres."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_kit.db import create_pool
from funmagic_kit.migrations import migrate_database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    postgres_url = os.environ.get("POSTGRES_URL")
    if not postgres_url:
        pytest.fail("POSTGRES_URL is unset: run the tests with the local stack (make test)")
    name = f"credits_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_url}/{name}"
    try:
        await migrate_database(url, ("credits", "funmagic_credits.migrations"))
        yield url
    finally:
        with psycopg.connect(postgres_url + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await create_pool(database_url, min_size=2, max_size=20)
    try:
        yield pool
    finally:
        await pool.close()
