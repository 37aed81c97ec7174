"""Typed subscriptions on the kit's consumer fed without Kafka: it parses each event into the class
its handler was registered for, runs the handler in the unit of work with the inbox row, passes over
types nobody subscribed to, dead-letters what does not match its contract, and
handles a batch in one transaction with a failing event isolated."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserDeleted, UserEmailVerified, UserRegistered
from funmagic_contracts.topics import DLQ_ERROR_HEADER, IDENTITY_EVENTS, TASKS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.failpoints import PoisonedEvents
from funmagic_kit.testing import in_memory_consumer

from .conftest import scalar


def registered(user_id: str) -> UserRegistered:
    return UserRegistered(
        user_id=user_id, email="ada@example.com", name="Ada", method="email", registered_at=datetime.now(UTC)
    )


@pytest.fixture
def received() -> list[tuple[object, Envelope]]:
    return []


@pytest.fixture
def subscriptions(received):
    async def on_registered(event: UserRegistered, envelope: Envelope, uow: PostgresUnitOfWork) -> None:
        received.append((event, envelope))
        await uow.conn.execute("INSERT INTO orders (id) VALUES (%s)", (event.user_id,))

    async def on_deleted(event: UserDeleted, envelope: Envelope, uow: PostgresUnitOfWork) -> None:
        raise RuntimeError(f"cannot forget {event.user_id}")

    return [Subscription(IDENTITY_EVENTS).on(UserRegistered, on_registered).on(UserDeleted, on_deleted)]


async def test_a_handler_gets_the_event_parsed_into_its_class(pool, subscriptions, received) -> None:
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        envelope = await c.deliver_event(registered("user-1"))

    ((event, seen_envelope),) = received
    assert isinstance(event, UserRegistered)
    assert event.user_id == "user-1"
    assert seen_envelope.id == envelope.id
    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id = 'user-1'") == 1


async def test_a_redelivered_event_is_recognised_by_the_inbox(pool, subscriptions, received) -> None:
    envelope = Envelope.wrap(registered("user-2"))
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        first = await c.deliver(envelope)
        second = await c.deliver(envelope)

    assert (first, second) == ("handled", "duplicate")
    assert len(received) == 1
    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id = 'user-2'") == 1


async def test_a_type_nobody_subscribed_to_is_passed_over(pool, subscriptions, received) -> None:
    verified = UserEmailVerified(user_id="user-3", email="ada@example.com")
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        outcome = await c.deliver(Envelope.wrap(verified))

    assert outcome == "skipped"
    assert received == []
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 0


async def test_data_that_does_not_match_the_contract_is_dead_lettered(pool, subscriptions, received) -> None:
    good = Envelope.wrap(registered("user-4"))
    forged = good.model_copy(update={"data": {**good.data, "email": 42}})
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        outcome = await c.deliver(forged)
        ((_, _, headers),) = c.dead_letters.sent

    assert outcome == "dead_lettered"
    assert received == []
    error = dict(headers)[DLQ_ERROR_HEADER].decode()
    assert "email" in error


async def test_a_failing_handler_rolls_back_and_its_message_is_dead_lettered(pool, subscriptions) -> None:
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        outcome = await c.deliver(Envelope.wrap(UserDeleted(user_id="user-5")))

    assert outcome == "dead_lettered"
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 0


async def test_a_poisoned_event_rolls_back_with_its_inbox_row_and_one_handled_before_stays_a_duplicate(
    pool, subscriptions, received, tmp_path
) -> None:
    handled_before = Envelope.wrap(registered("user-6"))
    poisoned_now = Envelope.wrap(registered("user-7"))
    async with in_memory_consumer(
        "kit-tests",
        subscriptions,
        unit_of_work=lambda: PostgresUnitOfWork(pool),
        poisoned=PoisonedEvents(tmp_path),
    ) as c:
        assert await c.deliver(handled_before) == "handled"
        for envelope in (handled_before, poisoned_now):
            (tmp_path / str(envelope.id)).touch()

        assert await c.deliver(handled_before) == "duplicate"
        assert await c.deliver(poisoned_now) == "dead_lettered"
        assert (
            await scalar(pool, "SELECT count(*) FROM processed_events WHERE event_id = %s", poisoned_now.id)
            == 0
        )

        (tmp_path / str(poisoned_now.id)).unlink()
        assert await c.deliver(poisoned_now) == "handled"

    assert [event.user_id for event, _ in received] == ["user-6", "user-7"]
    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id IN ('user-6', 'user-7')") == 2


async def test_a_batch_with_a_failing_event_commits_the_others_and_dead_letters_only_that_one(
    pool, subscriptions, received
) -> None:
    first, doomed, last = (
        Envelope.wrap(registered("user-8")),
        Envelope.wrap(UserDeleted(user_id="user-9")),
        Envelope.wrap(registered("user-10")),
    )
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        outcomes = await c.deliver_batch([first, doomed, last, first])

    assert outcomes == ["handled", "dead_lettered", "handled", "duplicate"]
    # The batch's transaction rolled back; the events then ran one at a time: each effect exactly once.
    assert [event.user_id for event, _ in received] == ["user-8", "user-8", "user-10"]
    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id IN ('user-8', 'user-10')") == 2
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 2


async def test_a_batch_claims_its_inbox_rows_in_one_transaction(pool, subscriptions, received) -> None:
    envelopes = [Envelope.wrap(registered(f"user-{n}")) for n in range(11, 16)]
    async with in_memory_consumer(
        "kit-tests", subscriptions, unit_of_work=lambda: PostgresUnitOfWork(pool)
    ) as c:
        outcomes = await c.deliver_batch([*envelopes, envelopes[0]])

    assert outcomes == ["handled"] * 5 + ["duplicate"]
    assert [event.user_id for event, _ in received] == [f"user-{n}" for n in range(11, 16)]
    assert await scalar(pool, "SELECT count(DISTINCT xmin::text) FROM processed_events") == 1


def test_a_handler_is_registered_only_on_the_topic_its_event_travels_on() -> None:
    async def handler(event: UserRegistered, envelope: Envelope, uow: object) -> None:
        return None

    with pytest.raises(ValueError, match=r"identity\.events"):
        Subscription(TASKS_EVENTS).on(UserRegistered, handler)


def test_an_event_type_gets_one_handler_per_subscription() -> None:
    async def handler(event: UserRegistered, envelope: Envelope, uow: object) -> None:
        return None

    subscription = Subscription(IDENTITY_EVENTS).on(UserRegistered, handler)
    with pytest.raises(ValueError, match="already"):
        subscription.on(UserRegistered, handler)
