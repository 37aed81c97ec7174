"""Helpers shared by the credits integration tests: the service as bootstrap builds it (Stripe's API stood
in for), run ledger commands, read tables, wait on conditions, run a credits consumer over private topics."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import Envelope, encode, kafka_headers, kafka_key
from funmagic_contracts.topics import IDENTITY_EVENTS, TASKS_EVENTS
from funmagic_credits.application.ports import CheckoutSession, StoredEvent
from funmagic_credits.bootstrap import Credits, build
from funmagic_credits.config import CreditsSettings
from funmagic_credits.domain.commerce import CreditPackage
from funmagic_credits.domain.ledger import (
    AdjustCredits,
    GrantCredits,
    LedgerRuleBroken,
    RecordPurchase,
    ReserveCredits,
    SettleReservation,
)
from funmagic_kit.clock import Clock
from funmagic_kit.consumer import EventConsumer, Subscription
from funmagic_kit.metrics import Metrics
from funmagic_kit.settings import load_settings
from funmagic_kit.testing import wait_until

STRIPE_WEBHOOK_SECRET = "whsec_credits_tests"
SIGNUP_BONUS = 50


@dataclass(frozen=True)
class PrivateTopics:
    identity: str
    tasks: str


def credits_settings(**env: str) -> CreditsSettings:
    """Settings as `build` reads them; nothing here is dialled (Stripe is a stand-in unless a test says)."""
    return load_settings(
        CreditsSettings,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9"),
            "REDIS_URL": "redis://127.0.0.1:9",
            "INTERNAL_API_TOKEN": "credits-tests-internal-token-0123456789",
            "AUTH_JWKS_URL": "http://127.0.0.1:9/jwks",
            "DATABASE_URL": "postgresql://unused",
            "SIGNUP_BONUS_CREDITS": str(SIGNUP_BONUS),
            "STRIPE_API_BASE": "http://127.0.0.1:9",
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            **env,
        },
    )


@dataclass
class FakePayments:
    """Stripe's API as credits sees it: every Checkout Session asked for is created and recorded."""

    created: list[dict[str, Any]] = field(default_factory=list)

    async def create_checkout_session(self, package: CreditPackage, **request: Any) -> CheckoutSession:
        self.created.append({"package": package, **request})
        session_id = f"cs_test_{uuid.uuid4().hex}"
        return CheckoutSession(
            id=session_id,
            url=f"https://checkout.example.test/{session_id}",
            amount_total=package.price_minor,
            currency=package.currency.lower(),
        )


def credits_service(
    pool: AsyncConnectionPool,
    *,
    clock: Clock | None = None,
    payments: FakePayments | None = None,
    settings: CreditsSettings | None = None,
) -> Credits:
    """The service as bootstrap builds it, with Stripe's API stood in for."""
    return build(
        settings or credits_settings(),
        pool=pool,
        http=None,
        clock=clock,
        payments=payments or FakePayments(),
    )


async def run(
    pool: AsyncConnectionPool, command: Any, caused_by: Envelope | None = None
) -> list[StoredEvent]:
    """One ledger command in its own transaction, as the HTTP entrypoint runs it."""
    return await credits_service(pool).ledger.apply(command, caused_by=caused_by)


async def scalar(pool: AsyncConnectionPool, sql: str, *params: object) -> Any:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
        return next(iter(row.values())) if row else None


async def rows(pool: AsyncConnectionPool, sql: str, *params: object) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        return await (await conn.execute(sql, params)).fetchall()


async def projections(pool: AsyncConnectionPool, *, with_updated_at: bool = False) -> dict[str, list]:
    """The full contents of both projections, in a stable order."""
    credit_columns = (
        "user_id, balance, reserved_balance, lifetime_earned, lifetime_spent, adjustments, version"
        + (", updated_at" if with_updated_at else "")
    )
    return {
        "credits": await rows(pool, f"SELECT {credit_columns} FROM credits ORDER BY user_id"),
        "credit_transactions": await rows(pool, "SELECT * FROM credit_transactions ORDER BY position"),
    }


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, timeout: float = 60.0, what: str = ""
) -> None:
    """Poll a condition until it holds; fail naming `what` after `timeout` seconds."""
    await wait_until(condition, timeout=timeout, what=what, interval=0.02)


# --- activity --------------------------------------------------------------------------------------------


async def every_kind_of_activity(pool: AsyncConnectionPool, user: str) -> None:
    """One of each: bonus, purchase, held-and-spent, partly used, rejected, refunded, adjusted both ways."""
    await run(pool, GrantCredits(user, 50, "signup_bonus", user))
    await run(pool, RecordPurchase(user, 100, "pkg-1", f"cs_{user}", 999, "USD"))
    await run(pool, ReserveCredits(user, "task-a", 30))
    await run(pool, SettleReservation(user, "task-a", 30, "completed"))
    await run(pool, ReserveCredits(user, "task-b", 40))
    await run(pool, SettleReservation(user, "task-b", 15, "failed"))
    await run(pool, ReserveCredits(user, "task-c", 10_000))  # rejected
    await run(pool, ReserveCredits(user, "task-d", 20))
    await run(pool, SettleReservation(user, "task-d", 0, "cancelled"))
    await run(pool, ReserveCredits(user, "task-e", 0))  # a free task
    await run(pool, SettleReservation(user, "task-e", 0, "completed"))
    await run(pool, AdjustCredits(user, 7, "admin-1", "goodwill", "adj-1"))
    await run(pool, AdjustCredits(user, -12, "admin-1", "chargeback", "adj-2"))
    await run(pool, ReserveCredits(user, "task-f", 25))  # left open


async def random_activity(pool: AsyncConnectionPool, users: list[str], seed: int, steps: int = 150) -> None:
    """Random commands over a few users, each user's in order, different users concurrently."""
    rng = random.Random(seed)
    plans: dict[str, list[Any]] = {user: [] for user in users}
    for step in range(steps):
        user = rng.choice(users)
        task = f"task-{rng.randrange(12)}"
        kind = rng.randrange(5)
        if kind == 0:
            command: Any = GrantCredits(user, rng.randint(1, 40), "promotion", f"promo-{rng.randrange(8)}")
        elif kind == 1:
            command = RecordPurchase(user, rng.randint(1, 80), "pkg", f"cs-{step}", 500, "EUR")
        elif kind == 2:
            command = ReserveCredits(user, task, rng.randint(0, 60))
        elif kind == 3:
            command = SettleReservation(user, task, rng.randint(0, 80), "completed")
        else:
            command = AdjustCredits(user, rng.choice([-30, -5, 3, 20]), "admin", "fix", f"adj-{step}")
        plans[user].append(command)

    async def play(commands: list[Any]) -> None:
        for command in commands:
            with suppress(LedgerRuleBroken):  # refused: nothing recorded
                await run(pool, command)

    await asyncio.gather(*(play(plan) for plan in plans.values()))


# --- Kafka -----------------------------------------------------------------------------------------------


async def produce(producer: AIOKafkaProducer, topic: str, envelopes: Sequence[Envelope]) -> set[int]:
    """Send envelopes as the outbox relay would (value, key = subject, type/version headers); returns the
    partitions they landed in."""
    futures = [
        await producer.send(topic, value=encode(e), key=kafka_key(e), headers=kafka_headers(e))
        for e in envelopes
    ]
    return {metadata.partition for metadata in await asyncio.gather(*futures)}


def consumed(consumer: EventConsumer, outcome: str) -> int:
    """How many events the consumer finished with this outcome, read from its own registry."""
    value = consumer.metrics.registry.get_sample_value(
        "funmagic_events_consumed_total", {"consumer": consumer.name, "outcome": outcome}
    )
    return int(value or 0)


async def wait_until_consumed(
    consumer: EventConsumer,
    expected: int,
    *,
    outcomes: tuple[str, ...] = ("handled", "duplicate"),
    what: str,
    timeout: float = 60.0,
) -> None:
    async def enough() -> bool:
        return sum(consumed(consumer, o) for o in (*outcomes, "dead_lettered")) >= expected

    await wait_for(enough, what=what, timeout=timeout)


def on_private_topics(credits: Credits, topics: PrivateTopics) -> list[Subscription[Any]]:
    """The service's own subscriptions and handlers, moved to this test's private topics: each event class
    is re-homed on its private topic (same type and fields), as the consumer registers handlers by class."""
    private = {IDENTITY_EVENTS.name: topics.identity, TASKS_EVENTS.name: topics.tasks}
    moved: list[Subscription[Any]] = []
    for subscription in credits.parts.subscriptions:
        topic = private[subscription.topic]
        retargeted: Subscription[Any] = Subscription(topic)
        for event_class, handler in subscription.handlers.values():
            rehomed = type(event_class.__name__, (event_class,), {"__module__": __name__})
            rehomed.TOPIC = topic
            retargeted.on(rehomed, handler)
        moved.append(retargeted)
    return moved


@asynccontextmanager
async def running_consumer(
    kafka: str,
    credits: Credits,
    producer: AIOKafkaProducer,
    subscriptions: Sequence[Subscription[Any]],
    **options: Any,
) -> AsyncIterator[EventConsumer]:
    """An EventConsumer in a fresh consumer group, the way the runtime builds it for the service."""
    consumer = EventConsumer(
        name=f"credits-test-{uuid.uuid4().hex[:8]}",
        bootstrap_servers=kafka,
        producer=producer,
        metrics=Metrics("credits-tests"),
        unit_of_work=credits.parts.unit_of_work,
        retry_backoff_ms=20,
        **options,
    )
    for subscription in subscriptions:
        consumer.subscribe(subscription)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def message_count(kafka: str, topic: str) -> int:
    """How many records a topic holds over all its partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    assert partitions, f"topic {topic} has no partitions"
    reader = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None)
    await reader.start()
    try:
        ends = await reader.end_offsets(partitions)
        starts = await reader.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await reader.stop()
