"""Integration fixtures of storage: the service as bootstrap builds it (`build(...)`), on the local stack.

Real S3 (the stack's SeaweedFS, two aiobotocore clients as in the service: one that connects and one that
only signs), a fresh migrated database per test, the service's own unit of work writing events to the
kit's outbox. Run with the stack's environment (`set -a; source .stack/env; set +a`).

Objects live in the stack's shared buckets; every test uses fresh user ids and the objects under them are
removed afterwards.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_kit.db import create_pool
from funmagic_kit.s3 import open_s3_client
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer, scratch_database, serve_routes
from funmagic_storage.application.assets import AssetService
from funmagic_storage.bootstrap import build
from funmagic_storage.config import StorageSettings

# The tests' shared helpers live beside this file. No __init__.py here on purpose (see the credits tests'
# conftest); the helpers' module has a name no other tests use.
sys.path.insert(0, str(Path(__file__).parent))

from storage_test_support import Storage, TestClock, storage_settings

STORAGE_MIGRATIONS = ("storage", "funmagic_storage.migrations")


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


@pytest.fixture(scope="session")
def s3_settings() -> StorageSettings:
    if not os.environ.get("S3_ENDPOINT"):
        pytest.fail("S3_ENDPOINT is unset: source the local stack's env (.stack/env) or run `make test`")
    return storage_settings()


@pytest.fixture
async def pool(postgres_url: str) -> AsyncIterator[AsyncConnectionPool]:
    async with scratch_database(postgres_url, "storage_test", STORAGE_MIGRATIONS) as url:
        pool = await create_pool(url, min_size=1, max_size=5, name="storage-tests")
        try:
            yield pool
        finally:
            await pool.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client, no SDK and no credentials: what a browser does with the URLs."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def storage(s3_settings: StorageSettings, pool: AsyncConnectionPool) -> AsyncIterator[Storage]:
    async with AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings, stack)
        s3_http = await stack.enter_async_context(aiohttp.ClientSession())
        clock = TestClock()

        def build_assets(**settings: Any) -> AssetService:
            # model_copy skips validation: a test may ask for what an operator may not (no pending time).
            changed = s3_settings.model_copy(update=settings)
            return build(changed, pool=pool, s3=client, http=s3_http, clock=clock).assets

        built = build(s3_settings, pool=pool, s3=client, http=s3_http, clock=clock)
        await built.objects.ensure_buckets(
            s3_settings.s3_bucket_public, s3_settings.s3_bucket_private, s3_settings.s3_bucket_admin
        )
        storage = Storage(
            assets=built.assets,
            parts=built.parts,
            policy=built.policy,
            objects=built.objects,
            s3=client,
            s3_http=s3_http,
            pool=pool,
            clock=clock,
            settings=s3_settings,
            build=build_assets,
        )
        try:
            yield storage
        finally:
            await _remove_objects_of(client, s3_settings, storage.users)


async def _remove_objects_of(client: Any, settings: StorageSettings, users: list[str]) -> None:
    prefixes = [(settings.s3_bucket_public, f"shared/{u}/") for u in users]
    prefixes += [(b, f"{u}/") for u in users for b in (settings.s3_bucket_private, settings.s3_bucket_admin)]
    for bucket, prefix in prefixes:
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                await client.delete_object(Bucket=bucket, Key=item["Key"])


@pytest.fixture
async def api(
    storage: Storage, pool: AsyncConnectionPool, s3_settings: StorageSettings
) -> AsyncIterator[aiohttp.ClientSession]:
    """The service's routes (from `build`) as the runtime serves them (`serve_routes`): `X-Test-User` is the
    verified user, `X-Test-Role` their role, `X-Test-Internal: yes` the internal service credential."""
    built = build(s3_settings, pool=pool, s3=storage.s3, http=storage.s3_http, clock=storage.clock)
    async with serve_routes(built.parts.routes, "storage") as session:
        yield session


@pytest.fixture
async def consumer(storage: Storage) -> AsyncIterator[InMemoryConsumer]:
    """Storage's subscriptions as `build` wires them, each event in the service's unit of work."""
    parts = storage.parts
    async with in_memory_consumer(
        "storage", parts.subscriptions, unit_of_work=parts.unit_of_work
    ) as consumer:
        yield consumer
