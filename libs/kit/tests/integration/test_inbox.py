"""The inbox: an event delivered more than once changes state once."""

from funmagic_contracts.envelope import encode
from funmagic_kit.consumer import Subscription
from funmagic_kit.testing import adhoc_event_class

from .conftest import (
    consumed,
    make_envelope,
    running_consumer,
    scalar,
    typed_subscription,
    wait_until_consumed,
)


async def increment_counter(event, envelope, uow) -> None:
    await uow.conn.execute(
        "INSERT INTO counters (name, value) VALUES (%s, 1) "
        "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
        (envelope.subject,),
    )


async def test_the_same_event_delivered_twice_changes_state_once(stack, pool, producer, topic) -> None:
    envelope = make_envelope("CounterIncremented", subject="counter-a")
    raw = encode(envelope)
    for _ in range(2):
        await producer.send_and_wait(topic, raw, key=b"counter-a")
    subscription = typed_subscription(topic, {"CounterIncremented": increment_counter})

    async with running_consumer(stack, pool, producer, subscription) as consumer:
        await wait_until_consumed(
            consumer, 2, outcomes=("handled", "duplicate"), what="both deliveries consumed"
        )

    assert await scalar(pool, "SELECT value FROM counters WHERE name = 'counter-a'") == 1
    assert await scalar(pool, "SELECT count(*) FROM processed_events WHERE event_id = %s", envelope.id) == 1
    assert consumed(consumer, "handled") == 1
    assert consumed(consumer, "duplicate") == 1


async def test_a_handler_that_fails_rolls_back_its_inbox_row_and_is_retried(
    stack, pool, producer, topic
) -> None:
    calls = []

    async def fails_once(event, envelope, uow) -> None:
        await increment_counter(event, envelope, uow)
        calls.append(envelope.id)
        if len(calls) == 1:
            raise ConnectionError("provider unavailable")

    await producer.send_and_wait(
        topic, encode(make_envelope("CounterIncremented", "counter-b")), key=b"counter-b"
    )
    subscription = typed_subscription(topic, {"CounterIncremented": fails_once})

    async with running_consumer(stack, pool, producer, subscription, retry_backoff_ms=10) as consumer:
        await wait_until_consumed(consumer, 1, what="the retried event handled")

    assert len(calls) == 2
    assert consumed(consumer, "retried") == 1
    # The failed attempt's increment was rolled back with its inbox row: the effect happened once.
    assert await scalar(pool, "SELECT value FROM counters WHERE name = 'counter-b'") == 1


async def test_an_event_type_without_a_handler_is_passed_over_without_a_transaction(
    stack, pool, producer, topic
) -> None:
    await producer.send_and_wait(topic, encode(make_envelope("SomethingElseHappened", "c")), key=b"c")
    await producer.send_and_wait(topic, encode(make_envelope("CounterIncremented", "c")), key=b"c")
    subscription = typed_subscription(topic, {"CounterIncremented": increment_counter})

    async with running_consumer(stack, pool, producer, subscription) as consumer:
        await wait_until_consumed(consumer, 1, what="the handled event after the skipped one")

    assert consumed(consumer, "skipped") == 1
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 1
    assert await scalar(pool, "SELECT value FROM counters WHERE name = 'c'") == 1


async def test_an_event_its_handler_is_not_for_is_passed_over_without_a_transaction(
    stack, pool, producer, topic
) -> None:
    """`on(…, when=…)`: the events the predicate refuses are skipped like a type without a handler."""
    await producer.send_and_wait(topic, encode(make_envelope("CounterIncremented", "other")), key=b"c")
    await producer.send_and_wait(topic, encode(make_envelope("CounterIncremented", "mine")), key=b"c")
    subscription = Subscription(topic).on(
        adhoc_event_class("CounterIncremented", topic),
        increment_counter,
        when=lambda event: event.subject == "mine",
    )

    async with running_consumer(stack, pool, producer, subscription) as consumer:
        await wait_until_consumed(consumer, 1, what="the event the handler is for")

    assert consumed(consumer, "skipped") == 1
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 1
    assert await scalar(pool, "SELECT count(*) FROM counters WHERE name = 'other'") == 0
    assert await scalar(pool, "SELECT value FROM counters WHERE name = 'mine'") == 1
