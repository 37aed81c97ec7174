"""Integration fixtures of credits: a fresh, migrated database per test on the local stack's Postgres."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.topics import dead_letter_topic
from funmagic_kit.db import create_pool
from funmagic_kit.http import problem_middleware
from funmagic_kit.kafka import create_producer
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import INTERNAL_CALLER_KEY, PRINCIPAL_KEY, Principal, Role
from funmagic_kit.testing import ScratchTopics, scratch_database

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


@web.middleware
async def _signed_in_as(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stands in for the kit's caller check: `X-Test-User` is the verified user, `X-Test-Role` their role,
    `X-Test-Internal: yes` the internal credential (another service calling)."""
    request[INTERNAL_CALLER_KEY] = request.headers.get("X-Test-Internal") == "yes"
    user_id = request.headers.get("X-Test-User")
    if user_id:
        request[PRINCIPAL_KEY] = Principal(
            user_id=user_id,
            session_id="session",
            role=cast(Role, request.headers.get("X-Test-Role", "user")),
            email=f"{user_id}@example.test",
            name="Test User",
            email_verified=True,
            issued_at=0,
            expires_at=0,
            token="token",
        )
    return await handler(request)


Serve = Callable[[Sequence[web.RouteDef]], AbstractAsyncContextManager[aiohttp.ClientSession]]


@pytest.fixture
def serve() -> Serve:
    """`async with serve(routes) as http:` the routes behind the kit's problem+json middleware, as the
    runtime serves them, with a stand-in for the caller check."""

    @asynccontextmanager
    async def serving(routes: Sequence[web.RouteDef]) -> AsyncIterator[aiohttp.ClientSession]:
        app = web.Application(middlewares=[problem_middleware(Metrics("credits-tests")), _signed_in_as])
        app.add_routes(routes)
        async with TestServer(app) as server, aiohttp.ClientSession(str(server.make_url("/"))) as session:
            yield session

    return serving
