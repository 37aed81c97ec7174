"""The queue monitor on the real stack: a dead letter on Kafka is replayed exactly once (the outbox row is the
original message, byte for byte, and a second replay — or a concurrent one — publishes nothing), pages of a
dead-letter topic show it with its replay, step jobs are counted per provider and state by the database,
consumer groups' committed offsets are read from Kafka's admin API, the lag trend keeps one sample per
spacing, and the limiter's usage is read from its keys."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from providers_test_support import step_requested
from redis.asyncio import Redis

from funmagic_contracts.envelope import Envelope, encode, kafka_headers
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.topics import (
    DLQ_ATTEMPTS_HEADER,
    DLQ_CONSUMER_HEADER,
    DLQ_ERROR_HEADER,
    DLQ_ORIGINAL_OFFSET_HEADER,
    DLQ_ORIGINAL_PARTITION_HEADER,
    DLQ_ORIGINAL_TOPIC_HEADER,
)
from funmagic_kit.kafka import KafkaNames, create_producer
from funmagic_kit.testing import ScratchTopics
from funmagic_providers.adapters.kafka_queue import KafkaQueueReader
from funmagic_providers.adapters.lag_trend import RedisLagTrend
from funmagic_providers.adapters.postgres import ProvidersUnitOfWork
from funmagic_providers.adapters.rate_limiter import ProviderRateLimiter
from funmagic_providers.application.queue_monitor import REPLAY_ACTION
from funmagic_providers.domain import step_job
from funmagic_providers.domain.queue import TREND_LENGTH
from funmagic_providers.domain.step_policy import RetryStep

DLQ_KEY = "identity-events-dlq"
NOW = datetime.now(UTC)


@pytest.fixture(scope="session")
def kafka() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is unset: start the local stack and source .stack/env")
    return servers


@pytest.fixture
async def scratch_topics(kafka: str) -> AsyncIterator[ScratchTopics]:
    topics = ScratchTopics(kafka)
    yield topics
    await topics.delete_all()


@pytest.fixture
async def reader(kafka: str) -> AsyncIterator[KafkaQueueReader]:
    queue = KafkaQueueReader(kafka, client_id="providers-tests")
    yield queue
    await queue.close()


@pytest.fixture
async def producer(kafka: str):
    producer = await create_producer(kafka, client_id="providers-tests")
    yield producer
    await producer.stop()


async def dead_letter(producer, envelope: Envelope | None = None, *, value: bytes | None = None):
    """A message of identity.events.dlq as the kit's consumer writes one; returns (partition, offset, value,
    the original headers)."""
    envelope = envelope or registered()
    value = value if value is not None else encode(envelope)
    original = [*kafka_headers(envelope, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    headers = [
        *original,
        (DLQ_ERROR_HEADER, b"PermanentError: poisoned by a test hook"),
        (DLQ_CONSUMER_HEADER, b"credits"),
        (DLQ_ORIGINAL_TOPIC_HEADER, b"identity.events"),
        (DLQ_ORIGINAL_PARTITION_HEADER, b"2"),
        (DLQ_ORIGINAL_OFFSET_HEADER, b"17"),
        (DLQ_ATTEMPTS_HEADER, b"1"),
    ]
    sent = await producer.send_and_wait(
        "identity.events.dlq", value=value, key=envelope.subject.encode(), headers=headers
    )
    return sent.partition, sent.offset, value, original


def registered() -> Envelope:
    user_id = f"queue-test-{uuid.uuid4()}"
    return Envelope.wrap(
        UserRegistered(
            user_id=user_id, email="ada@example.com", name="Ada", method="email", registered_at=NOW
        )
    )


async def outbox_rows(pool) -> list[dict]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT event_id::text, topic, key, payload, headers FROM outbox ORDER BY id"
        )
        return await cursor.fetchall()


# --- replay ---------------------------------------------------------------------------------------------


async def test_a_dead_letter_is_replayed_once_as_the_original_message(
    build_providers, reader, producer, pool
) -> None:
    monitor = build_providers(kafka_queue=reader).monitor
    envelope = registered()
    partition, offset, value, original_headers = await dead_letter(producer, envelope)

    first = await monitor.replay(DLQ_KEY, [(partition, offset)], actor_id="admin-1", reason="handler fixed")
    again = await monitor.replay(DLQ_KEY, [(partition, offset)], actor_id="admin-2")

    assert [(o.status, o.event_id, o.origin_topic) for o in first] == [
        ("replayed", str(envelope.id), "identity.events")
    ]
    assert [(o.status, o.event_id) for o in again] == [("already_replayed", str(envelope.id))]
    (row,) = await outbox_rows(pool)
    assert row["event_id"] == str(envelope.id)
    assert (row["topic"], row["key"]) == ("identity.events", envelope.subject)
    assert bytes(row["payload"]) == value
    assert row["headers"] == [[name, text.decode()] for name, text in original_headers]
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT * FROM dead_letter_replays WHERE event_id = %s", (envelope.id,))
        (replay,) = await cursor.fetchall()
    assert (replay["dead_letter_topic"], replay["dead_letter_partition"], replay["dead_letter_offset"]) == (
        "identity.events.dlq",
        partition,
        offset,
    )
    assert (replay["origin_topic"], replay["replayed_by"]) == ("identity.events", "admin-1")
    position = {"topic": "identity.events.dlq", "partition": partition, "offset": offset}
    changes = {"origin_topic": "identity.events", "dead_letter": position}
    assert await audited(pool, str(envelope.id)) == [
        ("admin-1", REPLAY_ACTION, "event", str(envelope.id), changes, "handler fixed")
    ], "the second replay changed nothing and recorded nothing"


async def test_replays_of_one_event_at_the_same_time_publish_it_once(
    build_providers, reader, producer, pool
) -> None:
    monitor = build_providers(kafka_queue=reader).monitor
    envelope = registered()
    # The same event dead-lettered twice (two consumers gave up on it): either message replays it.
    first = await dead_letter(producer, envelope)
    second = await dead_letter(producer, envelope)

    outcomes = await asyncio.gather(
        *(monitor.replay(DLQ_KEY, [position[:2]], actor_id="admin-1") for position in (first, second, first))
    )

    assert sorted(o.status for (o,) in outcomes) == ["already_replayed", "already_replayed", "replayed"]
    assert [row["event_id"] for row in await outbox_rows(pool)] == [str(envelope.id)]


async def test_what_cannot_be_replayed_is_answered_per_message(
    build_providers, reader, producer, pool
) -> None:
    monitor = build_providers(kafka_queue=reader).monitor
    good = await dead_letter(producer)
    garbage = await dead_letter(producer, value=b"{not json")

    outcomes = await monitor.replay(
        DLQ_KEY,
        [garbage[:2], (good[0], 10**12), (9999, 0), good[:2], garbage[:2]],
        actor_id="admin-1",
    )

    assert [o.status for o in outcomes] == [
        "not_replayable",
        "not_found",
        "not_found",
        "replayed",
        "not_replayable",
    ]
    assert "not an event envelope" in (outcomes[0].detail or "")
    assert len(await outbox_rows(pool)) == 1


async def test_a_page_of_dead_letters_shows_the_message_its_headers_and_its_replay(
    build_providers, reader, producer
) -> None:
    monitor = build_providers(kafka_queue=reader).monitor
    envelope = registered()
    partition, offset, value, _ = await dead_letter(producer, envelope)
    await monitor.replay(DLQ_KEY, [(partition, offset)], actor_id="admin-1")

    page = await monitor.dead_letters(DLQ_KEY, limit=100, partition=partition)

    assert page.topic == "identity.events.dlq"
    assert {letter.record.partition for letter, _ in page.items} == {partition}
    offsets = [letter.record.offset for letter, _ in page.items]
    assert offsets == sorted(offsets, reverse=True), "newest first"
    ((letter, replay),) = [(d, r) for d, r in page.items if d.record.offset == offset]
    assert (letter.event_id, letter.event_type, letter.key) == (
        str(envelope.id),
        "UserRegistered",
        envelope.subject,
    )
    assert (letter.error, letter.consumer, letter.attempts) == (
        "PermanentError: poisoned by a test hook",
        "credits",
        1,
    )
    assert (letter.origin_topic, letter.origin_partition, letter.origin_offset) == ("identity.events", 2, 17)
    assert letter.headers["type"] == "UserRegistered"
    assert not any(name.startswith("dlq-") for name in letter.headers)
    assert letter.value_preview == value.decode()
    assert replay is not None
    assert replay.replayed_by == "admin-1"


async def test_a_dead_letter_topic_the_platform_does_not_have_is_not_found(build_providers, reader) -> None:
    from funmagic_providers.domain.queue import NoSuchDeadLetterTopic

    monitor = build_providers(kafka_queue=reader).monitor
    with pytest.raises(NoSuchDeadLetterTopic):
        await monitor.dead_letters("identity-events", limit=10)
    with pytest.raises(NoSuchDeadLetterTopic):
        await monitor.replay("nope", [(0, 0)], actor_id="admin-1")


async def audited(pool, event_id: str) -> list[tuple]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT actor_id, action, subject_type, subject_id, changes, reason FROM admin_audit"
            " WHERE subject_id = %s",
            (event_id,),
        )
        rows = await cursor.fetchall()
    return [tuple(row.values()) for row in rows]


# --- step jobs ------------------------------------------------------------------------------------------


async def test_step_jobs_are_counted_per_provider_and_state_with_the_oldest_age(
    build_providers, pool
) -> None:
    monitor = build_providers().monitor
    owner = "runner-test"

    async def job(provider: str, scope: str = "web") -> str:
        request = step_requested(provider=provider).model_copy(update={"scope": scope})
        change = step_job.accept(
            request, job_id=str(uuid.uuid4()), correlation_id=None, causation_id=None, now=NOW
        )
        async with ProvidersUnitOfWork(pool) as uow:
            assert await (await uow.jobs.add(change.job, decided_at=NOW)).answer()
        return change.job.id

    async def claimed() -> None:
        async with ProvidersUnitOfWork(pool) as uow:
            await uow.jobs.claim_due(owner, limit=100, lease_seconds=60)

    async def then(job_id: str, transition) -> None:
        async with ProvidersUnitOfWork(pool) as uow:
            current = await uow.jobs.lock(job_id)
            change = transition(current)
            await uow.jobs.save(change.job, decided_at=NOW)

    later = NOW + timedelta(minutes=5)
    delayed, retrying, _running, done = [await job("openai") for _ in range(4)]
    await claimed()
    await then(delayed, lambda j: step_job.delay(j, owner=owner, until=later, reason="rate_limited"))
    retry = RetryStep(retry_at=later, reason="provider_error", retry_number=1)
    await then(retrying, lambda j: step_job.retry(j, owner=owner, decision=retry))
    await then(done, lambda j: step_job.fail(j, owner=owner, failure=step_job.DEADLINE_EXCEEDED))
    queued = [await job("openai"), await job("openai"), await job("local", scope="admin")]
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE step_jobs SET created_at = now() - interval '90 seconds' WHERE id = %s", (queued[0],)
        )

    report = await monitor.step_jobs()

    counts = {(c.scope, c.provider, c.state): c.count for c in report.items}
    assert counts == {
        ("admin", "local", "queued"): 1,
        ("web", "openai", "delayed"): 1,
        ("web", "openai", "queued"): 2,
        ("web", "openai", "retrying"): 1,
        ("web", "openai", "running"): 1,
    }
    assert report.totals == {"queued": 3, "delayed": 1, "retrying": 1, "running": 1}
    ages = {(c.scope, c.provider, c.state): c.oldest_age_seconds for c in report.items}
    assert 90 <= ages[("web", "openai", "queued")] < 150
    assert 0 <= ages[("admin", "local", "queued")] < 60


# --- Kafka's admin API, the trend, the limiter ------------------------------------------------------------


async def test_a_consumer_groups_committed_offsets_and_the_topics_ends_are_read_from_kafka(
    kafka: str, reader: KafkaQueueReader, producer, scratch_topics: ScratchTopics
) -> None:
    topic = f"test.queue.{uuid.uuid4().hex[:12]}"
    await scratch_topics.create([topic], partitions=2)
    for number in range(5):
        await producer.send_and_wait(topic, value=b"m%d" % number, partition=number % 2)
    group = f"queue-test-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        # Assigned by hand (no rebalance to wait for): the group commits without joining as a member.
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): 2})
    finally:
        await consumer.stop()

    offsets = await reader.offsets([topic, f"{topic}.missing"])
    groups = [g for g in await reader.consumer_groups([topic]) if g.group == group]
    records = await reader.read(topic, 0, 1, 3)

    assert [(p.partition, p.beginning, p.end) for p in offsets[topic] or []] == [(0, 0, 3), (1, 0, 2)]
    assert offsets[f"{topic}.missing"] is None
    (found,) = groups
    assert found.committed == {topic: {0: 2}}
    assert found.state == "Empty"
    assert found.members == 0
    assert [(r.offset, r.value) for r in records] == [(1, b"m2"), (2, b"m4")]


async def test_a_prefixed_deployment_reads_its_own_topics_and_groups_under_the_registrys_names(
    kafka: str, producer, scratch_topics: ScratchTopics
) -> None:
    topic = f"test.queue.{uuid.uuid4().hex[:12]}"
    names = KafkaNames("teal.")
    await scratch_topics.create([names.topic(topic), topic], partitions=1)
    await producer.send_and_wait(names.topic(topic), value=b"ours", partition=0)
    await producer.send_and_wait(topic, value=b"another platform's", partition=0)
    await producer.send_and_wait(topic, value=b"another platform's", partition=0)
    group = f"queue-test-{uuid.uuid4().hex[:8]}"
    for physical_group, physical_topic in ((names.group(group), names.topic(topic)), (group, topic)):
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka, group_id=physical_group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([TopicPartition(physical_topic, 0)])
            await consumer.commit({TopicPartition(physical_topic, 0): 1})
        finally:
            await consumer.stop()
    reader = KafkaQueueReader(kafka, client_id="providers-tests", names=names)
    try:
        offsets = await reader.offsets([topic])
        groups = [g for g in await reader.consumer_groups([topic]) if g.group == group]
        records = await reader.read(topic, 0, 0, 1)
    finally:
        await reader.close()

    assert [(p.beginning, p.end) for p in offsets[topic] or []] == [(0, 1)]
    (found,) = groups  # the unprefixed group of the same name reads another platform's topic: not ours
    assert found.committed == {topic: {0: 1}}
    assert [(r.topic, r.value) for r in records] == [(topic, b"ours")]


async def test_the_trend_keeps_one_sample_per_spacing_oldest_first_and_the_last_ones_only(
    redis: Redis,
) -> None:
    trend = RedisLagTrend(redis)
    group, topic = f"trend-{uuid.uuid4().hex[:8]}", "identity.events"
    await redis.delete("queue:lag:sampled")
    try:
        assert await trend.record({(group, topic): 5}, NOW, spacing_seconds=60)
        assert not await trend.record({(group, topic): 6}, NOW + timedelta(seconds=1), spacing_seconds=60)
        for number in range(TREND_LENGTH + 5):
            await redis.delete("queue:lag:sampled")
            assert await trend.record(
                {(group, topic): number}, NOW + timedelta(seconds=number), spacing_seconds=60
            )

        samples = (await trend.recent([(group, topic)]))[(group, topic)]
    finally:
        await redis.delete("queue:lag:sampled", f"queue:lag:{{{group}}}:{topic}")

    assert len(samples) == TREND_LENGTH
    assert [s.lag for s in samples] == list(range(5, TREND_LENGTH + 5))
    assert samples[-1].at == NOW + timedelta(seconds=TREND_LENGTH + 4)


async def test_the_limiters_usage_is_read_from_its_keys(redis: Redis) -> None:
    provider = f"test-{uuid.uuid4().hex[:12]}"

    async def limits(scope: str, name: str) -> dict:
        return {"rateLimit": {"maxConcurrency": 3, "maxPerMinute": 10, "maxPerDay": 100}}

    limiter = ProviderRateLimiter(redis, limits, lease_seconds=30)
    try:
        assert (await limiter.acquire("web", provider, "lease-1")).admitted
        assert (await limiter.acquire("web", provider, "lease-2")).admitted
        await limiter.release("web", provider, "lease-2")

        usage = await limiter.usage("web", provider)
        idle = await limiter.usage("admin", provider)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"prl:*:{{{provider}}}:*")]
        if keys:
            await redis.delete(*keys)

    assert (usage.in_flight, usage.used_per_minute, usage.used_per_day) == (1, 2, 2)
    assert usage.minute_resets_in_seconds is not None
    assert 0 < usage.minute_resets_in_seconds <= 60
    assert usage.day == datetime.now(UTC).strftime("%Y-%m-%d")
    assert (idle.in_flight, idle.used_per_minute, idle.used_per_day, idle.minute_resets_in_seconds) == (
        0,
        0,
        0,
        None,
    )
