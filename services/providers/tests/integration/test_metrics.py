"""What providers tells its metrics, on the real stack: each provider call is timed with how it ended, the
circuit breakers are exported as the runner holds them, and the queue monitor's round sets the consumer
lag and dead-letter gauges to what it read from Kafka."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from providers_test_support import step_requested

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.tasks.events import TaskCancelRequested
from funmagic_contracts.topics import DEAD_LETTER_TOPICS
from funmagic_kit.metrics import Metrics
from funmagic_kit.testing import in_memory_consumer, wait_until
from funmagic_providers.adapters.kafka_queue import KafkaQueueReader
from funmagic_providers.application.steps import StepRunner
from funmagic_providers.bootstrap import Providers


@asynccontextmanager
async def running(runner: StepRunner) -> AsyncIterator[None]:
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=10)


async def deliver(providers: Providers, *events: IntegrationEvent) -> None:
    async with in_memory_consumer(
        "providers", providers.parts.subscriptions, unit_of_work=providers.parts.unit_of_work
    ) as consumer:
        for event in events:
            await consumer.deliver_event(event)


def calls(metrics: Metrics, outcome: str, suffix: str = "count") -> float | None:
    labels = {"provider": "local", "step_type": "image-gen", "outcome": outcome}
    return metrics.registry.get_sample_value(f"funmagic_provider_call_seconds_{suffix}", labels)


async def test_calls_are_timed_by_outcome_and_the_circuit_is_exported(build_providers) -> None:
    metrics = Metrics("providers")
    providers = build_providers(metrics=metrics)
    quick = step_requested(options={"size": "64x64"})
    slow = step_requested(options={"durationMs": 5000, "size": "64x64"})
    circuit = {"scope": "web", "provider": "local"}
    assert metrics.registry.get_sample_value("funmagic_provider_circuit_open", circuit) is None

    await deliver(providers, quick, slow)
    async with running(providers.runner):

        async def quick_one_timed() -> bool:
            return calls(metrics, "succeeded") == 1

        await wait_until(quick_one_timed, timeout=20, what="the succeeded call's time")
        cancel = TaskCancelRequested(task_id=slow.task_id, user_id=slow.user_id, by=slow.user_id)
        await deliver(providers, cancel)

        async def slow_one_timed() -> bool:
            return calls(metrics, "cancelled") == 1

        await wait_until(slow_one_timed, timeout=20, what="the cancelled call's time")

    seconds = calls(metrics, "cancelled", "sum")
    assert seconds is not None
    assert seconds < 5, "the cancelled call stopped before its 5 s"
    assert calls(metrics, "unavailable") is None
    # The runner met `local`: its breaker is exported, closed.
    assert metrics.registry.get_sample_value("funmagic_provider_circuit_open", circuit) == 0


@pytest.fixture
async def reader() -> AsyncIterator[KafkaQueueReader]:
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is unset: start the local stack and source .stack/env")
    queue = KafkaQueueReader(servers, client_id="providers-tests")
    yield queue
    await queue.close()


async def test_the_monitors_round_sets_lag_and_dead_letters_from_kafka(build_providers, reader) -> None:
    metrics = Metrics("providers")
    providers = build_providers(metrics=metrics, kafka_queue=reader)
    await providers.monitor.sample_lag()

    names = [t.name for t in DEAD_LETTER_TOPICS]
    offsets = await reader.offsets(names)
    for name in names:  # whatever earlier tests dead-lettered: the gauge is what Kafka holds
        received = sum(p.end for p in offsets[name] or [])
        assert metrics.registry.get_sample_value("funmagic_dead_letters", {"topic": name}) == received, name
    report = await providers.monitor.lag()
    exported = {
        (s.labels["group"], s.labels["topic"])
        for family in metrics.registry.collect()
        if family.name == "funmagic_consumer_lag"
        for s in family.samples
    }
    assert exported == {(g.lag.group, g.lag.topic) for g in report.groups}
