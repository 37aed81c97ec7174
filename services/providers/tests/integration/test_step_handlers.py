"""The service's typed subscriptions on the kit's in-memory consumer, with the real Postgres unit of work:
a StepRequested becomes one queued job however often it comes, a TaskCancelRequested cancels the task's
jobs."""

from __future__ import annotations

from providers_test_support import jobs_of, step_requested

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.tasks.events import TaskCancelRequested
from funmagic_kit.testing import in_memory_consumer


async def test_a_step_requested_becomes_one_queued_job(pool, build_providers) -> None:
    providers = build_providers()
    requested = step_requested()
    envelope = Envelope.wrap(requested, correlation_id="corr-7")

    async with in_memory_consumer(
        "providers", providers.parts.subscriptions, unit_of_work=providers.parts.unit_of_work
    ) as consumer:
        first = await consumer.deliver(envelope)
        redelivered = await consumer.deliver(envelope)
        # Tasks said it again (a new envelope) for the same attempt: still the one job.
        repeated = await consumer.deliver(Envelope.wrap(requested))

    assert (first, redelivered, repeated) == ("handled", "duplicate", "handled")
    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.step_id, job.attempt, job.provider) == ("queued", "step-1", 1, "local")
    assert (job.correlation_id, job.causation_id) == ("corr-7", str(envelope.id))
    assert job.input.prompt == requested.input.prompt


async def test_another_attempt_of_the_step_is_another_job(pool, build_providers) -> None:
    providers = build_providers()
    first = step_requested()
    second = step_requested(task_id=first.task_id, attempt=2)

    async with in_memory_consumer(
        "providers", providers.parts.subscriptions, unit_of_work=providers.parts.unit_of_work
    ) as consumer:
        await consumer.deliver_event(first)
        await consumer.deliver_event(second)

    assert [job.attempt for job in await jobs_of(pool, first.task_id)] == [1, 2]


async def test_a_task_cancel_requested_cancels_the_tasks_unfinished_jobs(pool, build_providers) -> None:
    providers = build_providers()
    first = step_requested(step_id="step-1")
    second = step_requested(task_id=first.task_id, step_id="step-2")
    other_task = step_requested()

    async with in_memory_consumer(
        "providers", providers.parts.subscriptions, unit_of_work=providers.parts.unit_of_work
    ) as consumer:
        for requested in (first, second, other_task):
            await consumer.deliver_event(requested)
        await consumer.deliver_event(
            TaskCancelRequested(task_id=first.task_id, user_id="user-1", by="user-1")
        )

    assert [job.status for job in await jobs_of(pool, first.task_id)] == ["cancelled", "cancelled"]
    assert [job.status for job in await jobs_of(pool, other_task.task_id)] == ["queued"]
