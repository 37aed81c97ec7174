"""Step execution: `StepRequested` becomes a durable job; runners claim due jobs and call the provider.

The job's rules (when it runs, is retried, delayed, postponed, finished, and who may change it) are the
`domain.step_job` aggregate. Here is what happens around them: the runner loop and its concurrency, the
lease renewal while a call runs, the rate limiter's slot, the circuit breaker, reading inputs from and
storing outputs in storage. Every change of a job is one unit of work: lock, decide, save, publish.

A runner holds a lease on its job, renewed while the call runs; if the runner dies, the lease runs out
and another runner (or this one after a restart) runs the job again. Every change is fenced by the
lease, so only one runner can complete a job and `StepCompleted` is published once.

The decrypted key is used in memory for the call: job rows, events and logs carry the provider's name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepOutput
from funmagic_contracts.tasks.events import StepRequested
from funmagic_kit.clock import Clock
from funmagic_kit.errors import TransientError
from funmagic_kit.logs import bind_correlation_id, get_logger
from funmagic_kit.ports import UnitOfWorkFactory
from funmagic_kit.tracing import context_from_traceparent, current_traceparent, span
from funmagic_providers.application.ports import (
    CallOutcome,
    Limiter,
    LiveReplies,
    ProviderCallRecorder,
    ProvidersUnitOfWork,
    RunnerSettings,
    StepMetrics,
    Storage,
)
from funmagic_providers.application.progress import ProgressCoalescer
from funmagic_providers.application.registry import ProviderRegistry
from funmagic_providers.domain import step_job
from funmagic_providers.domain.circuit import CircuitBreaker
from funmagic_providers.domain.errors import ProviderError, ProviderUnavailable
from funmagic_providers.domain.provider_calls import ProviderCall
from funmagic_providers.domain.step_job import StepJob, StepJobChange
from funmagic_providers.domain.step_policy import FailStep
from funmagic_providers.domain.steps import NO_LIVE_OUTPUT, LiveOutput, ProviderAccess, StepCall, StepResult

__all__ = ["StepJobs", "StepRunner"]

log = get_logger(__name__)

T = TypeVar("T")

# A storage hiccup (our own infrastructure) puts the job back for this long without using a retry.
INFRASTRUCTURE_RETRY = timedelta(seconds=1)

Transition = Callable[[StepJob, datetime], StepJobChange | None]
"""A decision on a locked job at a time: `lambda job, now: step_job.start(job, owner=…)`."""


@dataclass(frozen=True, kw_only=True)
class StepJobs:
    """The Kafka side: record requested steps, cancel a task's steps."""

    runner: StepRunner
    clock: Clock

    async def accept(self, requested: StepRequested, envelope: Envelope, uow: ProvidersUnitOfWork) -> None:
        now = self.clock.now()
        change = step_job.accept(
            requested,
            job_id=str(uuid.uuid4()),
            correlation_id=envelope.correlation_id,
            causation_id=str(envelope.id),
            now=now,
            traceparent=current_traceparent(),
        )
        # Not waited for: the insert leaves with the batch's COMMIT. A StepRequested that came again adds
        # nothing, and the runner it wakes finds nothing new.
        await uow.jobs.add(change.job, decided_at=now)
        # After the commit: a runner woken earlier would not see the row yet and wait for its next poll.
        uow.after_commit(self.runner.wake)

    async def cancel(self, task_id: str, uow: ProvidersUnitOfWork) -> int:
        """Cancel the unfinished jobs of a task (or of a studio reply: its id is the job's task id)."""
        now = self.clock.now()
        cancelled = 0
        for job in await uow.jobs.running_of_task(task_id):
            change = step_job.cancel(job)
            if change is None:
                continue
            await uow.jobs.save(change.job, decided_at=now)
            # A call in flight here stops once the cancel is committed; one on another replica stops at
            # its next lease renewal, which finds the job no longer running.
            uow.after_commit(lambda job_id=job.id: self.runner.cancel_local(job_id))
            cancelled += 1
        return cancelled


@dataclass(kw_only=True, eq=False)
class StepRunner:
    """A background worker: claims due step jobs and runs up to `settings.step_concurrency` of them at a
    time."""

    uow: UnitOfWorkFactory[ProvidersUnitOfWork]
    registry: ProviderRegistry
    limiter: Limiter
    storage: Storage
    settings: RunnerSettings
    clock: Clock
    metrics: StepMetrics
    owner: str | None = None  # this runner's name in job leases (a new one when not given)
    live: LiveReplies | None = None  # where studio replies (scope admin) show as they are made
    recorder: ProviderCallRecorder | None = None  # sees the adapters' HTTP calls (diagnostics for admins)
    # The loop's own state:
    _wake: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _running: dict[str, asyncio.Task[None]] = field(init=False, default_factory=dict)
    _breakers: dict[tuple[str, str], CircuitBreaker] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.owner = self.owner or f"runner-{uuid.uuid4()}"

    # --- the loop ----------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due jobs now (a job was just committed here)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                free = self.settings.step_concurrency - len(self._running)
                wait = self.settings.step_poll_interval_seconds
                if free > 0:
                    try:
                        wait = self._next_look(await self._claim_and_start(free))
                    except Exception:  # the database is away: the next round tries again
                        log.exception("claiming step jobs failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                self._wake.clear()
        finally:
            await self._hand_back_running()

    def _next_look(self, seconds_until_due: float | None) -> float:
        """How long to sleep unless woken: until the next job falls due, no longer than the idle limit;
        the short poll while a job is due but was not taken (this runner's or a provider's slots full)."""
        if seconds_until_due is None:
            return self.settings.step_idle_poll_seconds
        if seconds_until_due <= 0:
            return self.settings.step_poll_interval_seconds
        return min(seconds_until_due, self.settings.step_idle_poll_seconds)

    async def _claim_and_start(self, free: int) -> float | None:
        """Claim and start up to `free` due jobs; the seconds until the next one falls due after that."""
        async with self.uow().reading() as uow:
            look = await uow.jobs.look()
        due = look.providers
        if not due:  # the common idle round: one read, no transaction
            return look.seconds_until_due
        # A provider with a concurrency limit is given no more jobs than it has free slots: the rest wait
        # queued and are taken in turn when a call ends, not turned away by the limiter and delayed.
        limits = {}
        for scope, provider in due:
            max_concurrency = (await self.limiter.config(scope, provider)).max_concurrency
            if max_concurrency:
                limits[(scope, provider)] = max_concurrency
        # The claim and the look after it go out together: one round trip, then the COMMIT.
        async with self.uow().pipelined() as uow:
            claimed = await uow.jobs.send_claim_due(
                self.owner, limit=free, lease_seconds=self.settings.step_lease_seconds,
                max_concurrency=limits,
            )  # fmt: skip
            next_due = await uow.jobs.send_seconds_until_due()
            jobs = await claimed.answer()
            seconds_until_due = await next_due.answer()
        for job in jobs:
            task = asyncio.create_task(self._execute(job), name=f"step-job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(lambda _, job_id=job.id: self._finished(job_id))
        return seconds_until_due

    def _finished(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._wake.set()  # a slot is free

    def cancel_local(self, job_id: str) -> None:
        task = self._running.get(job_id)
        if task is not None:
            task.cancel("task cancelled")

    async def _hand_back_running(self) -> None:
        """On stop: interrupt calls in flight and put their jobs back in the queue for another runner."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel("runner stopping")
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one job -----------------------------------------------------------------------------------

    async def _decide(self, job: StepJob, transition: Transition) -> StepJobChange | None:
        """Lock the job, decide, save, publish — one unit of work, pipelined: the lock is one round trip,
        the save, the events and the commit one more. None: the decision changed nothing (the job is no
        longer this runner's, or there was nothing new to say)."""
        now = self.clock.now()
        async with self.uow().pipelined() as uow:
            current = await uow.jobs.lock(job.id)
            change = None if current is None else transition(current, now)
            if change is None:
                return None
            await uow.jobs.save(change.job, decided_at=now)
            for event in change.events:
                uow.publish(event, correlation_id=job.correlation_id, causation_id=job.causation_id)
        return change

    async def _execute(self, job: StepJob) -> None:
        with (
            bind_correlation_id(job.correlation_id),
            span(
                f"step {job.step_type} on {job.provider}",
                parent=context_from_traceparent(job.traceparent),
                attributes={"funmagic.task_id": job.task_id, "funmagic.step_id": job.step_id},
            ),
        ):
            try:
                await self._execute_job(job)
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    with contextlib.suppress(Exception):
                        await self._decide(
                            job, lambda current, now: step_job.postpone(current, owner=self.owner, until=now)
                        )
                raise
            except Exception:
                # Our own failure (database, storage down…): the lease runs out and the job runs again.
                log.exception("step job crashed; it will be claimed again", extra={"job_id": job.id})

    async def _execute_job(self, job: StepJob) -> None:
        if step_job.is_past_deadline(job, self.clock.now()):
            await self._fail(job, step_job.DEADLINE_EXCEEDED)
            return
        try:
            access = await self.registry.access(job.scope, job.provider)
        except ProviderError as error:
            await self._fail(job, FailStep(error.code, str(error), retryable=False))
            return
        breaker = self._breaker(job.scope, job.provider)
        now = self.clock.now()
        if not breaker.allows(now):
            await self._delay(job, breaker.retry_at(now), "circuit_open")
            return
        admission = await self.limiter.acquire(job.scope, job.provider, job.id)
        if not admission.admitted:
            breaker.record_neutral()
            await self._delay(job, now + timedelta(seconds=admission.retry_after), "rate_limited")
            return
        try:
            await self._call(job, access, breaker)
        finally:
            await asyncio.shield(self.limiter.release(job.scope, job.provider, job.id))

    async def _call(self, job: StepJob, access: ProviderAccess, breaker: CircuitBreaker) -> None:
        owner = self.owner
        if await self._decide(job, lambda current, now: step_job.start(current, owner=owner)) is None:
            breaker.record_neutral()
            return
        try:
            # Leased from the first input read to the last output stored: a slow storage must not let the
            # lease run out mid-step, or another runner would claim the job and call the provider again.
            output = await self._with_lease(job, self._run(job, access))
        except ProviderError as error:
            if error.transient:
                breaker.record_failure(self.clock.now())
            else:
                breaker.record_neutral()
            await self._after_error(job, error)
            return
        except TransientError as error:
            breaker.record_neutral()
            log.warning(
                "step job waits for our infrastructure", extra={"job_id": job.id, "error": str(error)}
            )
            until = self.clock.now() + INFRASTRUCTURE_RETRY
            await self._decide(job, lambda current, now: step_job.postpone(current, owner=owner, until=until))
            return
        breaker.record_success()
        await self._decide(job, lambda current, now: step_job.complete(current, owner=owner, output=output))

    async def _run(self, job: StepJob, access: ProviderAccess) -> StepOutput:
        """The step itself: its inputs read, the provider called, the outputs stored."""
        inputs = tuple(
            [await self.storage.read_asset(job.user_id, asset_id) for asset_id in job.input.asset_ids]
        )
        # The tool's own images (a style reference's), which the user does not own: storage gives only
        # published ones, what anyone can fetch from the CDN anyway.
        references = tuple(
            [await self.storage.read_catalog_image(asset_id) for asset_id in job.input.reference_asset_ids]
        )
        history_inputs = tuple(
            [await self.storage.read_asset(job.user_id, asset_id) for asset_id in job.input.history_asset_ids]
        )
        call = StepCall(
            task_id=job.task_id, user_id=job.user_id, step_id=job.step_id, step_type=job.step_type,
            model=job.model, prompt=job.input.prompt, options=job.input.options, inputs=inputs,
            provider=access, live=self._live_output(job), references=references,
            history_inputs=history_inputs,
        )  # fmt: skip
        adapter = self.registry.adapter_for(access.type)
        progress = self._progress_of(job)
        with (
            span(
                f"provider call {access.type} {job.step_type}",
                attributes={"funmagic.provider": job.provider, "funmagic.model": job.model},
            ),
            self._recording() as calls,
        ):
            try:
                result = await self._timed(job, adapter.run(call, progress.report))
            finally:
                # No progress after the outcome: a report still waiting is dropped, one being published
                # commits first.
                await asyncio.shield(progress.close())
                # Kept before the outcome is decided (and published), so an admin reading a finished task
                # finds its calls; kept for a failed or cancelled call too, where they matter most.
                await asyncio.shield(self._keep_calls(job, calls))
        return await self._store(job, result)

    def _recording(self) -> contextlib.AbstractContextManager[list[ProviderCall]]:
        return contextlib.nullcontext([]) if self.recorder is None else self.recorder.record()

    async def _keep_calls(self, job: StepJob, calls: list[ProviderCall]) -> None:
        """Store the job's recorded calls. Diagnostics never decide a step: a failure here is logged only."""
        if not calls:
            return
        try:
            async with self.uow().pipelined() as uow:
                await uow.provider_calls.add(job.id, calls)
        except Exception:
            log.exception("keeping the provider calls failed", extra={"job_id": job.id})

    async def _timed(self, job: StepJob, call: Awaitable[StepResult]) -> StepResult:
        """The provider call, its time and how it ended told to the metrics."""
        started = time.perf_counter()
        outcome: CallOutcome = "error"
        try:
            result = await call
            outcome = "succeeded"
            return result
        except ProviderError as error:
            outcome = "unavailable" if error.transient else "failed"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            self.metrics.provider_call(job.provider, job.step_type, outcome, time.perf_counter() - started)

    async def _with_lease(self, job: StepJob, call: Awaitable[T]) -> T:
        """Run `call` (the step's work) while renewing the job's lease (and the limiter's); stop it if the
        job was cancelled or taken over, and when the step's deadline passes."""
        call_task = asyncio.ensure_future(call)
        remaining = (job.deadline_at - self.clock.now()).total_seconds()
        lease_seconds = self.settings.step_lease_seconds
        interval = max(lease_seconds / 3, 0.05)
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                while True:
                    done, _ = await asyncio.wait({call_task}, timeout=interval)
                    if done:
                        return call_task.result()
                    renewed = await self._decide(
                        job,
                        lambda current, now: step_job.renew_lease(
                            current, owner=self.owner, now=now, lease_seconds=lease_seconds
                        ),
                    )
                    await self.limiter.renew(job.scope, job.provider, job.id)
                    if renewed is None:
                        raise asyncio.CancelledError("the job is no longer ours (cancelled or taken over)")
        except TimeoutError:
            raise ProviderUnavailable(f"{job.provider} did not finish before the step's deadline") from None
        finally:
            if not call_task.done():
                call_task.cancel()
                with contextlib.suppress(BaseException):
                    await call_task

    async def _store(self, job: StepJob, result: StepResult) -> StepOutput:
        """Store every output file as an asset of the task's user; the step's output names them."""
        # Studio outputs live in the admin bucket under `{adminId}/studio/…` (the seed's layout).
        visibility = "admin-private" if job.scope == "admin" else "private"
        module = "studio" if job.scope == "admin" else job.step_type
        assets = []
        for output in result.files:
            stored = await self.storage.store_output(
                user_id=job.user_id, task_id=job.task_id, module=module, filename=output.filename,
                content_type=output.content_type, data=output.data, visibility=visibility,
            )  # fmt: skip
            assets.append(OutputAsset(asset_id=stored.asset_id, role=output.role))
        return StepOutput(
            assets=tuple(assets),
            provider_request_id=result.provider_request_id,
            metadata=dict(result.metadata),
        )

    def _live_output(self, job: StepJob) -> LiveOutput:
        if job.scope == "admin" and self.live is not None:
            return self.live.for_reply(job.user_id, job.task_id)
        return NO_LIVE_OUTPUT

    def _progress_of(self, job: StepJob) -> ProgressCoalescer:
        owner = self.owner

        async def publish(percent: int, message: str) -> None:
            await self._decide(
                job,
                lambda current, now: step_job.report_progress(
                    current, owner=owner, percent=percent, message=message
                ),
            )

        return ProgressCoalescer(publish, interval_seconds=self.settings.step_progress_interval_seconds)

    # --- outcomes ----------------------------------------------------------------------------------

    async def _after_error(self, job: StepJob, error: ProviderError) -> None:
        config = await self.limiter.config(job.scope, job.provider)
        change = await self._decide(
            job,
            lambda current, now: step_job.after_provider_error(
                current, owner=self.owner, error=error, config=config, now=now
            ),
        )
        if change is not None and change.job.status == "queued":
            log.info(
                "provider call will be retried",
                extra={"job_id": job.id, "provider": job.provider, "retry": change.job.retries,
                       "error_code": error.code},
            )  # fmt: skip
        elif change is not None:
            _log_failure(job, error.code)

    async def _fail(self, job: StepJob, failure: FailStep) -> None:
        if await self._decide(
            job, lambda current, now: step_job.fail(current, owner=self.owner, failure=failure)
        ):
            _log_failure(job, failure.error_code)

    async def _delay(self, job: StepJob, until: datetime, reason: step_job.WaitReason) -> None:
        await self._decide(
            job, lambda current, now: step_job.delay(current, owner=self.owner, until=until, reason=reason)
        )

    def circuits(self, providers: Iterable[tuple[str, str]] = ()) -> dict[tuple[str, str], CircuitBreaker]:
        """A copy of this runner's circuit breakers by (scope, provider), in order: the ones a call has met
        so far, and each of `providers` not called yet as a new (closed) one. Each replica has its own."""
        keys = sorted({*self._breakers, *providers})
        return {
            key: replace(self._breakers[key]) if key in self._breakers else self._new_breaker()
            for key in keys
        }

    def _breaker(self, scope: str, provider: str) -> CircuitBreaker:
        key = (scope, provider)
        if key not in self._breakers:
            self._breakers[key] = self._new_breaker()
        return self._breakers[key]

    def _new_breaker(self) -> CircuitBreaker:
        return CircuitBreaker(
            failure_threshold=self.settings.circuit_failure_threshold,
            cooldown=timedelta(seconds=self.settings.circuit_cooldown_seconds),
        )


def _log_failure(job: StepJob, error_code: str) -> None:
    log.info("step failed", extra={"job_id": job.id, "provider": job.provider, "error_code": error_code})
