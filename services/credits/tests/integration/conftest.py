"""Integration fixtures of credits: a fresh, migrated database per test on the local stack's Postgres."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.topics import dead_letter_topic
from funmagic_kit.db import create_pool
from funmagic_kit.kafka import create_producer
from funmagic_kit.testing import ScratchTopics, scratch_database, serve_routes

# The tests' shared helpers live beside this file. No __init__.py here on purpose: with one, this folder
# would be the package `integration`, as the kit's tests are, and collecting the whole repository would
# fail; the helpers' module has a name no other tests use.
sys.path.insert(0, str(Path(__file__).parent))

from credits_test_support import PrivateTopics


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    postgres_url = os.environ.get("POSTGRES_URL")
    if not postgres_url:
        pytest.fail("POSTGRES_URL is unset: run the tests with the local stack (make test)")
    async with scratch_database(
        postgres_url, "credits_test", ("credits", "funmagic_credits.migrations")
    ) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await create_pool(database_url, min_size=2, max_size=20)
    try:
        yield pool
    finally:
        await pool.close()


# --- Kafka (private topics per test, as the kit's own integration tests do) ------------------------------


@pytest.fixture
def kafka() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is unset: run the tests with the local stack (make test)")
    return servers


@pytest.fixture
async def producer(kafka: str) -> AsyncIterator[AIOKafkaProducer]:
    producer = await create_producer(kafka, client_id="credits-tests")
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture
async def private_topics(kafka: str) -> AsyncIterator[PrivateTopics]:
    """A fresh identity-like and tasks-like topic (6 partitions each) with their dead-letter topics."""
    suffix = uuid.uuid4().hex[:12]
    topics = PrivateTopics(identity=f"test.credits.identity.{suffix}", tasks=f"test.credits.tasks.{suffix}")
    names = [topics.identity, topics.tasks]
    scratch = ScratchTopics(kafka)
    await scratch.create([*names, *(dead_letter_topic(n) for n in names)], partitions=6)
    yield topics
    await scratch.delete_all()


# --- HTTP (the service's routes as the runtime serves them) -----------------------------------------------


Serve = Callable[[Sequence[web.RouteDef]], AbstractAsyncContextManager[aiohttp.ClientSession]]


@pytest.fixture
def serve() -> Serve:
    """`async with serve(routes) as http:` the routes as the runtime serves them (`serve_routes`)."""
    return lambda routes: serve_routes(routes, "credits")
