"""Outbox → Kafka → inbox against raw aiokafka produce → consume, in the same run.

Latency: one event at a time, from just before the producing transaction commits (platform) or just
before `send` (baseline) until the consuming handler has committed (platform) or `getone` returned
(baseline). Throughput: a burst of events written as fast as possible until the last one is handled.
The platform path is measured with 10 ms fetch polling and again with the platform's 5 s long poll, whose
latency must be the same (the broker answers a parked fetch when a record arrives). The consuming handler
writes an effect row per event: one statement per event (a per-event handler, the floor's row), and again
with a batch handler (`Subscription.on_batch`) that writes a run of events with one statement.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
from aiokafka import AIOKafkaConsumer

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.ids import uuid7
from funmagic_kit.consumer import EventConsumer, Subscription
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.kafka import create_producer, create_topics, delete_topics
from funmagic_kit.metrics import Metrics
from funmagic_kit.migrations import apply_migrations, load_migrations
from funmagic_kit.outbox import OutboxRelay, add_to_outbox
from funmagic_kit.testing import adhoc_event_class, drop_database

LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "500"))
BURST = int(os.environ.get("BENCH_BURST", "5000"))
WARMUP = 50
PARTITIONS = 6
LONG_POLL_MS = 5_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(latencies_ms: list[float], burst_seconds: float, burst: int) -> dict[str, float]:
    return {
        "events_per_s": round(burst / burst_seconds, 1),
        "p50_ms": round(statistics.median(latencies_ms), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3),
    }


async def baseline(kafka: str) -> dict[str, float]:
    topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka, [topic], partitions=PARTITIONS)
    try:
        return await _measure_raw(kafka, topic)
    finally:
        # Left behind, every run's partitions would add to the broker's idle work (and to e2e_tasks' idle).
        await delete_topics(kafka, [topic])


async def _measure_raw(kafka: str, topic: str) -> dict[str, float]:
    producer = await create_producer(kafka, client_id="bench-raw")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        group_id=f"bench-raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        consumer_timeout_ms=20,
    )
    await consumer.start()
    try:
        latencies = []
        for i in range(WARMUP + LATENCY_SAMPLES):
            started = time.perf_counter()
            await producer.send(topic, b"x" * 300, key=f"k{i % 10}".encode())
            await consumer.getone()
            if i >= WARMUP:
                latencies.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        futures = [await producer.send(topic, b"x" * 300, key=f"k{i % 10}".encode()) for i in range(BURST)]
        received = 0
        while received < BURST:
            batch = await consumer.getmany(timeout_ms=100)
            received += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
        burst_seconds = time.perf_counter() - started
        await asyncio.gather(*futures)
    finally:
        await consumer.stop()
        await producer.stop()
    return summary(latencies, burst_seconds, BURST)


async def platform_path(
    kafka: str, postgres_url: str, workers: int, fetch_max_wait_ms: int = 10, *, batched: bool = False
) -> dict[str, float]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{postgres_url.rstrip('/')}/{name}"
    try:
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            await apply_migrations(conn, load_migrations("kit", "funmagic_kit.sql"))
            await conn.execute("CREATE TABLE effects (event_id uuid PRIMARY KEY)")
        return await _measure_platform(kafka, dsn, workers, fetch_max_wait_ms, batched)
    finally:
        # Retried while an autovacuum worker still holds the new database (it cannot be terminated).
        await drop_database(postgres_url, name)


async def _measure_platform(
    kafka: str, dsn: str, workers: int, fetch_max_wait_ms: int, batched: bool
) -> dict[str, float]:
    topic = f"bench.platform.{uuid.uuid4().hex[:8]}"
    await create_topics(kafka, [topic, f"{topic}.dlq"], partitions=PARTITIONS)
    try:
        return await _measure_platform_on(kafka, dsn, workers, fetch_max_wait_ms, topic, batched)
    finally:
        await delete_topics(kafka, [topic, f"{topic}.dlq"])


async def _measure_platform_on(
    kafka: str, dsn: str, workers: int, fetch_max_wait_ms: int, topic: str, batched: bool
) -> dict[str, float]:
    pool = await create_pool(dsn, min_size=4, max_size=4 + workers)
    producer = await create_producer(kafka, client_id="bench-platform")
    metrics = Metrics("bench")
    arrived: dict[str, asyncio.Future[float]] = {}
    handled = 0
    all_handled = asyncio.Event()
    burst_target = 0

    async def on_event(event: IntegrationEvent, envelope: Envelope, uow: PostgresUnitOfWork) -> None:
        await uow.conn.execute("INSERT INTO effects (event_id) VALUES (%s)", (envelope.id,))

    async def on_events(
        deliveries: Sequence[tuple[IntegrationEvent, Envelope]], uow: PostgresUnitOfWork
    ) -> None:
        ids = [envelope.id for _, envelope in deliveries]
        await uow.conn.execute("INSERT INTO effects (event_id) SELECT unnest(%b::uuid[])", (ids,))

    def on_processed(envelope: Envelope, outcome: str) -> None:
        # Called by the consumer after the handler's transaction has committed.
        nonlocal handled
        handled += 1
        waiter = arrived.pop(str(envelope.id), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(time.perf_counter())
        if burst_target and handled >= burst_target:
            all_handled.set()

    consumer = EventConsumer(
        name="bench",
        bootstrap_servers=kafka,
        producer=producer,
        metrics=metrics,
        unit_of_work=lambda: PostgresUnitOfWork(pool),
        fetch_max_wait_ms=fetch_max_wait_ms,
        on_processed=on_processed,
        concurrency=workers,
    )
    event_class = adhoc_event_class("BenchEvent", topic)
    subscription = Subscription(topic)
    consumer.subscribe(
        subscription.on_batch(event_class, on_events) if batched else subscription.on(event_class, on_event)
    )
    relay = OutboxRelay(dsn=dsn, pool=pool, producer=producer, metrics=metrics, failpoints=Failpoints(""))
    relay_task = asyncio.create_task(relay.run())
    await consumer.start()
    try:
        latencies = []
        for i in range(WARMUP + LATENCY_SAMPLES):
            envelope = _event(i)
            waiter = asyncio.get_running_loop().create_future()
            arrived[str(envelope.id)] = waiter
            started = time.perf_counter()
            async with PostgresUnitOfWork(pool) as uow:
                await add_to_outbox(uow.conn, [(topic, envelope)])
            finished = await asyncio.wait_for(waiter, timeout=30)
            if i >= WARMUP:
                latencies.append((finished - started) * 1000)
        burst_target = handled + BURST
        started = time.perf_counter()
        for first in range(0, BURST, 100):
            async with PostgresUnitOfWork(pool) as uow:
                await add_to_outbox(uow.conn, [(topic, _event(first + n)) for n in range(100)])
        await asyncio.wait_for(all_handled.wait(), timeout=300)
        burst_seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
        relay.stop()
        await relay_task
        await producer.stop()
        await pool.close()
    return summary(latencies, burst_seconds, BURST)


def ratio_to_raw(ours: dict[str, float], raw: dict[str, float]) -> dict[str, float]:
    return {
        "throughput_ratio": round(ours["events_per_s"] / raw["events_per_s"], 4),
        "p50_ratio": round(ours["p50_ms"] / raw["p50_ms"], 2),
        "p99_ratio": round(ours["p99_ms"] / raw["p99_ms"], 2),
    }


def _event(i: int) -> Envelope:
    event_id = uuid7()
    return Envelope(
        id=event_id,
        type="BenchEvent",
        version=1,
        source="bench",
        subject=f"k{i % 10}",
        time=datetime.now(UTC),
        correlation_id=str(event_id),  # a flow's first event, as `Envelope.wrap` makes it
        causation_id=None,
        data={"subject": f"k{i % 10}", "n": i, "pad": "x" * 200},
    )


async def run() -> dict[str, object]:
    kafka = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    postgres_url = os.environ["POSTGRES_URL"]
    raw = await baseline(kafka)
    print(f"  raw aiokafka produce→consume       : {raw}", flush=True)
    result: dict[str, object] = {"baseline_raw_aiokafka": raw}
    platform_rows: dict[int, dict[str, float]] = {}
    for workers in (1, PARTITIONS):
        ours = platform_rows[workers] = await platform_path(kafka, postgres_url, workers)
        ratio = ratio_to_raw(ours, raw)
        print(f"  outbox→Kafka→inbox, {workers} worker(s)   : {ours}", flush=True)
        print(f"    ratio to raw                     : {ratio}", flush=True)
        result[f"outbox_kafka_inbox_{workers}_workers"] = {**ours, "ratio_to_raw": ratio}
    # The platform's consumers long-poll (KAFKA_FETCH_MAX_WAIT_MS, 5 s): the broker answers a parked fetch
    # as soon as a record arrives, so the latency must match the 10 ms polling above.
    long_poll = await platform_path(kafka, postgres_url, 1, fetch_max_wait_ms=LONG_POLL_MS)
    polling = platform_rows[1]
    versus = {
        "p50_vs_10ms_polling": round(long_poll["p50_ms"] / polling["p50_ms"], 2),
        "p99_vs_10ms_polling": round(long_poll["p99_ms"] / polling["p99_ms"], 2),
    }
    print(f"  same, 1 worker, {LONG_POLL_MS} ms long poll : {long_poll} {versus}", flush=True)
    result["outbox_kafka_inbox_1_workers_long_poll"] = {**long_poll, **versus}
    # The same path, the effects written by a batch handler: one statement per run instead of per event.
    for workers in (1, PARTITIONS):
        batched = await platform_path(kafka, postgres_url, workers, batched=True)
        ratio = ratio_to_raw(batched, raw)
        print(f"  same, {workers} worker(s), batch handler : {batched}", flush=True)
        print(f"    ratio to raw                     : {ratio}", flush=True)
        result[f"outbox_kafka_inbox_{workers}_workers_batch_handler"] = {**batched, "ratio_to_raw": ratio}
    result["settings"] = {"latency_samples": LATENCY_SAMPLES, "burst": BURST, "partitions": PARTITIONS}
    return result
