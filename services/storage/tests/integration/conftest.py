"""Integration fixtures of storage: an AssetService built as bootstrap builds it, on the local stack.

Real S3 (the stack's SeaweedFS, two aiobotocore clients as in the service: one that connects and one that
only signs), a fresh migrated database per test and a publish function writing to the kit's outbox. Run
with the stack's environment (`set -a; source .stack/env; set +a`).

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

from funmagic_kit.db import UnitOfWork, create_pool
from funmagic_kit.s3 import open_presigning_client, open_s3_client
from funmagic_kit.settings import S3Settings, load_settings
from funmagic_kit.testing import scratch_database
from funmagic_storage.adapters.postgres import AssetRecords
from funmagic_storage.adapters.s3 import S3ObjectStore
from funmagic_storage.application.assets import AssetService, StoragePolicy

# The tests' shared helpers live beside this file. No __init__.py here on purpose (see the credits tests'
# conftest); the helpers' module has a name no other tests use.
sys.path.insert(0, str(Path(__file__).parent))

from storage_test_support import Storage, TestClock, publish

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
def s3_settings() -> S3Settings:
    if not os.environ.get("S3_ENDPOINT"):
        pytest.fail("S3_ENDPOINT is unset: source the local stack's env (.stack/env) or run `make test`")
    return load_settings(S3Settings)


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
async def storage(s3_settings: S3Settings, pool: AsyncConnectionPool) -> AsyncIterator[Storage]:
    async with AsyncExitStack() as stack:
        client = await open_s3_client(s3_settings, stack)
        presigner = await open_presigning_client(s3_settings, stack)
        objects = S3ObjectStore(client, presigner)
        await objects.ensure_buckets(
            s3_settings.s3_bucket_public, s3_settings.s3_bucket_private, s3_settings.s3_bucket_admin
        )
        clock = TestClock()
        base_policy = StoragePolicy(
            bucket_public=s3_settings.s3_bucket_public,
            bucket_private=s3_settings.s3_bucket_private,
            bucket_admin=s3_settings.s3_bucket_admin,
            cdn_url=s3_settings.cdn_url,
            module_max_bytes={"avatar": 5 * 1024 * 1024},
        )

        def build(**policy_overrides: Any) -> AssetService:
            policy = StoragePolicy(**{**base_policy.__dict__, **policy_overrides})
            return AssetService(
                uow=lambda: UnitOfWork(pool),
                records=AssetRecords,
                publish=publish,
                objects=objects,
                policy=policy,
                clock=clock,
            )

        storage = Storage(
            assets=build(),
            policy=base_policy,
            objects=objects,
            s3=client,
            presigner=presigner,
            pool=pool,
            clock=clock,
            settings=s3_settings,
            build=build,
        )
        try:
            yield storage
        finally:
            await _remove_objects_of(client, s3_settings, storage.users)


async def _remove_objects_of(client: Any, settings: S3Settings, users: list[str]) -> None:
    prefixes = [(settings.s3_bucket_public, f"shared/{u}/") for u in users]
    prefixes += [(b, f"{u}/") for u in users for b in (settings.s3_bucket_private, settings.s3_bucket_admin)]
    for bucket, prefix in prefixes:
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                await client.delete_object(Bucket=bucket, Key=item["Key"])
