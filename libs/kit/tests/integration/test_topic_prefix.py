"""Two deployments share one Kafka cluster: with different `KAFKA_TOPIC_PREFIX`es, each one's outbox
publishes to its own topics and each one's consumers (same service name, same logical topic) read only
its own events, dead letters included."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.topics import DLQ_ORIGINAL_TOPIC_HEADER, dead_letter_topic
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.kafka import KafkaNames
from funmagic_kit.metrics import Metrics
from funmagic_kit.outbox import OutboxRelay, add_to_outbox

from .conftest import (
    fresh_database,
    make_envelope,
    message_count,
    read_all,
    running_consumer,
    scalar,
    typed_subscription,
    wait_until_consumed,
)


async def record_arrival(event, envelope, uow) -> None:
    await uow.conn.execute(
        "INSERT INTO received (key, seq) VALUES (%s, %s)", (envelope.subject, envelope.data["seq"])
    )


async def always_fails(event, envelope, uow) -> None:
    raise ValueError("this event can never be handled")


@asynccontextmanager
async def deployment(stack, producer, names: KafkaNames) -> AsyncIterator[tuple[str, AsyncConnectionPool]]:
    """One deployment's database with its outbox relay running under its prefix."""
    async with fresh_database(stack) as url:
        pool = await create_pool(url, min_size=1, max_size=4)
        relay = OutboxRelay(
            dsn=url, pool=pool, producer=producer, metrics=Metrics("kit-tests"), failpoints=Failpoints(""),
            names=names,
        )  # fmt: skip
        relay_task = asyncio.create_task(relay.run())
        try:
            yield url, pool
        finally:
            relay.stop()
            await relay_task
            await pool.close()


async def publish(pool, topic: str, event_type: str, subject: str, seq: int) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        await add_to_outbox(uow.conn, [(topic, make_envelope(event_type, subject, {"seq": seq}))])


async def test_two_prefixed_deployments_on_one_cluster_never_take_each_others_events(
    stack, producer, scratch_topics
):
    topic = f"test.{uuid.uuid4().hex[:12]}"  # the logical name both deployments use
    blue, green = KafkaNames("blue."), KafkaNames("green.")
    for names in (blue, green):
        await scratch_topics.create([names.topic(topic), names.topic(dead_letter_topic(topic))])
    service = f"test-consumer-{uuid.uuid4().hex[:8]}"  # the same service name in both deployments
    subscription = typed_subscription(topic, {"Sequenced": record_arrival})

    async with (
        deployment(stack, producer, blue) as (_, blue_pool),
        deployment(stack, producer, green) as (_, green_pool),
        running_consumer(stack, blue_pool, producer, subscription, name=service, names=blue) as on_blue,
        running_consumer(stack, green_pool, producer, subscription, name=service, names=green) as on_green,
    ):
        for seq in range(3):
            await publish(blue_pool, topic, "Sequenced", "blue-aggregate", seq)
        for seq in range(5):
            await publish(green_pool, topic, "Sequenced", "green-aggregate", seq)
        await wait_until_consumed(on_blue, 3, what="blue's three events")
        await wait_until_consumed(on_green, 5, what="green's five events")

        assert await scalar(blue_pool, "SELECT array_agg(DISTINCT key) FROM received") == ["blue-aggregate"]
        assert await scalar(green_pool, "SELECT array_agg(DISTINCT key) FROM received") == ["green-aggregate"]
        assert await scalar(blue_pool, "SELECT count(*) FROM received") == 3
        assert await scalar(green_pool, "SELECT count(*) FROM received") == 5
        # The inbox keeps the registry's name, whatever the deployment's prefix.
        assert await scalar(blue_pool, "SELECT array_agg(DISTINCT topic) FROM processed_events") == [topic]
        assert await message_count(stack, blue.topic(topic)) == 3
        assert await message_count(stack, green.topic(topic)) == 5


async def test_a_prefixed_deployment_dead_letters_to_its_own_dead_letter_topic(
    stack, producer, scratch_topics
):
    topic = f"test.{uuid.uuid4().hex[:12]}"
    names = KafkaNames("amber.")
    await scratch_topics.create([names.topic(topic), names.topic(dead_letter_topic(topic))])
    subscription = typed_subscription(topic, {"Doomed": always_fails})

    async with (
        deployment(stack, producer, names) as (_, pool),
        running_consumer(stack, pool, producer, subscription, names=names, max_attempts=2, retry_backoff_ms=5)
        as consumer,
    ):  # fmt: skip
        await publish(pool, topic, "Doomed", "doomed-aggregate", 0)
        await wait_until_consumed(consumer, 1, outcomes=("dead_lettered",), what="the event dead-lettered")

    (letter,) = await read_all(stack, names.topic(dead_letter_topic(topic)), expected=1)
    headers = dict(letter.headers)
    # What an admin replays names the registry's topic; the relay puts the prefix back on.
    assert headers[DLQ_ORIGINAL_TOPIC_HEADER].decode() == topic
