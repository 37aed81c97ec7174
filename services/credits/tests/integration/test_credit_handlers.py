"""The Kafka reactions of credits, fast: the service's own subscriptions (`build(...).parts`) fed without
Kafka, through the kit's consumer (parsing, inbox, dead letters) and the real Postgres unit of
work. The same reactions run on real Kafka in test_reactions.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from credits_test_support import SIGNUP_BONUS, credits_service, credits_settings, rows, run
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import Envelope, decode
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.tasks.events import (
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskOutput,
    TaskRequested,
)
from funmagic_contracts.topics import CREDITS_EVENTS
from funmagic_credits.bootstrap import Credits
from funmagic_credits.domain.ledger import GrantCredits
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer

TaskEnded = TaskCompleted | TaskFailed | TaskCancelled


def new_id() -> str:
    return str(uuid.uuid4())


def registered(user: str) -> UserRegistered:
    return UserRegistered(
        user_id=user,
        email=f"{user}@example.test",
        name="Ada",
        method="email",
        registered_at=datetime.now(UTC),
    )


def requested(user: str, task: str, price: int) -> TaskRequested:
    return TaskRequested(
        task_id=task, user_id=user, tool_id="tool-1", tool_slug="upscale", step_ids=("s1",), price=price
    )


def ended(kind: type[TaskEnded], user: str, task: str, charged: int) -> TaskEnded:
    if kind is TaskCompleted:
        return TaskCompleted(task_id=task, user_id=user, output=TaskOutput(), charged_credits=charged)
    if kind is TaskFailed:
        return TaskFailed(
            task_id=task, user_id=user, error_code="boom", error_message="", charged_credits=charged
        )
    return TaskCancelled(task_id=task, user_id=user, charged_credits=charged)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def credits(pool: AsyncConnectionPool, clock: ManualClock) -> Credits:
    return credits_service(pool, clock=clock)


@pytest.fixture
async def consumer(credits: Credits) -> AsyncIterator[InMemoryConsumer]:
    async with in_memory_consumer(
        "credits", credits.parts.subscriptions, unit_of_work=credits.parts.unit_of_work
    ) as consumer:
        yield consumer


async def balances(pool: AsyncConnectionPool, user: str) -> tuple[int, int, int]:
    (row,) = await rows(
        pool, "SELECT balance, reserved_balance, lifetime_spent FROM credits WHERE user_id = %s", user
    )
    return row["balance"], row["reserved_balance"], row["lifetime_spent"]


async def ledger_events(pool: AsyncConnectionPool, user: str) -> list[dict]:
    return await rows(
        pool,
        "SELECT event_id, event_type, data, occurred_at FROM ledger_events "
        "WHERE user_id = %s ORDER BY version",
        user,
    )


async def outbox(pool: AsyncConnectionPool, user: str) -> list[tuple[str, Envelope]]:
    """(topic, envelope) of what credits will publish about the user, in order."""
    return [
        (r["topic"], decode(bytes(r["payload"])))
        for r in await rows(pool, "SELECT topic, payload FROM outbox WHERE key = %s ORDER BY id", user)
    ]


async def test_a_task_request_holds_its_price_and_publishes_credits_reserved_under_the_ledger_event_id(
    pool, consumer, clock
) -> None:
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))

    request = await consumer.deliver_event(requested(user, task, 30))

    assert await balances(pool, user) == (70, 30, 0)
    granted, reserved = await ledger_events(pool, user)
    assert (granted["event_type"], reserved["event_type"]) == ("Granted", "Reserved")
    assert reserved["data"]["reservation_id"] == task
    (_, published_grant), (topic, envelope) = await outbox(pool, user)
    assert published_grant.id == granted["event_id"]
    assert topic == CREDITS_EVENTS.name
    assert envelope.type == "CreditsReserved"
    assert envelope.id == reserved["event_id"], "the envelope id is the ledger event's id"
    assert envelope.time == reserved["occurred_at"] == clock.now()
    assert envelope.subject == user
    assert envelope.data == {
        "user_id": user,
        "reservation_id": task,
        "amount": 30,
        "balance_after": 70,
        "reserved_after": 30,
    }
    assert envelope.causation_id == str(request.id)
    assert envelope.correlation_id == request.correlation_id


async def test_a_redelivered_task_request_is_a_duplicate_and_the_balance_stays(pool, consumer) -> None:
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))
    request = Envelope.wrap(requested(user, task, 30))

    first = await consumer.deliver(request)
    second = await consumer.deliver(request)

    assert (first, second) == ("handled", "duplicate")
    assert await balances(pool, user) == (70, 30, 0)
    assert [e["event_type"] for e in await ledger_events(pool, user)] == ["Granted", "Reserved"]
    assert [e.type for _, e in await outbox(pool, user)] == ["CreditsGranted", "CreditsReserved"]


async def test_a_request_of_the_same_task_in_another_envelope_holds_nothing_more(pool, consumer) -> None:
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))

    await consumer.deliver_event(requested(user, task, 30))
    await consumer.deliver_event(requested(user, task, 30))  # the tasks service published it again

    assert await balances(pool, user) == (70, 30, 0)
    assert [e["event_type"] for e in await ledger_events(pool, user)] == ["Granted", "Reserved"]


@pytest.mark.parametrize(
    ("ending", "charged", "settled", "expected"),
    [
        (TaskCompleted, 40, [("CreditsSpent", 40)], (60, 0, 40)),
        (TaskCompleted, 15, [("CreditsSpent", 15), ("CreditsReleased", 25)], (85, 0, 15)),
        (TaskFailed, 0, [("CreditsReleased", 40)], (100, 0, 0)),
        (TaskCancelled, 10, [("CreditsSpent", 10), ("CreditsReleased", 30)], (90, 0, 10)),
    ],
)
async def test_a_task_ending_spends_what_it_charged_and_releases_the_rest(
    pool,
    consumer,
    ending: type[TaskEnded],
    charged: int,
    settled: list[tuple[str, int]],
    expected: tuple[int, int, int],
) -> None:
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))
    await consumer.deliver_event(requested(user, task, 40))

    end = await consumer.deliver_event(ended(ending, user, task, charged))

    assert await balances(pool, user) == expected
    published = [e for _, e in await outbox(pool, user)][2:]
    assert [(e.type, e.data["amount"]) for e in published] == settled
    assert all(e.data["reservation_id"] == task for e in published)
    assert all(e.causation_id == str(end.id) for e in published)


async def test_a_task_ending_twice_settles_once(pool, consumer) -> None:
    user, task = new_id(), new_id()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))
    await consumer.deliver_event(requested(user, task, 40))

    await consumer.deliver_event(ended(TaskCompleted, user, task, 15))
    await consumer.deliver_event(ended(TaskFailed, user, task, 0))

    assert await balances(pool, user) == (85, 0, 15)
    assert [e["event_type"] for e in await ledger_events(pool, user)] == [
        "Granted",
        "Reserved",
        "Spent",
        "Released",
    ]


async def test_two_registrations_of_a_user_in_different_envelopes_grant_one_bonus(pool, consumer) -> None:
    user = new_id()

    first = await consumer.deliver(Envelope.wrap(registered(user)))
    second = await consumer.deliver(Envelope.wrap(registered(user)))

    assert (first, second) == ("handled", "handled"), "two envelopes: the inbox cannot tell them apart"
    assert await balances(pool, user) == (SIGNUP_BONUS, 0, 0)
    (granted,) = await ledger_events(pool, user)
    assert granted["data"]["reason"] == "signup_bonus"
    ((_, envelope),) = await outbox(pool, user)
    assert envelope.type == "CreditsGranted"
    assert envelope.data["amount"] == SIGNUP_BONUS


async def test_no_bonus_is_granted_when_it_is_turned_off(pool) -> None:
    credits = credits_service(pool, settings=credits_settings(SIGNUP_BONUS_CREDITS="0"))
    user = new_id()
    async with in_memory_consumer(
        "credits", credits.parts.subscriptions, unit_of_work=credits.parts.unit_of_work
    ) as consumer:
        await consumer.deliver_event(registered(user))

    assert await ledger_events(pool, user) == []
    assert await outbox(pool, user) == []
