"""Fixtures over the real local stack: a fresh Postgres database and fresh Kafka topics per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.ids import uuid7
from funmagic_contracts.topics import dead_letter_topic
from funmagic_kit.consumer import EventConsumer, Subscription
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.kafka import create_producer
from funmagic_kit.metrics import Metrics
from funmagic_kit.migrations import apply_migrations, load_migrations
from funmagic_kit.outbox import OutboxRelay
from funmagic_kit.testing import ScratchTopics, adhoc_event_class, drop_database, wait_until

pytestmark = pytest.mark.integration

TEST_TABLES = """
CREATE TABLE counters (name text PRIMARY KEY, value integer NOT NULL);
CREATE TABLE received (id bigserial PRIMARY KEY, key text NOT NULL, seq integer NOT NULL);
CREATE TABLE orders (id text PRIMARY KEY);
CREATE TABLE handled (
    id bigserial PRIMARY KEY, key text NOT NULL, seq integer NOT NULL, txid bigint NOT NULL
);
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hooks see every collected item, not only this folder's: mark just ours.
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class Stack:
    kafka: str
    postgres_url: str
    redis_url: str


@pytest.fixture(scope="session")
def stack() -> Stack:
    missing = [v for v in ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_URL", "REDIS_URL") if not os.environ.get(v)]
    if missing:
        pytest.fail(f"the local stack is not configured ({', '.join(missing)} unset): run `make test`")
    return Stack(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["POSTGRES_URL"], os.environ["REDIS_URL"])


@asynccontextmanager
async def fresh_database(stack: Stack) -> AsyncIterator[str]:
    """A new database with the kit's tables and the test tables; dropped afterwards."""
    name = f"kit_test_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(stack.postgres_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{stack.postgres_url.rstrip('/')}/{name}"
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await apply_migrations(conn, load_migrations("kit", "funmagic_kit.sql"))
        await conn.execute(TEST_TABLES)
    try:
        yield url
    finally:
        await drop_database(stack.postgres_url.rstrip("/"), name)


@pytest.fixture
async def database_url(stack: Stack) -> AsyncIterator[str]:
    async with fresh_database(stack) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await create_pool(database_url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def scratch_topics(stack: Stack) -> AsyncIterator[ScratchTopics]:
    """Topics of the test's own making, deleted after it."""
    topics = ScratchTopics(stack.kafka)
    yield topics
    await topics.delete_all()


@pytest.fixture
async def topic(scratch_topics: ScratchTopics) -> str:
    name = f"test.{uuid.uuid4().hex[:12]}"
    await scratch_topics.create([name, dead_letter_topic(name)], partitions=6)
    return name


@pytest.fixture
async def redis(stack: Stack) -> AsyncIterator[Redis]:
    client = Redis.from_url(stack.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def producer(stack: Stack):
    producer = await create_producer(stack.kafka, client_id="kit-tests")
    yield producer
    await producer.stop()


def typed_subscription(topic: str, handlers: dict) -> Subscription:
    """A typed subscription to ad-hoc test events: `{"CounterIncremented": handler, …}`."""
    built: Subscription = Subscription(topic)
    for event_type, handler in handlers.items():
        built.on(adhoc_event_class(event_type, topic), handler)
    return built


def make_envelope(event_type: str, subject: str, data: dict | None = None) -> Envelope:
    return Envelope(
        id=uuid7(),
        type=event_type,
        version=1,
        source="kit-tests",
        subject=subject,
        time=datetime.now(UTC),
        correlation_id=str(uuid.uuid4()),
        causation_id=None,
        data={"subject": subject, **(data or {})},
    )


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = ""
) -> None:
    """Poll a condition until it holds; fail naming `what` after `timeout` seconds."""
    await wait_until(condition, timeout=timeout, what=what, interval=0.02)


def holds(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A plain predicate as the async condition `wait_until` polls."""

    async def condition() -> bool:
        return predicate()

    return condition


async def scalar(pool: AsyncConnectionPool, sql: str, *params: object) -> object:
    async with pool.connection() as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
        return next(iter(row.values())) if row else None


@asynccontextmanager
async def running_consumer(
    stack: Stack,
    pool: AsyncConnectionPool | None,
    producer,
    subscription: Subscription,
    name: str | None = None,
    **options: object,
) -> AsyncIterator[EventConsumer]:
    metrics = Metrics("kit-tests")
    consumer = EventConsumer(
        name=name or f"test-consumer-{uuid.uuid4().hex[:8]}",
        bootstrap_servers=stack.kafka,
        producer=producer,
        metrics=metrics,
        unit_of_work=(lambda: PostgresUnitOfWork(pool)) if pool is not None else None,
        **options,
    )
    consumer.subscribe(subscription)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def wait_until_consumed(
    consumer: EventConsumer, expected: int, *, outcomes: tuple[str, ...] = ("handled",), what: str
) -> None:
    """Wait until the consumer finished `expected` events with any of these outcomes."""

    async def enough() -> bool:
        return sum(consumed(consumer, outcome) for outcome in outcomes) >= expected

    await wait_for(enough, what=what)


def consumed(consumer: EventConsumer, outcome: str) -> float:
    """How many events the consumer finished with this outcome, read from its Prometheus registry."""
    value = consumer.metrics.registry.get_sample_value(
        "funmagic_events_consumed_total", {"consumer": consumer.name, "outcome": outcome}
    )
    return value or 0.0


async def read_all(stack: Stack, topic: str, expected: int, timeout: float = 30.0) -> list:
    """Read a topic from the beginning until `expected` records arrived."""
    reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.kafka,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await reader.start()
    records: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await reader.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await reader.stop()
    return records


async def message_count(stack: Stack, topic: str) -> int:
    """How many records the topic holds, over all its partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    reader = AIOKafkaConsumer(bootstrap_servers=stack.kafka, group_id=None)
    await reader.start()
    try:
        ends = await reader.end_offsets(partitions)
        starts = await reader.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await reader.stop()


@asynccontextmanager
async def running_relay(
    dsn: str, pool: AsyncConnectionPool, producer, **options
) -> AsyncIterator[OutboxRelay]:
    """An outbox relay publishing in the background until the block ends (then stopped, its task awaited)."""
    relay = OutboxRelay(
        dsn=dsn,
        pool=pool,
        producer=producer,
        metrics=Metrics("kit-tests"),
        failpoints=Failpoints(""),
        **options,
    )
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=20)  # the stop's NOTIFY ends the relay's wait at once
