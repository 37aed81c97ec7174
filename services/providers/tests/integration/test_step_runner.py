"""The step runner end to end inside the service, with no third party: the built-in `local` provider
really computes its outputs; storage (another service) is a stand-in implementing the `Storage` port;
Postgres and Redis are real."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from PIL import Image
from providers_test_support import FakeStorage, jobs_of, outbox_events, step_requested
from redis.asyncio import Redis

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.providers.events import (
    StepCompleted,
    StepDelayed,
    StepFailed,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import StepRequested, TaskCancelRequested
from funmagic_kit.testing import in_memory_consumer, wait_until
from funmagic_providers.application.steps import StepRunner
from funmagic_providers.bootstrap import Providers
from funmagic_providers.domain.steps import InputFile

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(autouse=True)
async def forget_cached_limits(redis: Redis) -> AsyncIterator[None]:
    yield
    await redis.delete("prl:web:{local}:config", "prl:web:{nobody}:config")


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


async def events_of(pool, task_id: str) -> list[IntegrationEvent]:
    return [e for e in await outbox_events(pool) if getattr(e, "task_id", None) == task_id]


async def wait_for_event(pool, task_id: str, kind: type[IntegrationEvent], timeout: float = 20) -> None:
    async def seen() -> bool:
        return any(isinstance(e, kind) for e in await events_of(pool, task_id))

    await wait_until(seen, timeout=timeout, what=f"{kind.__name__} of {task_id}")


async def test_a_queued_job_runs_to_step_completed_with_its_output_stored(
    pool, build_providers, storage: FakeStorage
) -> None:
    providers = build_providers(STEP_PROGRESS_INTERVAL_SECONDS=0)  # every progress report published
    requested = step_requested(options={"size": "96x64"})
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted)

    events = await events_of(pool, requested.task_id)
    assert type(events[0]) is StepStarted
    assert type(events[-1]) is StepCompleted
    assert {type(e) for e in events[1:-1]} == {StepProgressed}
    progress = [e.progress for e in events if isinstance(e, StepProgressed)]
    assert progress == sorted(progress)
    assert len(set(progress)) == len(progress)
    completed = events[-1]
    assert isinstance(completed, StepCompleted)
    (stored,) = storage.outputs
    assert [(a.asset_id, a.role) for a in completed.output.assets] == [(stored.asset_id, "image")]
    assert completed.output.metadata == {"width": 96, "height": 64}
    assert stored.data.startswith(PNG_SIGNATURE)
    assert (stored.user_id, stored.task_id, stored.module, stored.visibility) == (
        "user-1",
        requested.task_id,
        "image-gen",
        "private",
    )
    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.claims, job.lease_owner) == ("completed", 1, None)


async def test_a_style_references_image_is_read_as_a_catalog_image_and_reaches_the_provider(
    pool, build_providers, storage: FakeStorage
) -> None:
    storage.inputs["photo"] = InputFile("photo", "photo.png", "image/png", png((128, 128, 128)))
    storage.catalog_images["style"] = InputFile("style", "style.png", "image/png", png((0, 0, 255)))
    providers = build_providers()
    requested = step_requested(asset_ids=("photo",), reference_asset_ids=("style",))
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted)

    (job,) = await jobs_of(pool, requested.task_id)
    assert job.input.reference_asset_ids == ("style",), "kept with the durable job"
    completed = (await events_of(pool, requested.task_id))[-1]
    assert isinstance(completed, StepCompleted)
    assert completed.output.metadata == {"style": "vintage", "referenceAssetIds": ["style"]}


async def test_a_style_image_that_is_not_a_published_catalog_image_fails_the_step(
    pool, build_providers, storage: FakeStorage
) -> None:
    # The user's own asset is not a catalog image: references are read only as published catalog images.
    storage.inputs["photo"] = InputFile("photo", "photo.png", "image/png", png((128, 128, 128)))
    providers = build_providers()
    requested = step_requested(asset_ids=("photo",), reference_asset_ids=("photo",))
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepFailed)

    failed = (await events_of(pool, requested.task_id))[-1]
    assert isinstance(failed, StepFailed)
    assert (failed.error_code, failed.retryable) == ("invalid_input", False)


async def test_an_output_storage_refuses_for_good_fails_the_step_without_calling_the_provider_again(
    pool, build_providers, storage: FakeStorage
) -> None:
    # Storage's 413 for an output too large: the same call would make the same output (and be paid again).
    storage.refuse_outputs = "storage refused the output (413): larger than 64 MiB"
    providers = build_providers()
    requested = step_requested(options={"size": "96x64"})
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepFailed)

    failed = (await events_of(pool, requested.task_id))[-1]
    assert isinstance(failed, StepFailed)
    assert (failed.error_code, failed.retryable) == ("output_refused", False)
    assert "413" in failed.error_message
    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.claims, job.retries) == ("failed", 1, 0), "one call, not one per claim"


async def test_a_step_for_a_provider_nobody_configured_fails_at_once(pool, build_providers, storage) -> None:
    providers = build_providers()
    requested = step_requested(provider="nobody")
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepFailed)

    (failed,) = await events_of(pool, requested.task_id)
    assert isinstance(failed, StepFailed)
    assert (failed.error_code, failed.retryable) == ("provider_not_found", False)
    assert storage.outputs == []


async def test_a_call_shorter_than_the_progress_interval_shows_only_started_and_completed(
    pool, build_providers
) -> None:
    providers = build_providers(STEP_PROGRESS_INTERVAL_SECONDS=5)
    requested = step_requested(options={"size": "64x64"})
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted)

    assert [type(e) for e in await events_of(pool, requested.task_id)] == [StepStarted, StepCompleted]


async def test_a_long_call_publishes_its_progress_coalesced_and_never_after_its_outcome(
    pool, build_providers
) -> None:
    # The local provider reports ten times over 1.5 s (a start, eight ticks, "Saving the result").
    providers = build_providers(STEP_PROGRESS_INTERVAL_SECONDS=0.5)
    requested = step_requested(options={"durationMs": 1500, "size": "64x64"})
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted)

    events = await events_of(pool, requested.task_id)
    assert (type(events[0]), type(events[-1])) == (StepStarted, StepCompleted)
    progress = [e.progress for e in events[1:-1] if isinstance(e, StepProgressed)]
    assert len(progress) == len(events) - 2, "only progress between started and completed"
    assert 1 <= len(progress) <= 4, progress  # at most one per 0.5 s of a 1.5 s call, plus its last
    assert progress == sorted(set(progress))


async def test_cancelling_a_running_job_stops_its_call(pool, build_providers, storage) -> None:
    providers = build_providers()
    requested = step_requested(options={"durationMs": 1500, "size": "64x64"})
    await deliver(providers, requested)

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepStarted)
        await deliver(providers, cancel_of(requested))
        await asyncio.sleep(2.5)  # past the call's own duration: had it gone on, it would have stored

    assert storage.outputs == [], "the call stopped before storing anything"
    assert not [e for e in await events_of(pool, requested.task_id) if isinstance(e, StepCompleted)]
    (job,) = await jobs_of(pool, requested.task_id)
    assert job.status == "cancelled"


async def test_a_slow_store_keeps_the_lease_so_no_other_runner_calls_the_provider_again(
    pool, build_providers, storage: FakeStorage
) -> None:
    # Storing takes four leases' time; the runner renews its lease throughout, so the other runner (looking
    # for jobs whose lease ran out) never claims this one.
    storage.store_seconds = 2.0
    first = build_providers(owner="runner-first", STEP_LEASE_SECONDS=0.5, STEP_POLL_INTERVAL_SECONDS=0.1)
    second = build_providers(owner="runner-second", STEP_LEASE_SECONDS=0.5, STEP_POLL_INTERVAL_SECONDS=0.1)
    requested = step_requested(options={"size": "64x64"})
    await deliver(first, requested)

    async with running(first.runner), running(second.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted)

    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.claims) == ("completed", 1)
    assert len(storage.outputs) == 1, "the provider was called once, its output stored once"


async def test_a_stopping_runner_hands_its_job_back_and_another_finishes_it_once(
    pool, build_providers, storage
) -> None:
    first = build_providers(owner="runner-first")
    second = build_providers(owner="runner-second")
    requested = step_requested(options={"durationMs": 3000, "size": "64x64"})
    await deliver(first, requested)

    async with running(first.runner):
        await wait_for_event(pool, requested.task_id, StepStarted)
    (handed_back,) = await jobs_of(pool, requested.task_id)
    assert (handed_back.status, handed_back.lease_owner, handed_back.retries) == ("queued", None, 0)

    async with running(second.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted)

    events = await events_of(pool, requested.task_id)
    assert [type(e) for e in events].count(StepStarted) == 2
    assert [type(e) for e in events].count(StepCompleted) == 1
    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.claims) == ("completed", 2)
    assert len(storage.outputs) == 1


def cancel_of(requested: StepRequested) -> TaskCancelRequested:
    return TaskCancelRequested(task_id=requested.task_id, user_id=requested.user_id, by=requested.user_id)


async def test_one_users_burst_does_not_starve_another_users_few_under_a_providers_concurrency(
    pool, redis, build_providers
) -> None:
    providers = build_providers(STEP_CONCURRENCY=8)
    await providers.registry.create(
        "web", name="shared-local", type="local", config={"rateLimit": {"maxConcurrency": 2}}
    )

    def steps_of(user_id: str, count: int) -> list[StepRequested]:
        step = step_requested(provider="shared-local", options={"size": "64x64"})
        return [
            step.model_copy(update={"user_id": user_id, "task_id": str(uuid.uuid4())}) for _ in range(count)
        ]

    burst, few = steps_of("user-burst", 60), steps_of("user-few", 5)
    await deliver(providers, *burst)  # queued first: the oldest jobs are all the burst's
    await deliver(providers, *few)

    async def completed(steps: list[StepRequested]) -> int:
        ids = {s.task_id for s in steps}
        return sum(1 for e in await outbox_events(pool) if isinstance(e, StepCompleted) and e.task_id in ids)

    async def few_done() -> bool:
        return await completed(few) == len(few)

    try:
        async with running(providers.runner):
            await wait_until(few_done, timeout=60, what="the few steps of the second user")
            burst_done = await completed(burst)
    finally:
        await redis.delete("prl:web:{shared-local}:config")

    # Taking turns, the second user's 5 steps end by about the burst's 6th; 15 leaves room for timing.
    assert burst_done <= 15, f"{burst_done} of the burst's steps ran before the second user's 5"
    delayed = [e for e in await outbox_events(pool) if type(e).__name__ == "StepDelayed"]
    assert delayed == [], "jobs beyond the free slots wait queued: the limiter never has to turn one away"


async def test_a_job_the_limiter_turns_away_is_delayed_not_failed_and_runs_once_a_slot_frees(
    pool, redis, build_providers
) -> None:
    providers = build_providers()
    await providers.registry.create(
        "web", name="held-local", type="local", config={"rateLimit": {"maxConcurrency": 1}}
    )
    # Another replica's call holds the only slot (the database shows no job of ours running).
    semaphore = "prl:web:{held-local}:sem"
    await redis.zadd(semaphore, {"another-replica-lease": 9_999_999_999_999})
    requested = step_requested(provider="held-local", options={"size": "64x64"})
    await deliver(providers, requested)

    try:
        async with running(providers.runner):
            await wait_for_event(pool, requested.task_id, StepDelayed)
            await redis.zrem(semaphore, "another-replica-lease")
            await wait_for_event(pool, requested.task_id, StepCompleted)
    finally:
        await redis.delete(semaphore, "prl:web:{held-local}:config")

    events = await events_of(pool, requested.task_id)
    delayed = [e for e in events if isinstance(e, StepDelayed)]
    assert [e.reason for e in delayed] == ["rate_limited"]
    assert not any(isinstance(e, StepFailed) for e in events)
    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.retries) == ("completed", 0), "a denial uses no attempt"


async def test_an_idle_runner_sleeps_until_the_next_job_falls_due_rather_than_polling(
    pool, build_providers
) -> None:
    # Both polls far longer than the test may take: only the job's own time can wake the runner.
    providers = build_providers(STEP_POLL_INTERVAL_SECONDS=60, STEP_IDLE_POLL_SECONDS=60)
    requested = step_requested(options={"size": "64x64"})
    await deliver(providers, requested)
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE step_jobs SET run_at = now() + interval '1.5 seconds' WHERE task_id = %s",
            (requested.task_id,),
        )

    async with running(providers.runner):
        await wait_for_event(pool, requested.task_id, StepCompleted, timeout=20)

    (job,) = await jobs_of(pool, requested.task_id)
    assert (job.status, job.claims) == ("completed", 1)
