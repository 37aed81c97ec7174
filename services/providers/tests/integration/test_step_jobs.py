"""Step jobs on real Postgres: claims never overlap (SKIP LOCKED), a lease that ran out is taken over and
fences its old owner out, a cancel stops a job, and times a runner decides land on the database's clock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from providers_test_support import decide, jobs_of, outbox_events, step_requested

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.providers.events import StepCompleted, StepOutput
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import wait_until
from funmagic_providers.adapters.postgres import ProvidersUnitOfWork
from funmagic_providers.domain import step_job
from funmagic_providers.domain.step_job import StepJob

OUTPUT = StepOutput(assets=(OutputAsset(asset_id="asset-1", role="image"),))
NOW = datetime.now(UTC)


async def add_jobs(pool, count: int, task_id: str = "task-1") -> list[str]:
    ids = []
    async with ProvidersUnitOfWork(pool) as uow:
        for number in range(count):
            change = step_job.accept(
                step_requested(task_id=task_id, step_id=f"step-{number}"),
                job_id=str(uuid.uuid4()),
                correlation_id="corr-1",
                causation_id="cause-1",
                now=NOW,
            )
            assert await (await uow.jobs.add(change.job, decided_at=NOW)).answer()
            ids.append(change.job.id)
    return ids


async def claim(pool, owner: str, *, limit: int = 10, lease_seconds: float = 30.0) -> list[StepJob]:
    async with ProvidersUnitOfWork(pool) as uow:
        return await uow.jobs.claim_due(owner, limit=limit, lease_seconds=lease_seconds)


async def test_two_runners_never_claim_the_same_job(pool) -> None:
    ids = await add_jobs(pool, 6)

    async with ProvidersUnitOfWork(pool) as first:
        mine = await first.jobs.claim_due("runner-a", limit=3, lease_seconds=30)
        # While runner A's claim is not committed, its rows are locked: B skips them instead of waiting.
        theirs = await asyncio.wait_for(claim(pool, "runner-b"), timeout=5)

    assert len(mine) == 3
    assert len(theirs) == 3
    assert {job.id for job in mine}.isdisjoint(job.id for job in theirs)
    assert {job.id for job in mine + theirs} == set(ids)
    assert {job.lease_owner for job in mine} == {"runner-a"}
    assert await claim(pool, "runner-c") == []


async def test_runners_claiming_at_once_share_the_jobs_without_overlap(pool) -> None:
    ids = await add_jobs(pool, 40)

    async def claim_until_empty(owner: str) -> list[str]:
        taken: list[str] = []
        while batch := await claim(pool, owner, limit=3):
            taken += [job.id for job in batch]
        return taken

    claimed = await asyncio.gather(*(claim_until_empty(f"runner-{n}") for n in range(4)))

    every_claim = [job_id for taken in claimed for job_id in taken]
    assert sorted(every_claim) == sorted(ids), "each job exactly once"


async def test_an_expired_lease_is_claimed_again_and_the_old_owner_then_changes_nothing(pool) -> None:
    (job_id,) = await add_jobs(pool, 1)
    (first,) = await claim(pool, "runner-a", lease_seconds=0.2)
    assert await claim(pool, "runner-b") == [], "a live lease is not taken over"

    taken_over: list[StepJob] = []

    async def claimed_by_b() -> bool:
        taken_over.extend(await claim(pool, "runner-b"))
        return bool(taken_over)

    await wait_until(claimed_by_b, timeout=5, what="runner B takes the job over")
    assert (taken_over[0].id, taken_over[0].lease_owner, taken_over[0].claims) == (job_id, "runner-b", 2)

    async with ProvidersUnitOfWork(pool) as uow:
        stale_renewal = await decide(
            uow,
            job_id,
            lambda job: step_job.renew_lease(job, owner="runner-a", now=NOW, lease_seconds=30),
            NOW,
        )
        stale_completion = await decide(
            uow, job_id, lambda job: step_job.complete(job, owner="runner-a", output=OUTPUT), NOW
        )
    async with ProvidersUnitOfWork(pool) as uow:
        completion = await decide(
            uow, job_id, lambda job: step_job.complete(job, owner="runner-b", output=OUTPUT), NOW
        )
    async with ProvidersUnitOfWork(pool) as uow:
        again = await decide(
            uow, job_id, lambda job: step_job.complete(job, owner="runner-b", output=OUTPUT), NOW
        )

    assert (stale_renewal, stale_completion, again) == (None, None, None)
    assert completion is not None
    completed = [e for e in await outbox_events(pool) if isinstance(e, StepCompleted)]
    assert len(completed) == 1
    (job,) = await jobs_of(pool, first.task_id)
    assert (job.status, job.lease_owner, job.lease_until, job.claims) == ("completed", None, None, 2)


async def test_a_cancel_stops_a_queued_job_and_fences_out_a_running_one(pool, build_providers) -> None:
    providers = build_providers()
    await add_jobs(pool, 1, task_id="task-running")
    (running,) = await claim(pool, "runner-a")
    await add_jobs(pool, 1, task_id="task-queued")

    for task_id in ("task-queued", "task-running"):
        async with ProvidersUnitOfWork(pool) as uow:
            cancelled = await providers.jobs.cancel(task_id, uow)
        assert cancelled == 1

    assert [job.status for job in await jobs_of(pool, "task-queued")] == ["cancelled"]
    assert [job.status for job in await jobs_of(pool, "task-running")] == ["cancelled"]
    assert await claim(pool, "runner-b") == []
    async with ProvidersUnitOfWork(pool) as uow:
        late = await decide(
            uow, running.id, lambda job: step_job.complete(job, owner="runner-a", output=OUTPUT), NOW
        )
    assert late is None
    assert not [e for e in await outbox_events(pool) if isinstance(e, StepCompleted)]


async def test_times_a_runner_decides_are_kept_as_distances_on_the_database_clock(pool) -> None:
    # The runner's clock is years off the database's: what it decides still means "in 60 s" or "now".
    clock = ManualClock(datetime(2020, 1, 1, tzinfo=UTC))
    later_id, now_id = await add_jobs(pool, 2)
    claimed = await claim(pool, "runner-a")
    assert {job.id for job in claimed} == {later_id, now_id}

    async with ProvidersUnitOfWork(pool) as uow:
        soon = clock.now() + timedelta(seconds=60)
        await decide(
            uow, later_id, lambda job: step_job.postpone(job, owner="runner-a", until=soon), clock.now()
        )
        await decide(
            uow, now_id, lambda job: step_job.postpone(job, owner="runner-a", until=clock.now()), clock.now()
        )

    assert [job.id for job in await claim(pool, "runner-b")] == [now_id]
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM run_at - now()) AS wait FROM step_jobs WHERE id = %s", (later_id,)
        )
        wait = (await cursor.fetchone())["wait"]
    assert 55 < wait <= 60


async def test_a_repeated_step_requested_adds_no_second_job(pool) -> None:
    requested = step_requested(task_id="task-twice")
    async with ProvidersUnitOfWork(pool).pipelined() as uow:
        sent = [
            await uow.jobs.add(
                step_job.accept(
                    requested, job_id=job_id, correlation_id=None, causation_id=None, now=NOW
                ).job,
                decided_at=NOW,
            )
            for job_id in (str(uuid.uuid4()), str(uuid.uuid4()))
        ]
        added = [await each.answer() for each in sent]

    assert added == [True, False]
    assert len(await jobs_of(pool, "task-twice")) == 1


async def test_due_jobs_are_taken_in_turns_per_user_so_a_burst_does_not_starve_the_others(pool) -> None:
    async def queue(user_id: str, count: int, at: datetime) -> None:
        async with ProvidersUnitOfWork(pool) as uow:
            for number in range(count):
                requested = step_requested(step_id=f"step-{number}").model_copy(update={"user_id": user_id})
                change = step_job.accept(
                    requested, job_id=str(uuid.uuid4()), correlation_id="c", causation_id="c", now=at
                )
                assert await (await uow.jobs.add(change.job, decided_at=at)).answer()

    await queue("user-burst", 10, NOW - timedelta(seconds=5))  # queued first, and many
    await queue("user-few", 2, NOW)

    first = await claim(pool, "runner-a", limit=4)
    rest = await claim(pool, "runner-a", limit=20)

    assert [job.user_id for job in first] == ["user-burst", "user-few", "user-burst", "user-few"]
    assert [job.user_id for job in rest] == ["user-burst"] * 8


async def test_a_runner_looks_at_the_queue_in_one_read_what_is_due_and_when_the_next_is(pool) -> None:
    async def look():
        async with ProvidersUnitOfWork(pool).reading() as uow:
            return await uow.jobs.look()

    empty = await look()
    assert (empty.providers, empty.seconds_until_due) == ([], None)

    clock = ManualClock(datetime(2020, 1, 1, tzinfo=UTC))
    later_id, now_id = await add_jobs(pool, 2)
    due = await look()
    assert due.providers == [("web", "local")]  # two jobs of one provider: one pair
    assert due.seconds_until_due is not None
    assert due.seconds_until_due <= 0

    await claim(pool, "runner-a", lease_seconds=30)
    async with ProvidersUnitOfWork(pool) as uow:
        soon = clock.now() + timedelta(seconds=60)
        await decide(
            uow, later_id, lambda job: step_job.postpone(job, owner="runner-a", until=soon), clock.now()
        )
    # One running job whose lease ends in 30 s, one queued for 60 s from now: nothing due, the lease first.
    waiting = await look()
    assert waiting.providers == []
    assert waiting.seconds_until_due is not None
    assert 25 < waiting.seconds_until_due <= 30
    assert {job.status for job in await jobs_of(pool, "task-1")} == {"queued", "running"}
    assert now_id in {job.id for job in await jobs_of(pool, "task-1") if job.status == "running"}
