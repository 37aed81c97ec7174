"""The transactional outbox and its relay.

Writers add an envelope to `outbox` inside the transaction that changes state; a trigger notifies
`funmagic_outbox` at commit. The relay takes a page of pending rows by deleting them in a transaction,
publishes them to Kafka, and commits that transaction once Kafka acked them.

Ordering strategy (STYLE.md point 7): exactly one relay per database publishes at a time — it holds a
session advisory lock, and standby replicas wait for it — and it reads rows by ascending id, sending a
whole page through one idempotent producer before awaiting acks. It never tails a cursor, so a row that
commits late with a lower id is simply picked up by the next page. Per-key order holds because writes
to one aggregate are serialized by that aggregate's own lock (version uniqueness or row lock), so for
one key id order is commit order. A crash after Kafka acked but before the commit re-publishes those
rows: delivery is at-least-once and consumers deduplicate by event id (the inbox).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import Envelope, encode, kafka_headers
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.kafka import KafkaNames
from funmagic_kit.metrics import Metrics
from funmagic_kit.pipelined import PipelinedTransaction
from funmagic_kit.tracing import current_traceparent

__all__ = ["OutboxMessage", "OutboxRelay", "add_raw_to_outbox", "add_to_outbox", "outbox_message"]

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "funmagic_outbox"
# The advisory lock one relay per database holds while it publishes (operators and tests look for it).
RELAY_LOCK_KEY = 0x6F7574626F78  # "outbox"
_PARTITIONER = DefaultPartitioner()
_Row = tuple[int, str, str, bytes, str]  # a taken row: id, topic, key, payload, headers as JSON text

# One statement for a transaction's messages, ids in the order they were published (the relay's order).
# The arrays go in binary (%b): psycopg writes a text array element by element in Python, escaping each
# one, which cost four times the CPU of the whole binary statement.
_INSERT = """
INSERT INTO outbox (event_id, topic, key, payload, headers)
SELECT m.event_id, m.topic, m.key, m.payload, m.headers
FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::bytea[], %b::jsonb[])
    WITH ORDINALITY AS m (event_id, topic, key, payload, headers, n)
ORDER BY m.n
"""
# A page is taken by deleting it, in a transaction that commits only once Kafka acked every row of it.
# The header lists come back as text for orjson: psycopg's jsonb loader (the standard library's json) was a
# twentieth of the relay's CPU.
_TAKE_PAGE = """
DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT %s)
RETURNING id, topic, key, payload, headers::text
"""


@dataclass(frozen=True)
class OutboxMessage:
    """A Kafka message as the relay will send it: the value as bytes, the key and header values as text
    (the outbox keeps them as text; the relay encodes them as UTF-8)."""

    event_id: UUID
    topic: str
    key: str
    payload: bytes
    headers: Sequence[tuple[str, str]] = ()


async def add_to_outbox(conn: psycopg.AsyncConnection, envelopes: Sequence[tuple[str, Envelope]]) -> None:
    """Write `(topic, envelope)` pairs in the caller's transaction, with the current span's traceparent
    (the consumers of these events continue its trace)."""
    traceparent = current_traceparent()
    await add_raw_to_outbox(
        conn, [outbox_message(topic, envelope, traceparent) for topic, envelope in envelopes]
    )


def outbox_message(topic: str, envelope: Envelope, traceparent: str | None) -> OutboxMessage:
    """`envelope` as the relay will send it, continuing the trace of `traceparent` (None: no trace)."""
    return OutboxMessage(
        event_id=envelope.id,
        topic=topic,
        key=envelope.subject,
        payload=encode(envelope),
        headers=[(k, v.decode()) for k, v in kafka_headers(envelope, traceparent)],
    )


async def add_raw_to_outbox(conn: psycopg.AsyncConnection, messages: Sequence[OutboxMessage]) -> None:
    """Write messages that are already encoded in the caller's transaction: a message published before
    (a dead letter replayed to its origin topic) goes out byte for byte, through the same relay."""
    await conn.execute(
        _INSERT,
        (
            [m.event_id for m in messages],
            [m.topic for m in messages],
            [m.key for m in messages],
            [m.payload for m in messages],
            [orjson.dumps(m.headers).decode() for m in messages],
        ),
    )


class OutboxRelay:
    def __init__(
        self,
        *,
        dsn: str,
        pool: AsyncConnectionPool,
        producer: AIOKafkaProducer,
        metrics: Metrics,
        failpoints: Failpoints | None = None,
        page_size: int = 500,
        idle_poll_seconds: float = 5.0,
        names: KafkaNames | None = None,
    ) -> None:
        self._dsn = dsn
        # Rows name the registry's topics; the deployment's prefix is put on only here, at the send.
        self._names = names or KafkaNames()
        self._pool = pool
        self._producer = producer
        self._metrics = metrics
        self._failpoints = failpoints or Failpoints()
        self._page_size = page_size
        self._idle_poll_seconds = idle_poll_seconds
        self._stopping = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._waking: asyncio.Task[None] | None = None
        self.is_leader = False

    def stop(self) -> None:
        """Ask the relay to flush pending rows once more and return from `run`."""
        self._stopping.set()
        # The leader waits for a NOTIFY (or the idle poll, seconds away): send one so it stops at once.
        self._waking = asyncio.get_running_loop().create_task(self._notify_listeners())

    async def _notify_listeners(self) -> None:
        with suppress(Exception):  # the database is gone: the idle poll ends the wait instead
            async with self._pool.connection() as conn:
                await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")

    async def run(self) -> None:
        """Publish until stopped; reconnect after database or broker errors."""
        while not self._stopping.is_set():
            try:
                await self._run_as_leader()
            except (psycopg.Error, OSError) as error:
                log.warning("outbox relay lost its database connection", extra={"error": str(error)})
                await self._sleep(1.0)
            finally:
                self.is_leader = False

    async def _run_as_leader(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as listener:
            while not self._stopping.is_set():
                cursor = await listener.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK_KEY,))
                row = await cursor.fetchone()
                if row and row[0]:
                    break
                await self._sleep(1.0)  # another replica's relay is publishing; stand by
            else:
                return
            self.is_leader = True
            await listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while not self._stopping.is_set():
                try:
                    await self.publish_all()
                except Exception as error:  # broker unavailable: rows stay, try again shortly
                    log.warning("outbox publish failed; will retry", extra={"error": repr(error)})
                    await self._sleep(0.5)
                    continue
                await self._wait_for_rows(listener)
            # Stopping: flush what handlers committed before shutdown, while this relay still holds the lock.
            try:
                flushed = await self.publish_all()
            except Exception as error:  # rows stay in the outbox; the next relay to start publishes them
                log.warning("outbox not flushed on shutdown", extra={"error": repr(error)})
            else:
                log.info("outbox flushed on shutdown", extra={"published": flushed})

    async def _wait_for_rows(self, listener: psycopg.AsyncConnection) -> None:
        """Until a NOTIFY arrives (or the idle poll is due), then read what arrived. psycopg's `notifies()`
        wakes every 0.1 s while it waits (to let Ctrl-C through): an idle relay, one per service, would wake
        ten times a second for nothing. This waits on the connection's socket alone."""
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[None] = loop.create_future()
        socket = listener.pgconn.socket
        loop.add_reader(socket, _resolve, arrived)
        idle_poll = loop.call_later(self._idle_poll_seconds, _resolve, arrived)
        try:
            await arrived
        finally:
            idle_poll.cancel()
            loop.remove_reader(socket)
        # Consumes what the socket holds (several NOTIFYs are one page to publish); a lost connection
        # raises here and the relay reconnects.
        async for _ in listener.notifies(timeout=0.0):
            pass

    async def publish_all(self) -> int:
        """Publish every pending row; return how many were published."""
        total = 0
        while True:
            published = await self._publish_page()
            total += published
            if published < self._page_size:
                return total

    async def _publish_page(self) -> int:
        # One transaction per page: its rows are deleted, sent, and the deletion commits once Kafka acked
        # them all. A failed send rolls it back, and a relay that dies leaves it uncommitted: either way the
        # rows are still there for the next page (sent twice at worst; consumers deduplicate). The
        # transaction is pipelined: BEGIN leaves with the page's DELETE and COMMIT with the final sync.
        async with self._publish_lock, self._pool.connection() as conn, PipelinedTransaction(conn):
            cursor = conn.cursor(row_factory=tuple_row)
            await cursor.execute(_TAKE_PAGE, (self._page_size,))
            rows: list[_Row] = sorted(await cursor.fetchall())  # by id
            if not rows:
                return 0
            await self._failpoints.reach("relay.before_publish")
            await self._send(rows)
            await self._failpoints.reach("relay.after_publish")
        self._metrics.outbox_published.inc(len(rows))
        return len(rows)

    async def _send(self, rows: Sequence[_Row]) -> None:
        """Send a page as record batches built here, one open batch per partition, and wait for every ack.

        `producer.send` costs ~10 µs of Python a message (a future each, the partitioner, the accumulator);
        appending to a batch costs ~1 µs. Rows keep their page order within a partition: a partition's
        batches are queued in the order they were filled. A row goes to the partition the producer's own
        partitioner would pick for its key (murmur2 over the topic's partitions by id, as every Kafka client
        does), so a key never changes partition whichever way it was sent.
        """
        partitions: dict[str, list[int]] = {}
        filling: dict[tuple[str, int], BatchBuilder] = {}
        acks: list[asyncio.Future[Any]] = []
        for _, logical_topic, text_key, payload, headers_json in rows:
            topic = self._names.topic(logical_topic)
            if topic not in partitions:
                partitions[topic] = sorted(await self._producer.partitions_for(topic))
            key = text_key.encode()
            partition = _PARTITIONER(key, partitions[topic], None)
            value = bytes(payload)
            headers = [(k, v.encode()) for k, v in orjson.loads(headers_json)]
            batch = filling.get((topic, partition))
            if batch is not None and batch.append(timestamp=None, key=key, value=value, headers=headers):
                continue
            if batch is not None:  # full: queue it, start the partition's next one
                acks.append(await self._producer.send_batch(batch, topic, partition=partition))
            batch = filling[(topic, partition)] = self._producer.create_batch()
            batch.append(timestamp=None, key=key, value=value, headers=headers)  # a batch takes its first row
        for (topic, partition), batch in filling.items():
            acks.append(await self._producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
