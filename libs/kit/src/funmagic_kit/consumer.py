"""The one consumer wrapper: batches, an inbox for exactly-once effects, retries, a dead-letter topic.

Subscriptions are typed: a handler is registered for a contract class
(`Subscription(TASKS_EVENTS).on(TaskRequested, reserve)`) and receives the parsed event, the envelope it
came in (for `caused_by`) and the unit of work — `async def reserve(event: TaskRequested, envelope, uow)`.

One Kafka consumer per worker (`concurrency`) reads every topic the service subscribes to, in the
service's consumer group. What one fetch returns (up to `max_batch` records, in order within each
partition) is one batch:
1. each record is decoded and, for a type this consumer handles, parsed into its event (a record that is
   not an envelope, or an event that does not match its contract, goes to the dead-letter topic; a type
   nobody here handles is skipped without a transaction);
2. in ONE transaction, one statement inserts an inbox row `processed_events(consumer, event_id)` per event
   and every event whose row is new runs its handler, in order; an event whose row already existed was
   handled before and is a duplicate. A batch handler (`Subscription.on_batch`) is called once per run of
   consecutive new events it handles, with all of them — a projection then writes a run with one
   set-based statement instead of one statement per event. The transaction is pipelined
   (`PostgresUnitOfWork.pipelined`): a statement whose result nobody reads does not wait for it, so the
   batch costs a round trip per read, not per statement — an event alone in its fetch gets the same on its
   first try;
3. only after that commit are the offsets marked done; they are committed to Kafka in the background
   (every `commit_every` events or `commit_interval_ms`, when a rebalance takes partitions away, and at
   once while stopping). A crash between the commit and the offset commit redelivers the batch, and the
   inbox recognises every event in it.
When any handler of a batch raises (or its COMMIT fails), the batch rolls back as a whole and its events
are run again ONE AT A TIME, each in its own transaction and statement by statement (not pipelined): the
ones before the failing event commit, the failing one is retried alone (in place, the partition waiting,
so order holds) up to `max_attempts` and then dead-lettered alone (`<topic>.dlq`, the error in its
headers), and the consumer moves on. A handler that raises
`PermanentError` is dead-lettered at once; so is an event a test poisoned
(`funmagic_kit.failpoints.PoisonedEvents`, only when FUNMAGIC_POISON_DIR is set): its handler does not run.
A dependency that is down (`funmagic_kit.outages.is_outage`: a lost Postgres connection, a restarting
Redis…) is not the event's fault: that failure is retried for as long as the outage lasts, with the
backoff capped at MAX_RETRY_BACKOFF_MS, and never dead-lettered.

Without a unit of work (the gateway has no database) there is no transaction to share: events run one at a
time with the same retries and dead letters, and handlers must be idempotent by themselves. A batch handler
there is called once per run, in order, until a call fails; the events of that run and all after it in the
batch then run one at a time (the runs before it stay handled: nothing rolls them back).

Retries happen in place, never by seeking back: a seek would wait for the fetch already parked at the
broker (a long poll of up to `fetch_max_wait_ms`), and that long poll is what lets an idle consumer sleep.
The loop is plain aiokafka (`getmany`) rather than FastStream's batch subscriber, which sleeps a whole
batch timeout after every empty fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import TYPE_HEADER, ContractError, Envelope, decode
from funmagic_contracts.topics import (
    DLQ_ATTEMPTS_HEADER,
    DLQ_CONSUMER_HEADER,
    DLQ_ERROR_HEADER,
    DLQ_ORIGINAL_OFFSET_HEADER,
    DLQ_ORIGINAL_PARTITION_HEADER,
    DLQ_ORIGINAL_TOPIC_HEADER,
    TopicSpec,
    dead_letter_topic,
)
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.errors import PermanentError
from funmagic_kit.failpoints import Failpoints, PoisonedEvents
from funmagic_kit.kafka import KafkaNames
from funmagic_kit.logs import bind_correlation_id
from funmagic_kit.metrics import Metrics
from funmagic_kit.outages import is_outage
from funmagic_kit.tracing import context_from_headers, span

__all__ = [
    "GATHERING_FETCH_MIN_BYTES",
    "BatchHandler",
    "DeadLetterProducer",
    "EventConsumer",
    "EventHandler",
    "Subscription",
]

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=IntegrationEvent)
UnitOfWorkT = TypeVar("UnitOfWorkT")

EventHandler = Callable[[EventT, Envelope, UnitOfWorkT], Awaitable[None]]
"""`await handler(event, envelope, uow)`: the parsed event, its envelope, the unit of work (None without a
database)."""

BatchHandler = Callable[[Sequence[tuple[EventT, Envelope]], UnitOfWorkT], Awaitable[None]]
"""`await handler(deliveries, uow)`: consecutive events of one type as `(event, envelope)` pairs, in the order
they arrived, and the unit of work — one call for what a per-event handler would take one call each."""

# The longest wait between two tries of one message (an outage is retried for as long as it lasts).
MAX_RETRY_BACKOFF_MS = 5_000

# What a gathering consumer (`fetch_min_bytes`; a service's `reactions_may_wait_ms`) asks the broker to
# collect before it answers a fetch: more than a busy platform writes to a service's topics in its wait on
# this machine, so in practice the wait decides. Each fetch answered costs a request and its parsing on both
# sides.
GATHERING_FETCH_MIN_BYTES = 1024 * 1024

# One statement claims the inbox rows of a whole batch; RETURNING names the events not handled before.
# Arrays in binary (%b): psycopg's text arrays are escaped element by element in Python.
_CLAIM_EVENTS = """
INSERT INTO processed_events (consumer, event_id, event_type, topic, kafka_partition, kafka_offset)
SELECT %s, * FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::integer[], %b::bigint[])
ON CONFLICT (consumer, event_id) DO NOTHING
RETURNING event_id
"""


class DeadLetterProducer(Protocol):
    """What the consumer needs of a Kafka producer: one acknowledged send (AIOKafkaProducer has it)."""

    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Any = None
    ) -> Any: ...


class Subscription(Generic[UnitOfWorkT]):
    """A topic and a handler per contract class this consumer reacts to; other types are skipped.

    Built fluently, and typed: `on(TaskRequested, handler)` accepts only a handler of `TaskRequested`.
    `on_batch(TaskRequested, handler)` registers a handler that takes a run of consecutive events of that
    type in one call (a projection written with one set-based statement instead of one per event).
    """

    def __init__(self, topic: TopicSpec | str) -> None:
        self.topic = topic if isinstance(topic, str) else topic.name
        self._registered: dict[str, _Registered] = {}

    def on(
        self,
        event_class: type[EventT],
        handler: EventHandler[EventT, UnitOfWorkT],
        *,
        when: Callable[[EventT], bool] | None = None,
    ) -> Subscription[UnitOfWorkT]:
        """`when`: which of these events the handler is for; the others are skipped like an event of a type
        not registered — no transaction, no inbox row (a handler that would do nothing with them still
        cost both)."""
        return self._register(_Registered(event_class, handler, batched=False, when=when))

    def on_batch(
        self, event_class: type[EventT], handler: BatchHandler[EventT, UnitOfWorkT]
    ) -> Subscription[UnitOfWorkT]:
        """Handle runs of consecutive `event_class` events with one call each (events of other types
        registered with the same handler join the run). A run ends at an event of another handler, at the
        end of a fetch, or at a failure: when a call raises, its events are retried (and at last
        dead-lettered) one at a time, as a run of one each."""
        return self._register(_Registered(event_class, handler, batched=True))

    def _register(self, registered: _Registered) -> Subscription[UnitOfWorkT]:
        event_class = registered.event_class
        if self.topic != event_class.TOPIC:
            raise ValueError(f"{event_class.EVENT_TYPE} travels on {event_class.TOPIC}, not {self.topic}")
        if event_class.EVENT_TYPE in self._registered:
            raise ValueError(f"{event_class.EVENT_TYPE} already has a handler on {self.topic}")
        self._registered[event_class.EVENT_TYPE] = registered
        return self

    @property
    def handlers(self) -> Mapping[str, tuple[type[IntegrationEvent], EventHandler[Any, UnitOfWorkT]]]:
        """Event type name → (contract class, handler), of the per-event handlers."""
        return MappingProxyType(
            {name: (r.event_class, r.handler) for name, r in self._registered.items() if not r.batched}
        )

    def handler_for(self, event_type: str) -> _Registered | None:
        """How `event_type` is handled, None when this subscription skips it."""
        return self._registered.get(event_type)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self._registered)


@dataclass(frozen=True)
class _Registered:
    """A handler as registered: per event, or (`batched`) per run of consecutive events."""

    event_class: type[IntegrationEvent]
    handler: Callable[..., Awaitable[None]]
    batched: bool
    when: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class _Event:
    """A record this consumer handles, parsed."""

    record: ConsumerRecord[bytes, bytes]
    topic: str  # the registry's name (without the deployment's prefix)
    envelope: Envelope
    event: IntegrationEvent
    handler: Callable[..., Awaitable[None]]  # an EventHandler, or a BatchHandler when `batched`
    batched: bool = False


@dataclass(frozen=True)
class _Delivery:
    """One record of a batch, sorted: an event to handle, a record to dead-letter, or one to skip."""

    record: ConsumerRecord[bytes, bytes]
    event: _Event | None = None
    unreadable: Exception | None = None  # not an envelope, or not its contract: dead-lettered


class _Stopping(Exception):
    """Raised out of a retry loop when the consumer stops before the event could be finished."""


MarkDone = Callable[[ConsumerRecord[bytes, bytes]], None]


class EventConsumer:
    """The subscriptions of one service under one consumer group.

    With a `unit_of_work` factory, handlers get a unit of work and the inbox makes them exactly-once.
    Without one (the gateway has no database) handlers get `None` and must be idempotent by themselves.
    `start` begins consuming; `stop` lets the batch in progress finish (up to `grace_seconds`), commits the
    done offsets and leaves the group.
    """

    def __init__(
        self,
        *,
        name: str,
        bootstrap_servers: str,
        producer: DeadLetterProducer,
        metrics: Metrics,
        unit_of_work: Callable[[], PostgresUnitOfWork] | None = None,
        max_attempts: int = 5,
        retry_backoff_ms: int = 200,
        fetch_max_wait_ms: int = 5_000,
        # 1: a fetch parked at the broker is answered by the first record. More: the broker gathers records
        # until they reach this size or `fetch_max_wait_ms` passes (see `GATHERING_FETCH_MIN_BYTES`).
        fetch_min_bytes: int = 1,
        wake_interval_ms: int = 1_000,
        max_batch: int = 100,
        on_processed: Callable[[Envelope, str], None] | None = None,
        commit_every: int = 500,
        # Each offset commit is a request and a write to the offsets topic; every 100 ms it was a few a task
        # on a quiet platform. A crash redelivers what a second handled, which the inbox recognises.
        commit_interval_ms: int = 1000,
        concurrency: int = 1,
        grace_seconds: float = 15.0,
        poisoned: PoisonedEvents | None = None,
        failpoints: Failpoints | None = None,
        names: KafkaNames | None = None,
    ) -> None:
        self.name = name
        self._bootstrap_servers = bootstrap_servers
        self._names = names or KafkaNames()
        self._producer = producer
        self.metrics = metrics
        self._unit_of_work = unit_of_work
        self._max_attempts = max_attempts
        self._retry_backoff_ms = retry_backoff_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_min_bytes = fetch_min_bytes
        self._wake_interval_ms = wake_interval_ms
        self._max_batch = max_batch
        # Workers, each a Kafka consumer in the group with its own share of the partitions: partitions are
        # handled in parallel, each one still in order.
        self._concurrency = concurrency
        self._grace_seconds = grace_seconds
        # Called with (envelope, outcome) once an event's transaction has committed, before the offset
        # commit; lets a benchmark or a test observe completion without polling.
        self._on_processed = on_processed
        # The test hook (None outside tests): events named there fail as if their handler always did.
        self._poisoned = poisoned
        # `consumer.batch_committed`: a crash test stops the process between a batch's commit and its
        # offsets being marked done.
        self._failpoints = failpoints or Failpoints()
        self._subscriptions: dict[str, Subscription[Any]] = {}  # physical topic → its subscription
        self._offsets = _OffsetCommitter(
            commit_every=commit_every, commit_interval_s=commit_interval_ms / 1000
        )
        self._kafka_consumers: list[AIOKafkaConsumer] = []
        self._workers: list[asyncio.Task[None]] = []
        self._waiting_for_records: set[asyncio.Task[None]] = set()  # workers with nothing in progress
        self._stopping = asyncio.Event()
        # The labelled metrics, looked up once (`labels()` takes a lock and builds a key per call).
        self._handler_seconds = metrics.handler_seconds.labels(name)
        self._consumed: dict[str, Any] = {}

    def _count(self, outcome: str) -> None:
        counter = self._consumed.get(outcome)
        if counter is None:
            counter = self._consumed[outcome] = self.metrics.events_consumed.labels(self.name, outcome)
        counter.inc()

    def subscribe(self, subscription: Subscription[Any]) -> None:
        topic = self._names.topic(subscription.topic)
        if topic in self._subscriptions:
            # Two subscriptions of one topic in one group would each get only part of its partitions.
            raise ValueError(f"{self.name} already subscribes to {subscription.topic}")
        self._subscriptions[topic] = subscription

    @property
    def topics(self) -> tuple[str, ...]:
        """The Kafka topics this consumer reads (with the deployment's prefix)."""
        return tuple(self._subscriptions)

    async def start(self) -> None:
        if not self._subscriptions or self._workers:
            return
        self._stopping.clear()
        for index in range(self._concurrency):
            kafka = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                client_id=f"{self.name}-{index}",
                group_id=self._names.group(self.name),
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self._fetch_max_wait_ms,
                fetch_min_bytes=self._fetch_min_bytes,
                # aiokafka's background fetcher looks at its partitions every `consumer_timeout_ms` (200 by
                # default) even while its fetch waits at the broker: five rounds a second per idle consumer.
                # It wakes at once for what matters (a fetch answered, records consumed, a rebalance), so
                # its idle round can be as rare as this consumer's own.
                consumer_timeout_ms=self._wake_interval_ms,
            )
            kafka.subscribe(list(self._subscriptions), listener=_CommitOnRevoke(self._offsets, kafka))
            await kafka.start()
            self._kafka_consumers.append(kafka)
            self._workers.append(asyncio.create_task(self._run(kafka), name=f"{self.name}-consumer-{index}"))

    async def stop(self) -> None:
        """Finish the batch in progress (up to the grace period), commit done offsets, leave the group."""
        self._stopping.set()
        for idle in self._waiting_for_records:
            idle.cancel()  # nothing in progress: no need to wait for its fetch to time out
        if self._workers:
            _, unfinished = await asyncio.wait(self._workers, timeout=self._grace_seconds)
            for worker in unfinished:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        await self._offsets.commit_immediately_from_now_on()
        for kafka in self._kafka_consumers:
            with suppress(Exception):  # leaving the group: the broker may already be gone
                await kafka.stop()
        self._workers.clear()
        self._kafka_consumers.clear()

    async def _run(self, kafka: AIOKafkaConsumer) -> None:
        def mark_done(record: ConsumerRecord[bytes, bytes]) -> None:
            self._offsets.mark_done(kafka, record)

        worker = asyncio.current_task()
        assert worker is not None
        while not self._stopping.is_set():
            # Returns as soon as records are there. While it waits, `stop` may cancel this worker: records
            # fetched but not yet handed over are read again by the partition's next owner.
            self._waiting_for_records.add(worker)
            try:
                fetched = await kafka.getmany(timeout_ms=self._wake_interval_ms, max_records=self._max_batch)
            except Exception as error:  # KafkaError: the consumer reconnects on its own
                log.warning("fetch failed; retrying", extra={"consumer": self.name, "error": repr(error)})
                await self._sleep(1.0)
                continue
            finally:
                self._waiting_for_records.discard(worker)
            records = [record for partition in fetched.values() for record in partition]
            if not records:
                continue
            try:
                await self.process(records, mark_done)
            except _Stopping:
                return
            except Exception:  # a bug of this module: never let one batch end the worker silently
                log.exception("batch failed; its events will be read again", extra={"consumer": self.name})
                for partition, batch in fetched.items():
                    kafka.seek(partition, batch[0].offset)
                await self._sleep(1.0)

    async def process(self, records: Sequence[ConsumerRecord[bytes, bytes]], mark_done: MarkDone) -> None:
        """Handle one batch (records in order within each partition); `mark_done(record)` is called for
        each record once nothing about it is left to do. Raises `_Stopping` when the consumer stops while
        a record still waits for a retry (that record and what follows it are not marked done)."""
        deliveries = [self._sort(record) for record in records]
        events = [d.event for d in deliveries if d.event is not None]
        together = 0  # how many of `events`, from the first on, are handled already
        if len(events) > 1:
            if self._unit_of_work is not None:
                together = len(events) if await self._handle_together(events) else 0
            elif any(event.batched for event in events):
                together = await self._handle_runs_without_transaction(events)
        seen = 0
        for delivery in deliveries:
            if delivery.unreadable is not None:
                await self._dead_letter_until_sent(delivery.record, delivery.unreadable, attempts=1)
            elif delivery.event is None:
                # Not an event this service reacts to: nothing changes, so no transaction and no inbox row.
                self._count("skipped")
            else:
                seen += 1
                if seen > together:
                    # Alone in its fetch, an event's first try is pipelined like a batch; after a failed
                    # batch (or a failed try) it runs statement by statement, so a handler that catches a
                    # statement's error sees it where it happened.
                    await self._handle_alone_with_retries(delivery.event, pipelined=len(events) == 1)
            mark_done(delivery.record)

    def _sort(self, record: ConsumerRecord[bytes, bytes]) -> _Delivery:
        subscription = self._subscriptions.get(record.topic)
        # The type header names the event without decoding it: one this service does not react to (most of
        # what a topic carries, for most of its consumers) is passed over without parsing its JSON.
        declared = _type_header(record)
        if declared is not None and (subscription is None or subscription.handler_for(declared) is None):
            return _Delivery(record)
        try:
            envelope = decode(record.value or b"")
        except ValueError as error:
            return _Delivery(record, unreadable=error)
        registered = subscription.handler_for(envelope.type) if subscription is not None else None
        if registered is None:
            return _Delivery(record)
        try:
            event = _parse(envelope, registered.event_class)
        except ContractError as error:  # retrying cannot make it match its contract
            return _Delivery(record, unreadable=error)
        if registered.when is not None and not registered.when(event):
            return _Delivery(record)
        topic = self._names.logical_topic(record.topic)
        return _Delivery(
            record, event=_Event(record, topic, envelope, event, registered.handler, registered.batched)
        )

    async def _handle_together(self, events: list[_Event]) -> bool:
        """Run the batch's events in one transaction; False (everything rolled back) if any of them failed."""
        assert self._unit_of_work is not None
        started = time.perf_counter()
        outcomes: list[str] = []
        try:
            async with self._unit_of_work().pipelined() as uow:
                new_ids = await self._claim(uow, events)
                new_events = []
                for event in events:
                    if event.envelope.id not in new_ids:
                        outcomes.append("duplicate")
                        continue
                    # Taken out: the same event twice in one batch is a duplicate the second time.
                    new_ids.discard(event.envelope.id)
                    new_events.append(event)
                    outcomes.append("handled")
                for run in _runs(new_events):
                    await self._run_handlers(run, uow)
        except Exception as error:
            log.info(
                "batch rolled back; its events run one at a time",
                extra={"consumer": self.name, "events": len(events), "error": repr(error)},
            )
            return False
        await self._failpoints.reach("consumer.batch_committed")
        self._finished_together(events, outcomes, started)
        return True

    async def _handle_runs_without_transaction(self, events: list[_Event]) -> int:
        """Without a database: each run (see `_runs`) in one call, in order, until a call fails; how many
        events were handled. The one that failed and all after it then run one at a time, in order."""
        handled = 0
        for run in _runs(events):
            started = time.perf_counter()
            try:
                await self._run_handlers(run, None)
            except Exception as error:
                log.info(
                    "a run of events failed; it and the rest of the batch run one at a time",
                    extra={"consumer": self.name, "events": len(run), "error": repr(error)},
                )
                return handled
            self._finished_together(run, ["handled"] * len(run), started)
            handled += len(run)
        return handled

    async def _handle_alone_with_retries(self, event: _Event, *, pipelined: bool = False) -> None:
        attempts = 0
        while True:
            started = time.perf_counter()
            try:
                outcome = await self._handle_alone(event, pipelined=pipelined and attempts == 0)
            except Exception as error:  # every failure ends as a retry or a dead letter, never a drop
                attempts += 1
                # A dependency that is down (Postgres restarting…) is not the event's fault: the partition
                # waits for it as long as it takes, and the event is never dead-lettered for it.
                outage = is_outage(error)
                if not outage and (isinstance(error, PermanentError) or attempts >= self._max_attempts):
                    await self._dead_letter_until_sent(event.record, error, attempts=attempts)
                    return
                self._count("retried")
                envelope = event.envelope
                log.warning(
                    "dependency unavailable; retrying" if outage else "event handler failed; retrying",
                    extra={
                        "event_type": envelope.type,
                        "event_id": str(envelope.id),
                        "attempt": attempts,
                        "error": repr(error),
                    },
                )
                backoff_ms = self._retry_backoff_ms * 2 ** min(attempts - 1, 10)
                await self._sleep(min(backoff_ms, MAX_RETRY_BACKOFF_MS) / 1000)
                if self._stopping.is_set():
                    raise _Stopping from error
                continue
            self._finished(event, outcome, time.perf_counter() - started)
            return

    async def _handle_alone(self, event: _Event, *, pipelined: bool) -> str:
        if self._unit_of_work is None:
            await self._run_handlers([event], None)
            return "handled"
        unit_of_work = self._unit_of_work()
        async with unit_of_work.pipelined() if pipelined else unit_of_work as uow:
            if not await self._claim(uow, [event]):
                return "duplicate"
            await self._run_handlers([event], uow)
            return "handled"

    async def _claim(self, uow: PostgresUnitOfWork, events: Sequence[_Event]) -> set[UUID]:
        """Insert the inbox rows of `events`; the ids of those not handled before."""
        cursor = await uow.conn.execute(
            _CLAIM_EVENTS,
            (
                self.name,
                [e.envelope.id for e in events],
                [e.envelope.type for e in events],
                [e.topic for e in events],
                [e.record.partition for e in events],
                [e.record.offset for e in events],
            ),
        )
        return {row["event_id"] for row in await cursor.fetchall()}  # the pool's rows are dicts

    async def _run_handlers(self, run: Sequence[_Event], uow: PostgresUnitOfWork | None) -> None:
        """Run one event's handler, or one batch handler over a run of events (see `_runs`).

        One event continues its own trace and logs under its correlation id, whichever kind of handler takes
        it; a run of several is one span that links each event's trace, with no correlation id of its own.
        """
        first = run[0]
        envelope, record = first.envelope, first.record
        alone = len(run) == 1
        attributes: dict[str, str | int] = {
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": self.name,
        }
        if not alone:
            attributes["messaging.batch.message_count"] = len(run)
        with (
            bind_correlation_id(envelope.correlation_id or str(envelope.id)) if alone else nullcontext(),
            span(
                f"consume {envelope.type}" if alone else f"consume {envelope.type} x{len(run)}",
                kind=SpanKind.CONSUMER,
                parent=context_from_headers(record.headers) if alone else None,
                links=() if alone else (context_from_headers(event.record.headers) for event in run),
                attributes=attributes,
            ),
        ):
            # After the inbox claim: an event this consumer already handled stays a duplicate, poisoned
            # or not; a poisoned one rolls back with its inbox row, like a handler that raised.
            if self._poisoned is not None:
                for event in run:
                    self._poisoned.check(event.envelope.id)
            if first.batched:
                await first.handler([(event.event, event.envelope) for event in run], uow)
            else:
                await first.handler(first.event, envelope, uow)

    def _finished_together(self, events: Sequence[_Event], outcomes: Sequence[str], started: float) -> None:
        """Events handled by one piece of work begun at `started`, each timed at its share of it."""
        seconds = (time.perf_counter() - started) / len(events)
        for event, outcome in zip(events, outcomes, strict=True):
            self._finished(event, outcome, seconds)

    def _finished(self, event: _Event, outcome: str, seconds: float) -> None:
        self._handler_seconds.observe(seconds)
        self._count(outcome)
        if self._on_processed is not None:
            self._on_processed(event.envelope, outcome)

    async def _dead_letter_until_sent(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        """Move the record to `<topic>.dlq`; while the broker refuses, try again (never skip it silently)."""
        while True:
            try:
                await self._publish_dead_letter(record, error, attempts=attempts)
                return
            except Exception as publish_error:
                log.error("dead-lettering failed; trying again", extra={"error": repr(publish_error)})
                await self._sleep(self._retry_backoff_ms / 1000 or 0.1)
                if self._stopping.is_set():
                    raise _Stopping from publish_error

    async def _publish_dead_letter(
        self, record: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        headers = [
            *(record.headers or ()),
            (DLQ_ERROR_HEADER, _truncate(f"{type(error).__name__}: {error}").encode()),
            (DLQ_CONSUMER_HEADER, self.name.encode()),
            (DLQ_ORIGINAL_TOPIC_HEADER, self._names.logical_topic(record.topic).encode()),
            (DLQ_ORIGINAL_PARTITION_HEADER, str(record.partition).encode()),
            (DLQ_ORIGINAL_OFFSET_HEADER, str(record.offset).encode()),
            (DLQ_ATTEMPTS_HEADER, str(attempts).encode()),
        ]
        await self._producer.send_and_wait(
            dead_letter_topic(record.topic), value=record.value, key=record.key, headers=headers
        )
        self._count("dead_lettered")
        log.error(
            "event dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "attempts": attempts,
                "error": repr(error),
            },
        )

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


class _OffsetCommitter:
    """Commits the offsets of fully handled records, never of one still in progress.

    Offsets are given explicitly per partition (the next offset to read), and through the Kafka consumer
    that owns the partition (one per worker), so a commit running while the next batch is being handled
    cannot cover that batch. A failed commit (a rebalance took the partition away, or the consumer is
    stopping) is only logged: the partition's next owner re-reads from the last commit and the inbox
    skips what was already handled.
    """

    def __init__(self, *, commit_every: int, commit_interval_s: float) -> None:
        self._commit_every = commit_every
        self._commit_interval_s = commit_interval_s
        self._done: dict[AIOKafkaConsumer, dict[TopicPartition, int]] = {}
        self._since_commit = 0
        self._timer: asyncio.TimerHandle | None = None
        self._immediate = False
        self._background: set[asyncio.Task[None]] = set()

    def mark_done(self, consumer: AIOKafkaConsumer, record: ConsumerRecord[bytes, bytes]) -> None:
        self._done.setdefault(consumer, {})[TopicPartition(record.topic, record.partition)] = (
            record.offset + 1
        )
        self._since_commit += 1
        if self._immediate or self._since_commit >= self._commit_every:
            self._commit_in_background()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self._commit_interval_s, self._commit_in_background
            )

    async def commit_immediately_from_now_on(self) -> None:
        self._immediate = True
        await self.commit()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _commit_in_background(self) -> None:
        task = asyncio.get_running_loop().create_task(self.commit())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def commit(self, only: AIOKafkaConsumer | None = None) -> None:
        if self._timer is not None and only is None:
            self._timer.cancel()
            self._timer = None
        if only is None:
            done, self._done, self._since_commit = self._done, {}, 0
        else:
            done = {only: self._done.pop(only)} if only in self._done else {}
        for consumer, offsets in done.items():
            try:
                await consumer.commit(offsets)
            except Exception as error:  # KafkaError, or the consumer already stopped
                log.warning(
                    "offset commit failed; those events may be redelivered", extra={"error": repr(error)}
                )


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions move to another member, commit what this one finished (fewer redeliveries)."""

    def __init__(self, offsets: _OffsetCommitter, consumer: AIOKafkaConsumer) -> None:
        self._offsets = offsets
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._offsets.commit(only=self._consumer)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


def _runs(events: Sequence[_Event]) -> list[list[_Event]]:
    """`events` cut into what one call handles, in order: a run of consecutive events that share a batch
    handler (of one type, or of several registered with the same handler), or one event of a per-event
    handler."""
    runs: list[list[_Event]] = []
    for event in events:
        # `==`: a bound method (`self.project`) is a new object at each access, equal to the others.
        if event.batched and runs and runs[-1][0].handler == event.handler:
            runs[-1].append(event)
        else:
            runs.append([event])
    return runs


def _type_header(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The event type its `type` header names (every message the outbox sends has one); None without it."""
    for key, value in record.headers or ():
        if key == TYPE_HEADER:
            try:
                return value.decode()
            except UnicodeDecodeError:
                return None
    return None


def _parse(envelope: Envelope, event_class: type[EventT]) -> EventT:
    """The event in `envelope` as `event_class`; ContractError when it is another version, does not match
    the class's schema, or its subject is not the event's aggregate id."""
    if envelope.version != event_class.EVENT_VERSION:
        raise ContractError(
            f"{envelope.type} v{envelope.version} is not the v{event_class.EVENT_VERSION} this consumer reads"
        )
    try:
        event = event_class.model_validate(envelope.data)
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) or "(root)" for e in error.errors())
        raise ContractError(f"invalid {envelope.type} v{envelope.version} data at {fields}") from error
    if event.get_subject() != envelope.subject:
        raise ContractError(f"{envelope.type} envelope subject is not its {event_class.SUBJECT_FIELD}")
    return event


def _truncate(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
