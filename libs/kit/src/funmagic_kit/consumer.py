"""The one consumer wrapper: at-least-once delivery, an inbox for idempotence, retries, a dead-letter topic.

Subscriptions are typed: a handler is registered for a contract class
(`Subscription(TASKS_EVENTS).on(TaskRequested, reserve)`) and receives the parsed event, the envelope it
came in (for `caused_by`) and the unit of work — `async def reserve(event: TaskRequested, envelope, uow)`.

For every message, in order within its partition:
1. decode the envelope and, for a type this consumer handles, parse the event (a message that is not an
   envelope, or an event that does not match its contract, goes straight to the dead-letter topic);
2. in one transaction, insert `processed_events(consumer, event_id)` and run the handler; if the row
   already existed the event was handled before, and nothing else happens;
3. only after that commit, mark the Kafka offset as done; done offsets are committed to Kafka in the
   background (every `commit_every` messages or `commit_interval_ms`, and at once while shutting down).
   A crash before an offset commit redelivers a few events, which the inbox recognises: one offset
   commit per message would cost a broker round trip each and cap a consumer at a few hundred events/s.
A handler that raises is retried (the partition waits, keeping order) up to `max_attempts`, then the
message goes to `<topic>.dlq` with the error in its headers and the consumer moves on. A handler that
raises `PermanentError` is dead-lettered at once. So is an event a test poisoned
(`funmagic_kit.failpoints.PoisonedEvents`, only when FUNMAGIC_POISON_DIR is set): its handler does not run.
A dependency that is down (`funmagic_kit.outages.is_outage`: a lost Postgres connection, a restarting
Redis…) is not the message's fault: that failure is retried for as long as the outage lasts, with the
backoff capped at MAX_RETRY_BACKOFF_MS, and never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import ContractError, Envelope, decode
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
from funmagic_kit.failpoints import PoisonedEvents
from funmagic_kit.kafka import KafkaNames
from funmagic_kit.logs import bind_correlation_id
from funmagic_kit.metrics import Metrics
from funmagic_kit.outages import is_outage
from funmagic_kit.tracing import context_from_headers, span

__all__ = ["EventConsumer", "EventHandler", "Subscription"]

log = logging.getLogger(__name__)

EventT = TypeVar("EventT", bound=IntegrationEvent)
UnitOfWorkT = TypeVar("UnitOfWorkT")

EventHandler = Callable[[EventT, Envelope, UnitOfWorkT], Awaitable[None]]
"""`await handler(event, envelope, uow)`: the parsed event, its envelope, the unit of work (None without a
database)."""

# The longest wait between two tries of one message (an outage is retried for as long as it lasts).
MAX_RETRY_BACKOFF_MS = 5_000

_CLAIM_EVENT = """
INSERT INTO processed_events (consumer, event_id, event_type, topic, kafka_partition, kafka_offset)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (consumer, event_id) DO NOTHING
"""


class Subscription(Generic[UnitOfWorkT]):
    """A topic and a handler per contract class this consumer reacts to; other types are skipped.

    Built fluently, and typed: `on(TaskRequested, handler)` accepts only a handler of `TaskRequested`.
    """

    def __init__(self, topic: TopicSpec | str) -> None:
        self.topic = topic if isinstance(topic, str) else topic.name
        self._handlers: dict[str, tuple[type[IntegrationEvent], EventHandler[Any, UnitOfWorkT]]] = {}

    def on(
        self, event_class: type[EventT], handler: EventHandler[EventT, UnitOfWorkT]
    ) -> Subscription[UnitOfWorkT]:
        if self.topic != event_class.TOPIC:
            raise ValueError(f"{event_class.EVENT_TYPE} travels on {event_class.TOPIC}, not {self.topic}")
        if event_class.EVENT_TYPE in self._handlers:
            raise ValueError(f"{event_class.EVENT_TYPE} already has a handler on {self.topic}")
        self._handlers[event_class.EVENT_TYPE] = (event_class, handler)
        return self

    @property
    def handlers(self) -> Mapping[str, tuple[type[IntegrationEvent], EventHandler[Any, UnitOfWorkT]]]:
        """Event type name → (contract class, handler)."""
        return MappingProxyType(self._handlers)

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self._handlers)


class EventConsumer:
    """Registers subscriptions on a FastStream broker under one consumer group.

    With a `unit_of_work` factory, handlers get a unit of work and the inbox makes them idempotent. Without
    one (the gateway has no database) handlers get `None` and must be idempotent by themselves.
    """

    def __init__(
        self,
        *,
        name: str,
        broker: KafkaBroker,
        producer: AIOKafkaProducer,
        metrics: Metrics,
        unit_of_work: Callable[[], PostgresUnitOfWork] | None = None,
        max_attempts: int = 5,
        retry_backoff_ms: int = 200,
        fetch_max_wait_ms: int = 500,
        wake_interval_ms: int = 200,
        on_processed: Callable[[Envelope, str], None] | None = None,
        commit_every: int = 500,
        commit_interval_ms: int = 100,
        concurrency: int = 1,
        poisoned: PoisonedEvents | None = None,
        names: KafkaNames | None = None,
    ) -> None:
        self.name = name
        self._names = names or KafkaNames()
        self._broker = broker
        self._producer = producer
        self.metrics = metrics
        self._unit_of_work = unit_of_work
        self._max_attempts = max_attempts
        self._retry_backoff_ms = retry_backoff_ms
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._wake_interval_ms = wake_interval_ms
        self._attempts: dict[tuple[str, int, int], int] = {}
        # Workers per subscription, each a Kafka consumer in the group with its own share of the
        # partitions: partitions are handled in parallel, each one still in order.
        self._concurrency = concurrency
        # Called with (envelope, outcome) once an event's transaction has committed, before the offset
        # commit; lets a benchmark or a test observe completion without polling.
        self._on_processed = on_processed
        # The test hook (None outside tests): events named there fail as if their handler always did.
        self._poisoned = poisoned
        self._offsets = _OffsetCommitter(
            commit_every=commit_every, commit_interval_s=commit_interval_ms / 1000
        )

    async def prepare_to_stop(self) -> None:
        """Commit done offsets now and at once from here on; call before stopping the broker."""
        await self._offsets.commit_immediately_from_now_on()

    def subscribe(self, subscription: Subscription[Any]) -> None:
        async def on_message(body: bytes) -> None:
            # The broker runs without FastStream's dependency injection (see create_broker), so the
            # message comes from its context rather than from a typed parameter.
            msg: KafkaMessage = self._broker.context.get_local("message")
            await self._on_message(subscription, body, msg)

        self._broker.subscriber(
            self._names.topic(subscription.topic),
            group_id=self._names.group(self.name),
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            consumer_timeout_ms=self._wake_interval_ms,
            decoder=_raw_body,
            max_workers=self._concurrency,
            title=f"{self.name}:{subscription.topic}",
        )(on_message)

    async def _on_message(self, subscription: Subscription[Any], body: bytes, msg: KafkaMessage) -> None:
        record = msg.raw_message
        position = (record.topic, record.partition, record.offset)
        try:
            envelope = decode(body)
        except ValueError as error:
            await self._dead_letter(msg, error, attempts=1)
            return
        registered = subscription.handlers.get(envelope.type)
        if registered is None:
            # Not an event this service reacts to: nothing changes, so no transaction and no inbox row.
            self.metrics.events_consumed.labels(self.name, "skipped").inc()
            await self._offsets.mark_done(msg)
            return
        event_class, handler = registered
        try:
            event = _parse(envelope, event_class)
        except ContractError as error:  # retrying cannot make it match its contract
            await self._dead_letter(msg, error, attempts=1)
            return
        started = time.perf_counter()
        with (
            bind_correlation_id(envelope.correlation_id or str(envelope.id)),
            span(
                f"consume {envelope.type}",
                kind=SpanKind.CONSUMER,
                parent=context_from_headers(record.headers),
                attributes={
                    "messaging.destination.name": record.topic,
                    "messaging.consumer.group.name": self.name,
                },
            ),
        ):
            try:
                outcome = await self._handle(
                    event,
                    envelope,
                    handler,
                    self._names.logical_topic(record.topic),
                    record.partition,
                    record.offset,
                )
            except Exception as error:  # every failure ends as a retry or a dead letter, never a drop
                attempts = self._attempts.get(position, 0) + 1
                # A dependency that is down (Postgres restarting…) is not the event's fault: the partition
                # waits for it as long as it takes, and the event is never dead-lettered for it.
                outage = is_outage(error)
                if not outage and (isinstance(error, PermanentError) or attempts >= self._max_attempts):
                    self._attempts.pop(position, None)
                    await self._dead_letter(msg, error, attempts=attempts)
                    return
                self._attempts[position] = attempts
                self.metrics.events_consumed.labels(self.name, "retried").inc()
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
                await asyncio.sleep(min(backoff_ms, MAX_RETRY_BACKOFF_MS) / 1000)
                await msg.nack()  # seek back: the same message comes again, order kept
                return
        self._attempts.pop(position, None)
        self.metrics.handler_seconds.labels(self.name).observe(time.perf_counter() - started)
        self.metrics.events_consumed.labels(self.name, outcome).inc()
        if self._on_processed is not None:
            self._on_processed(envelope, outcome)
        await self._offsets.mark_done(msg)

    async def _handle(
        self,
        event: IntegrationEvent,
        envelope: Envelope,
        handler: EventHandler[Any, Any],
        topic: str,
        partition: int,
        offset: int,
    ) -> str:
        if self._unit_of_work is None:
            if self._poisoned is not None:
                self._poisoned.check(envelope.id)
            await handler(event, envelope, None)
            return "handled"
        async with self._unit_of_work() as uow:
            cursor = await uow.conn.execute(
                _CLAIM_EVENT, (self.name, envelope.id, envelope.type, topic, partition, offset)
            )
            if cursor.rowcount == 0:
                return "duplicate"
            # After the inbox claim: an event this consumer already handled stays a duplicate, poisoned
            # or not; a poisoned one rolls back with its inbox row, like a handler that raised.
            if self._poisoned is not None:
                self._poisoned.check(envelope.id)
            await handler(event, envelope, uow)
            return "handled"

    async def _dead_letter(self, msg: KafkaMessage, error: BaseException, *, attempts: int) -> None:
        """Move the message to `<topic>.dlq` and past it; if even that fails, retry it later."""
        try:
            await self._publish_dead_letter(msg, error, attempts=attempts)
        except Exception as publish_error:  # the broker is unreachable: never skip the message silently
            log.error(
                "dead-lettering failed; the message will be retried", extra={"error": repr(publish_error)}
            )
            await asyncio.sleep(self._retry_backoff_ms / 1000)
            await msg.nack()
            return
        await self._offsets.mark_done(msg)

    async def _publish_dead_letter(self, msg: KafkaMessage, error: BaseException, *, attempts: int) -> None:
        record = msg.raw_message
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
        self.metrics.events_consumed.labels(self.name, "dead_lettered").inc()
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


class _OffsetCommitter:
    """Commits the offsets of fully handled messages, never of one still in progress.

    Offsets are given explicitly per partition (the next offset to read), and through the Kafka consumer
    that owns the partition (with `concurrency` > 1 there is one per worker), so a commit running while the
    next message is being handled cannot cover that message. A failed commit (a rebalance took the
    partition away, or the consumer is stopping) is only logged: the partition's next owner re-reads from
    the last commit and the inbox skips what was already handled.
    """

    def __init__(self, *, commit_every: int, commit_interval_s: float) -> None:
        self._commit_every = commit_every
        self._commit_interval_s = commit_interval_s
        self._done: dict[AIOKafkaConsumer, dict[TopicPartition, int]] = {}
        self._since_commit = 0
        self._timer: asyncio.TimerHandle | None = None
        self._immediate = False
        self._background: set[asyncio.Task[None]] = set()

    async def mark_done(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        consumer: AIOKafkaConsumer = msg.consumer  # type: ignore[assignment]
        self._done.setdefault(consumer, {})[TopicPartition(record.topic, record.partition)] = (
            record.offset + 1
        )
        self._since_commit += 1
        if self._immediate or self._since_commit >= self._commit_every:
            await self.commit()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._commit_interval_s, self._commit_later)

    async def commit_immediately_from_now_on(self) -> None:
        self._immediate = True
        await self.commit()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _commit_later(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.commit())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def commit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        done, self._done, self._since_commit = self._done, {}, 0
        for consumer, offsets in done.items():
            try:
                await consumer.commit(offsets)
            except Exception as error:  # KafkaError, or the consumer already stopped
                log.warning(
                    "offset commit failed; those events may be redelivered", extra={"error": repr(error)}
                )


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


async def _raw_body(msg: KafkaMessage) -> bytes:
    # Envelopes are decoded by contracts, not by FastStream's content-type guessing. Async on purpose:
    # FastStream runs a sync decoder in a worker thread, one thread hop per message.
    return msg.body


def _truncate(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
