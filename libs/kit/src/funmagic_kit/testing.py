"""Helpers for tests and benchmarks: scratch databases (created fresh, migrated, dropped afterwards), a
deadline loop to wait on a condition instead of sleeping (and a common one: a transaction waits for a
row lock), and the kit's consumer fed records without Kafka
(fast handler tests: the same batching, routing, parsing, inbox and dead-lettering as on Kafka), and a
Redis server of a test's own, to SIGKILL and start again without touching the shared stack's.

`DROP DATABASE … WITH (FORCE)` can race an autovacuum worker that just started on the new database (the
server refuses to terminate it for a non-superuser); the drop is retried until that worker is gone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import aiohttp
import psycopg
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from aiokafka.structs import ConsumerRecord
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool
from pydantic import ConfigDict, create_model
from redis.asyncio import Connection, Redis
from redis.exceptions import RedisError

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope, encode, kafka_headers
from funmagic_contracts.topics import DLQ_ORIGINAL_OFFSET_HEADER, topic_for_source
from funmagic_kit.consumer import EventConsumer, Subscription
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.failpoints import PoisonedEvents
from funmagic_kit.http import problem_middleware
from funmagic_kit.kafka import create_topics, delete_topics
from funmagic_kit.metrics import Metrics
from funmagic_kit.migrations import migrate_database
from funmagic_kit.request_keys import INTERNAL_CALLER_KEY, PRINCIPAL_KEY, Principal, Role

__all__ = [
    "InMemoryConsumer",
    "OwnRedisServer",
    "RoundTripConnection",
    "ScratchTopics",
    "adhoc_event_class",
    "drop_database",
    "in_memory_consumer",
    "scratch_database",
    "serve_routes",
    "signed_in_as_test_caller",
    "wait_until",
    "waiting_for_a_lock",
]


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, what: str = "", interval: float = 0.02
) -> None:
    """Poll an async condition until it holds; fail (AssertionError naming `what`) after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(interval)


async def waiting_for_a_lock(pool: AsyncConnectionPool) -> bool:
    """Some transaction of the pool's database waits for a lock (a row another holds)."""
    async with pool.connection() as conn:
        cursor = await conn.cursor(row_factory=tuple_row).execute(
            "SELECT count(*) > 0 FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cursor.fetchone()
    return row is not None and bool(row[0])


@web.middleware
async def signed_in_as_test_caller(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stands in for the kit's caller check in a service's HTTP tests: `X-Test-User` is the verified user,
    `X-Test-Role` their role (user by default), `X-Test-Session` their session, `X-Test-Internal: yes` the
    internal credential (another service calling)."""
    request[INTERNAL_CALLER_KEY] = request.headers.get("X-Test-Internal") == "yes"
    user_id = request.headers.get("X-Test-User")
    if user_id:
        request[PRINCIPAL_KEY] = Principal(
            user_id=user_id,
            session_id=request.headers.get("X-Test-Session", "session"),
            role=cast(Role, request.headers.get("X-Test-Role", "user")),
            email=f"{user_id}@example.test",
            name="Test User",
            email_verified=True,
            issued_at=0,
            expires_at=0,
            token="token",
        )
    return await handler(request)


@asynccontextmanager
async def serve_routes(routes: Sequence[web.RouteDef], service: str) -> AsyncIterator[aiohttp.ClientSession]:
    """`async with serve_routes(routes, "credits") as http:` a service's routes behind the kit's problem+json
    middleware, as the runtime serves them, with `signed_in_as_test_caller` for the caller check."""
    app = web.Application(
        middlewares=[problem_middleware(Metrics(f"{service}-tests")), signed_in_as_test_caller]
    )
    app.add_routes(routes)
    async with TestServer(app) as server, aiohttp.ClientSession(str(server.make_url("/"))) as session:
        yield session


async def drop_database(postgres_url: str, name: str, *, timeout_seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                postgres_url + "/postgres", autocommit=True
            ) as admin:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)  # let the autovacuum worker finish before retrying


@asynccontextmanager
async def scratch_database(
    postgres_url: str, prefix: str, *components: tuple[str, str]
) -> AsyncIterator[str]:
    """A new database named `<prefix>_<random>`, migrated with the kit's tables and `components`."""
    postgres_url = postgres_url.rstrip("/")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(postgres_url + "/postgres", autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_url}/{name}"
    try:
        await migrate_database(url, *components)
        yield url
    finally:
        await drop_database(postgres_url, name)


class ScratchTopics:
    """Topics a test makes for itself, all deleted by `delete_all()` when it ends: left behind, every run adds
    partitions that a long-lived local stack's broker keeps serving (it had gathered eighty topics)."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._made: list[str] = []

    async def create(self, names: Sequence[str], **options: Any) -> None:
        await create_topics(self._bootstrap_servers, list(names), **options)
        self._made.extend(names)

    async def delete_all(self) -> None:
        if self._made:
            await delete_topics(self._bootstrap_servers, self._made)
            self._made.clear()


class _AdhocEvent(IntegrationEvent):
    """Events on a test's or a benchmark's own topic: a `subject` and any other data."""

    model_config = ConfigDict(frozen=True, extra="allow")
    EVENT_VERSION: ClassVar[int] = 1
    SUBJECT_FIELD: ClassVar[str] = "subject"

    subject: str


def adhoc_event_class(event_type: str, topic: str) -> type[IntegrationEvent]:
    """A contract class for `event_type` on a scratch `topic`, so the kit's consumer can be subscribed to
    events that are not in the platform's catalog (their envelopes carry `{"subject": …, …}` as data)."""
    model = create_model(event_type, __base__=_AdhocEvent)
    model.EVENT_TYPE = event_type
    model.TOPIC = topic
    return model


@dataclass
class _DeadLetters:
    """Stands in for the producer the consumer dead-letters with: records what it would have sent."""

    sent: list[tuple[str, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Any = None
    ) -> None:
        self.sent.append((topic, value or b"", list(headers or ())))


@dataclass
class InMemoryConsumer:
    """A service's subscriptions on the kit's consumer, fed records directly instead of fetched from Kafka;
    `deliver` runs one event through them, `deliver_batch` several as one fetch would."""

    consumer: EventConsumer
    outcomes: list[tuple[str, str]]  # (event id, outcome) in the order the consumer finished them
    dead_letters: _DeadLetters
    next_offsets: dict[str, int] = field(default_factory=dict)

    async def deliver(self, envelope: Envelope) -> str:
        """Run `envelope` through the consumer and return what it did: `handled`, `duplicate`, `skipped`
        or `dead_lettered`."""
        (outcome,) = await self.deliver_batch([envelope])
        return outcome

    async def deliver_batch(self, envelopes: Sequence[Envelope]) -> list[str]:
        """Run `envelopes` through the consumer as one batch (one partition per topic, in this order)."""
        records = [self._record(envelope) for envelope in envelopes]
        sent_before, finished_before = len(self.dead_letters.sent), len(self.outcomes)
        await self.consumer.process(records, lambda record: None)
        dead = {
            (topic.removesuffix(".dlq"), _header(headers, DLQ_ORIGINAL_OFFSET_HEADER))
            for topic, _, headers in self.dead_letters.sent[sent_before:]
        }
        finished: dict[str, list[str]] = {}
        for event_id, outcome in self.outcomes[finished_before:]:
            finished.setdefault(event_id, []).append(outcome)
        return [
            "dead_lettered"
            if (record.topic, str(record.offset).encode()) in dead
            else (finished.get(str(envelope.id)) or ["skipped"]).pop(0)
            for record, envelope in zip(records, envelopes, strict=True)
        ]

    async def deliver_event(self, event: IntegrationEvent, *, caused_by: Envelope | None = None) -> Envelope:
        envelope = Envelope.wrap(event, caused_by=caused_by)
        outcome = await self.deliver(envelope)
        if outcome != "handled":
            raise AssertionError(f"{event.EVENT_TYPE} was {outcome}, not handled")
        return envelope

    def _record(self, envelope: Envelope) -> ConsumerRecord[bytes, bytes]:
        topic = topic_for_source(envelope.source).name
        offset = self.next_offsets.get(topic, 0)
        self.next_offsets[topic] = offset + 1
        key, value = envelope.subject.encode(), encode(envelope)
        return ConsumerRecord(
            topic=topic,
            partition=0,
            offset=offset,
            timestamp=int(time.time() * 1000),
            timestamp_type=0,
            key=key,
            value=value,
            checksum=None,
            serialized_key_size=len(key),
            serialized_value_size=len(value),
            headers=kafka_headers(envelope),
        )


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    return next((value for key, value in headers if key == name), None)


@asynccontextmanager
async def in_memory_consumer(
    name: str,
    subscriptions: Sequence[Subscription[Any]],
    *,
    unit_of_work: Callable[[], PostgresUnitOfWork] | None = None,
    poisoned: PoisonedEvents | None = None,
) -> AsyncIterator[InMemoryConsumer]:
    """The kit's consumer, named `name`, with `subscriptions`, fed without Kafka.

    Handlers run in `unit_of_work` with the inbox rows, batched exactly as in production (the same
    sorting, parsing, inbox and dead-lettering); only the fetch is replaced, so these tests run in
    milliseconds beside the real-Kafka ones. `poisoned`: the poison test hook, as FUNMAGIC_POISON_DIR sets
    it up in a service.
    """
    outcomes: list[tuple[str, str]] = []
    dead_letters = _DeadLetters()
    consumer = EventConsumer(
        name=name,
        bootstrap_servers="127.0.0.1:9",  # never dialled: the consumer is never started
        producer=dead_letters,
        metrics=Metrics(name),
        unit_of_work=unit_of_work,
        max_attempts=1,
        on_processed=lambda envelope, outcome: outcomes.append((str(envelope.id), outcome)),
        poisoned=poisoned,
    )
    for subscription in subscriptions:
        consumer.subscribe(subscription)
    yield InMemoryConsumer(consumer, outcomes, dead_letters)


class RoundTripConnection(Connection):
    """A real Redis connection that counts how often it sends (a pipeline sends once): the round trips of a
    client made with `Redis.from_url(url, connection_class=RoundTripConnection)`. Reset `sends` to 0 first."""

    sends: ClassVar[int] = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        RoundTripConnection.sends += 1
        await super().send_packed_command(command, check_health)


class OwnRedisServer:
    """A `redis-server` of a test's own on a free local port, without persistence: a SIGKILL and a start
    again (on the same port) leave it empty and every client connection dead, as a crashed Redis does. Its
    log is `redis.log` in `directory`."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed (deploy/local/stack.sh installs it for the stack)"
            )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.binary, self.directory = binary, directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Starts it (again, on the same port) and returns once it answers a PING."""
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
                   "--save", "", "--appendonly", "no", "--dir", str(self.directory)]  # fmt: skip
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 (starts at once; the wait below is async)
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = Redis.from_url(self.url, socket_connect_timeout=1)

        async def answers() -> bool:
            try:
                return bool(await client.ping())
            except (RedisError, OSError):  # not listening yet
                return False

        try:
            await wait_until(answers, timeout=15, what="the test's redis-server to answer", interval=0.05)
        finally:
            await client.aclose()

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """Stops the server if it still runs (a fixture's teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
