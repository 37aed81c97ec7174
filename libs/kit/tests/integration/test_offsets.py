"""Offsets of handled events are committed, so a restarted consumer group resumes where it stopped."""

import uuid

import pytest

from funmagic_contracts.envelope import encode

from .conftest import consumed, make_envelope, running_consumer, typed_subscription, wait_until_consumed
from .test_inbox import increment_counter


async def send_increments(producer, topic: str, numbers: range) -> None:
    """One event per number, over seven counters and as many keys, so several partitions are used."""
    for n in numbers:
        envelope = make_envelope("CounterIncremented", f"c{n % 7}")
        await producer.send_and_wait(topic, encode(envelope), key=b"k%d" % n)


@pytest.mark.parametrize("workers", [1, 3])
async def test_a_consumer_group_restarted_after_a_clean_stop_reads_nothing_twice(
    stack, pool, producer, topic, workers
) -> None:
    group = f"resume-{uuid.uuid4().hex[:8]}"
    subscription = typed_subscription(topic, {"CounterIncremented": increment_counter})
    await send_increments(producer, topic, range(30))

    async with running_consumer(
        stack, pool, producer, subscription, name=group, concurrency=workers
    ) as first:
        await wait_until_consumed(first, 30, what="the first 30 events")

    await send_increments(producer, topic, range(30, 40))
    async with running_consumer(
        stack, pool, producer, subscription, name=group, concurrency=workers
    ) as second:
        await wait_until_consumed(second, 10, what="the 10 new events")

    assert consumed(second, "handled") == 10
    assert consumed(second, "duplicate") == 0, "the first run's offsets were not committed"
