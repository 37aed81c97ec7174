"""The Kafka reactions of credits, end to end through the kit's consumer, real Kafka and real Postgres.

Each test has its own topics (6 partitions) and consumer group; the handlers are the service's own
(`build(...).parts.subscriptions`), only pointed at the private topics.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from credits_test_support import (
    SIGNUP_BONUS,
    PrivateTopics,
    consumed,
    credits_service,
    message_count,
    on_private_topics,
    produce,
    rows,
    run,
    running_consumer,
    scalar,
    wait_until_consumed,
)
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import Envelope, decode
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.tasks.events import TaskCompleted, TaskFailed, TaskOutput, TaskRequested
from funmagic_contracts.topics import IDENTITY_EVENTS, TASKS_EVENTS, dead_letter_topic
from funmagic_credits.bootstrap import Credits
from funmagic_credits.domain.ledger import GrantCredits
from funmagic_kit.consumer import Subscription


@pytest.fixture
def credits(pool: AsyncConnectionPool) -> Credits:
    return credits_service(pool)


def subscriptions(credits: Credits, topics: PrivateTopics) -> Sequence[Subscription[Any]]:
    identity, tasks = credits.parts.subscriptions
    assert (identity.topic, tasks.topic) == (IDENTITY_EVENTS.name, TASKS_EVENTS.name)
    return on_private_topics(credits, topics)


def new_id() -> str:
    return str(uuid.uuid4())


def user_registered(user: str) -> Envelope:
    return Envelope.wrap(
        UserRegistered(
            user_id=user,
            email=f"{user}@example.test",
            name="Test User",
            method="email",
            registered_at=datetime.now(UTC),
        )
    )


def task_requested(user: str, task: str, price: int) -> Envelope:
    return Envelope.wrap(
        TaskRequested(
            task_id=task, user_id=user, tool_id="tool-1", tool_slug="upscale", step_ids=("s1",), price=price
        )
    )


def task_completed(user: str, task: str, charged: int) -> Envelope:
    return Envelope.wrap(
        TaskCompleted(task_id=task, user_id=user, output=TaskOutput(), charged_credits=charged)
    )


def task_failed(user: str, task: str, charged: int = 0) -> Envelope:
    return Envelope.wrap(
        TaskFailed(task_id=task, user_id=user, error_code="boom", error_message="", charged_credits=charged)
    )


async def balances(pool: AsyncConnectionPool, user: str) -> tuple[int, int, int]:
    (row,) = await rows(
        pool, "SELECT balance, reserved_balance, lifetime_spent FROM credits WHERE user_id = %s", user
    )
    return row["balance"], row["reserved_balance"], row["lifetime_spent"]


async def ledger_types(pool: AsyncConnectionPool, user: str) -> list[str]:
    return [
        r["event_type"]
        for r in await rows(
            pool, "SELECT event_type FROM ledger_events WHERE user_id = %s ORDER BY version", user
        )
    ]


async def published(pool: AsyncConnectionPool, user: str) -> list[Envelope]:
    """What credits will publish about the user (the outbox: nothing relays it in these tests)."""
    return [
        decode(bytes(r["payload"]))
        for r in await rows(pool, "SELECT payload FROM outbox WHERE key = %s ORDER BY id", user)
    ]


async def assert_nothing_dead_lettered(kafka: str, topics: PrivateTopics, consumer: Any) -> None:
    assert consumed(consumer, "dead_lettered") == 0
    assert consumed(consumer, "retried") == 0
    for topic in (topics.identity, topics.tasks):
        assert await message_count(kafka, dead_letter_topic(topic)) == 0


async def test_a_registration_grants_the_signup_bonus_once_however_often_it_arrives(
    kafka, pool, credits, producer, private_topics
) -> None:
    user = new_id()
    registered = user_registered(user)
    registered_again = user_registered(user)  # a different event for the same user

    async with running_consumer(kafka, credits, producer, subscriptions(credits, private_topics)) as consumer:
        await produce(producer, private_topics.identity, [registered, registered, registered])
        await wait_until_consumed(consumer, 3, what="the same registration three times")
        await produce(producer, private_topics.identity, [registered_again])
        await wait_until_consumed(consumer, 4, what="a second registration of the user")

    assert (consumed(consumer, "handled"), consumed(consumer, "duplicate")) == (2, 2)
    assert await ledger_types(pool, user) == ["Granted"]
    assert await balances(pool, user) == (SIGNUP_BONUS, 0, 0)
    (granted,) = await published(pool, user)
    assert granted.type == "CreditsGranted"
    assert granted.data["amount"] == SIGNUP_BONUS
    assert granted.data["reason"] == "signup_bonus"
    assert granted.causation_id == str(registered.id)
    assert granted.correlation_id == registered.correlation_id
    await assert_nothing_dead_lettered(kafka, private_topics, consumer)


async def test_the_same_task_request_reserves_once(kafka, pool, credits, producer, private_topics) -> None:
    user, redelivered, resent = new_id(), new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))
    same_envelope = task_requested(user, redelivered, 10)
    # Three different envelopes (the tasks service retried its publish) for one task.
    resends = [task_requested(user, resent, 20) for _ in range(3)]

    async with running_consumer(kafka, credits, producer, subscriptions(credits, private_topics)) as consumer:
        await produce(producer, private_topics.tasks, [same_envelope] * 3 + resends)
        await wait_until_consumed(consumer, 6, what="six task requests")

    assert (consumed(consumer, "handled"), consumed(consumer, "duplicate")) == (4, 2)
    assert await ledger_types(pool, user) == ["Granted", "Reserved", "Reserved"]
    assert await balances(pool, user) == (70, 30, 0)
    reserved = [e for e in await published(pool, user) if e.type == "CreditsReserved"]
    assert sorted(e.data["reservation_id"] for e in reserved) == sorted([redelivered, resent])
    await assert_nothing_dead_lettered(kafka, private_topics, consumer)


async def test_a_task_request_replayed_after_its_task_ended_holds_nothing(
    kafka, pool, credits, producer, private_topics
) -> None:
    # The request was dead-lettered, the task timed out (or was cancelled) meanwhile, and an admin replays
    # the dead letter: it arrives after the task's end, with nothing left to settle the hold it would make.
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))

    async with running_consumer(kafka, credits, producer, subscriptions(credits, private_topics)) as consumer:
        await produce(
            producer, private_topics.tasks, [task_failed(user, task), task_requested(user, task, 30)]
        )
        await wait_until_consumed(consumer, 2, what="a task's failure, then its request")

    assert await balances(pool, user) == (100, 0, 0), "nothing held for an ended task"
    assert await ledger_types(pool, user) == ["Granted", "ReservationClosed"]
    assert [e.type for e in await published(pool, user)] == ["CreditsGranted"]
    await assert_nothing_dead_lettered(kafka, private_topics, consumer)


async def test_task_outcomes_spend_what_was_used_and_release_the_rest(
    kafka, pool, credits, producer, private_topics
) -> None:
    user = new_id()
    failed, completed, partly = new_id(), new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))
    # One task's events share its key (the task id), hence a partition, hence their order.
    envelopes = [
        task_requested(user, failed, 30),
        task_failed(user, failed),
        task_requested(user, completed, 20),
        task_completed(user, completed, 20),
        task_requested(user, partly, 40),
        task_completed(user, partly, 15),
    ]

    async with running_consumer(kafka, credits, producer, subscriptions(credits, private_topics)) as consumer:
        await produce(producer, private_topics.tasks, envelopes)
        await wait_until_consumed(consumer, len(envelopes), what="three tasks requested and ended")

    assert await balances(pool, user) == (100 - 20 - 15, 0, 35)
    transactions = await rows(
        pool,
        "SELECT reference_id, type, amount FROM credit_transactions "
        "WHERE user_id = %s AND reference_id <> 'start'",
        user,
    )
    assert {(t["reference_id"], t["type"], t["amount"]) for t in transactions} == {
        (failed, "refund", 30),  # a failed task gives everything back
        (completed, "spend", -20),  # a completed one spends what it charged
        (partly, "spend", -15),  # a partly done one spends only what it used…
        (partly, "refund", 25),  # …and releases the rest
    }
    assert len(transactions) == 4
    await assert_nothing_dead_lettered(kafka, private_topics, consumer)


async def test_a_task_above_the_balance_is_rejected_and_the_rejection_published(
    kafka, pool, credits, producer, private_topics
) -> None:
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 10, "promotion", "start"))
    request = task_requested(user, task, 11)

    async with running_consumer(kafka, credits, producer, subscriptions(credits, private_topics)) as consumer:
        await produce(producer, private_topics.tasks, [request, task_failed(user, task)])
        await wait_until_consumed(consumer, 2, what="a task request above the balance and its failure")

    assert await balances(pool, user) == (10, 0, 0)
    # The failure settles nothing held, and records that the task ended (a late request holds nothing).
    assert await ledger_types(pool, user) == ["Granted", "ReservationRejected", "ReservationClosed"]
    rejection = (await published(pool, user))[-1]
    assert rejection.type == "CreditsReservationRejected"
    assert rejection.subject == user
    assert rejection.data == {
        "user_id": user,
        "reservation_id": task,
        "amount": 11,
        "reason": "insufficient_credits",
    }
    assert rejection.causation_id == str(request.id)
    await assert_nothing_dead_lettered(kafka, private_topics, consumer)


async def test_200_requests_over_all_partitions_and_six_workers_reserve_exactly_the_balance(
    kafka, pool, credits, producer, private_topics
) -> None:
    user = new_id()
    await run(pool, GrantCredits(user, 50, "promotion", "start"))
    requests = [task_requested(user, new_id(), 1) for _ in range(200)]

    partitions = await produce(producer, private_topics.tasks, requests)
    assert partitions == set(range(6)), "the requests are spread over every partition"
    async with running_consumer(
        kafka, credits, producer, subscriptions(credits, private_topics), concurrency=6
    ) as consumer:
        await wait_until_consumed(consumer, 200, outcomes=("handled",), what="200 task requests", timeout=120)

    types = await ledger_types(pool, user)
    assert types.count("Reserved") == 50
    assert types.count("ReservationRejected") == 150
    assert await balances(pool, user) == (0, 50, 0)
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 200
    published_types = [e.type for e in await published(pool, user)]
    assert published_types.count("CreditsReserved") == 50
    assert published_types.count("CreditsReservationRejected") == 150
    await assert_nothing_dead_lettered(kafka, private_topics, consumer)
