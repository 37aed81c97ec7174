"""Step execution: `StepRequested` becomes a durable job; runners claim due jobs and call the provider.

A job's life: queued → (claimed) running → completed | failed | cancelled, or back to queued when
- the rate limiter denies a slot or the provider's circuit is open: delayed, no retry used;
- the provider answers 429 or fails transiently: retried with backoff, one retry used (the step policy);
- the service stops: handed back at once for another runner.
A runner holds a lease on its job, renewed while the call runs; if the runner dies, the lease runs out
and another runner (or this one after a restart) runs the job again. Every state change is fenced by the
lease, so only one runner can complete a job and `StepCompleted` is published once.

The decrypted key is used in memory for the call: job rows, events and logs carry the provider's name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg

from funmagic_contracts.base import IntegrationEvent, OutputAsset
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import (
    StepCompleted,
    StepDelayed,
    StepFailed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import StepRequested
from funmagic_kit.db import UnitOfWork
from funmagic_kit.errors import TransientError
from funmagic_kit.logs import bind_correlation_id, get_logger
from funmagic_kit.outbox import add_to_outbox
from funmagic_providers.application.registry import ProviderRegistry
from funmagic_providers.domain.circuit import CircuitBreaker
from funmagic_providers.domain.errors import ProviderError, ProviderUnavailable
from funmagic_providers.domain.rate_limit import RateLimitConfig
from funmagic_providers.domain.step_policy import FailStep, decide_after_error
from funmagic_providers.domain.steps import InputFile, StepCall, StepResult

__all__ = ["RunnerSettings", "StepJobs", "StepRunner"]

log = get_logger(__name__)


class Limiter(Protocol):
    async def config(self, scope: str, provider: str) -> RateLimitConfig: ...
    async def acquire(self, scope: str, provider: str, lease_id: str) -> Any: ...
    async def release(self, scope: str, provider: str, lease_id: str) -> None: ...
    async def renew(self, scope: str, provider: str, lease_id: str) -> bool: ...


class Storage(Protocol):
    async def read_asset(self, user_id: str, asset_id: str) -> InputFile: ...
    async def store_output(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunnerSettings:
    concurrency: int = 8
    lease_seconds: float = 30.0
    poll_interval_seconds: float = 0.5
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 30.0
    # A storage hiccup (our own infrastructure) puts the job back for this long without using a retry.
    infrastructure_retry_seconds: float = 1.0


JobsFactory = Callable[[psycopg.AsyncConnection], Any]
"""`jobs(conn)`: the step-job records on this connection (adapters.postgres.StepJobRecords)."""


class StepJobs:
    """The Kafka side: record requested steps, cancel a task's steps."""

    def __init__(self, runner: StepRunner, jobs: JobsFactory) -> None:
        self._runner = runner
        self._jobs = jobs

    async def accept(self, uow: UnitOfWork, envelope: Envelope, event: StepRequested) -> None:
        added = await self._jobs(uow.conn).add(
            {
                "task_id": event.task_id,
                "user_id": event.user_id,
                "step_id": event.step_id,
                "attempt": event.attempt,
                "step_type": event.step_type,
                "provider": event.provider,
                "model": event.model,
                "scope": event.scope,
                "input": event.input.model_dump(mode="json"),
                "deadline_at": event.deadline_at,
                "correlation_id": envelope.correlation_id,
                "causation_id": str(envelope.id),
            }
        )
        if added:
            # After the commit: a runner woken earlier would not see the row yet and wait for its next poll.
            uow.after_commit(self._runner.wake)

    async def cancel(self, conn: psycopg.AsyncConnection, task_id: str) -> int:
        cancelled = await self._jobs(conn).cancel_task(task_id)
        for job in cancelled:
            self._runner.cancel_local(job["id"])
        return len(cancelled)


class StepRunner:
    """A background worker: claims due step jobs and runs up to `concurrency` of them at a time."""

    def __init__(
        self,
        *,
        uow: Callable[[], UnitOfWork],
        jobs: JobsFactory,
        registry: ProviderRegistry,
        limiter: Limiter,
        storage: Storage,
        settings: RunnerSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: str | None = None,
    ) -> None:
        self._uow = uow
        self._jobs = jobs
        self._registry = registry
        self._limiter = limiter
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self.owner = owner or f"runner-{uuid.uuid4()}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}

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
                free = self._settings.concurrency - len(self._running)
                if free > 0:
                    try:
                        await self._claim_and_start(free)
                    except (psycopg.Error, TransientError):
                        log.exception("claiming step jobs failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._settings.poll_interval_seconds)
                self._wake.clear()
        finally:
            await self._hand_back_running()

    async def _claim_and_start(self, free: int) -> None:
        async with self._uow() as uow:
            jobs = await self._jobs(uow.conn).claim_due(
                self.owner, limit=free, lease_seconds=self._settings.lease_seconds
            )
        for job in jobs:
            task = asyncio.create_task(self._execute(job), name=f"step-job-{job['id']}")
            self._running[job["id"]] = task
            task.add_done_callback(lambda _, job_id=job["id"]: self._finished(job_id))

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

    async def _execute(self, job: dict[str, Any]) -> None:
        with bind_correlation_id(job["correlation_id"]):
            try:
                await self._execute_job(job)
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    with contextlib.suppress(Exception):
                        async with self._uow() as uow:
                            await self._jobs(uow.conn).postpone(
                                job["id"], self.owner, delay_seconds=0, retries=None, counts_as_delay=False
                            )
                raise
            except Exception:
                # Our own failure (database, storage down…): the lease runs out and the job runs again.
                log.exception("step job crashed; it will be claimed again", extra={"job_id": job["id"]})

    async def _execute_job(self, job: dict[str, Any]) -> None:
        scope, provider_name = job["scope"], job["provider"]
        now = self._clock()
        if now >= job["deadline_at"]:
            await self._fail(
                job, FailStep("deadline_exceeded", "the step ran past its deadline", retryable=False)
            )
            return
        try:
            access = await self._registry.access(scope, provider_name)
        except ProviderError as error:
            await self._fail(job, FailStep(error.code, str(error), retryable=False))
            return
        breaker = self._breaker(scope, provider_name)
        if not breaker.allows(now):
            await self._delay(job, breaker.retry_at(now), "circuit_open")
            return
        admission = await self._limiter.acquire(scope, provider_name, job["id"])
        if not admission.admitted:
            breaker.record_neutral()
            await self._delay(job, now + timedelta(seconds=admission.retry_after), "rate_limited")
            return
        try:
            await self._call(job, access, breaker)
        finally:
            await asyncio.shield(self._limiter.release(scope, provider_name, job["id"]))

    async def _call(self, job: dict[str, Any], access: Any, breaker: CircuitBreaker) -> None:
        if not await self._publish_if_mine(
            job, StepStarted(task_id=job["task_id"], user_id=job["user_id"], step_id=job["step_id"],
                             provider=job["provider"], attempt=job["attempt"])
        ):  # fmt: skip
            breaker.record_neutral()
            return
        try:
            inputs = tuple(
                [
                    await self._storage.read_asset(job["user_id"], asset_id)
                    for asset_id in job["input"]["asset_ids"]
                ]
            )
            call = StepCall(
                task_id=job["task_id"], user_id=job["user_id"], step_id=job["step_id"],
                step_type=job["step_type"], model=job["model"], prompt=job["input"].get("prompt"),
                options=job["input"].get("options") or {}, inputs=inputs, provider=access,
            )  # fmt: skip
            adapter = self._registry.adapter_for(access.type)
            result = await self._with_lease(job, adapter.run(call, self._progress_reporter(job)))
            stored = await self._store(job, result)
        except ProviderError as error:
            if error.transient:
                breaker.record_failure(self._clock())
            else:
                breaker.record_neutral()
            await self._after_error(job, error)
            return
        except TransientError as error:
            breaker.record_neutral()
            log.warning(
                "step job waits for our infrastructure", extra={"job_id": job["id"], "error": str(error)}
            )
            await self._postpone(job, self._settings.infrastructure_retry_seconds)
            return
        breaker.record_success()
        event = StepCompleted(
            task_id=job["task_id"], user_id=job["user_id"], step_id=job["step_id"], attempt=job["attempt"],
            output=StepOutput(
                assets=tuple(OutputAsset(asset_id=a["id"], role=role) for role, a in stored),
                provider_request_id=result.provider_request_id,
                metadata=dict(result.metadata),
            ),
        )  # fmt: skip
        async with self._uow() as uow:
            if await self._jobs(uow.conn).finish(
                job["id"], self.owner, "completed", provider_request_id=result.provider_request_id
            ):
                await self._publish(uow.conn, job, [event])

    async def _with_lease(self, job: dict[str, Any], call: Awaitable[StepResult]) -> StepResult:
        """Run the call while renewing the job's lease (and the limiter's); stop it if the job was
        cancelled or taken over, and when the step's deadline passes."""
        call_task = asyncio.ensure_future(call)
        remaining = (job["deadline_at"] - self._clock()).total_seconds()
        interval = max(self._settings.lease_seconds / 3, 0.05)
        try:
            async with asyncio.timeout(max(remaining, 0.001)):
                while True:
                    done, _ = await asyncio.wait({call_task}, timeout=interval)
                    if done:
                        return call_task.result()
                    async with self._uow() as uow:
                        status = await self._jobs(uow.conn).renew_lease(
                            job["id"], self.owner, self._settings.lease_seconds
                        )
                    await self._limiter.renew(job["scope"], job["provider"], job["id"])
                    if status != "running":
                        raise asyncio.CancelledError(f"job is {status or 'no longer ours'}")
        except TimeoutError:
            raise ProviderUnavailable(
                f"{job['provider']} did not finish before the step's deadline"
            ) from None
        finally:
            if not call_task.done():
                call_task.cancel()
                with contextlib.suppress(BaseException):
                    await call_task

    async def _store(self, job: dict[str, Any], result: StepResult) -> list[tuple[str, dict[str, Any]]]:
        visibility = "admin-private" if job["scope"] == "admin" else "private"
        stored = []
        for output in result.files:
            asset = await self._storage.store_output(
                user_id=job["user_id"], task_id=job["task_id"], module=job["step_type"],
                filename=output.filename, content_type=output.content_type, data=output.data,
                visibility=visibility,
            )  # fmt: skip
            stored.append((output.role, asset))
        return stored

    def _progress_reporter(self, job: dict[str, Any]) -> Callable[[int, str], Awaitable[None]]:
        reported = -1

        async def report(percent: int, message: str) -> None:
            nonlocal reported
            percent = max(0, min(int(percent), 100))
            if percent <= reported:
                return
            reported = percent
            await self._publish_if_mine(
                job, StepProgressed(task_id=job["task_id"], user_id=job["user_id"], step_id=job["step_id"],
                                    attempt=job["attempt"], progress=percent, message=message[:200])
            )  # fmt: skip

        return report

    # --- outcomes ----------------------------------------------------------------------------------

    async def _after_error(self, job: dict[str, Any], error: ProviderError) -> None:
        config = await self._limiter.config(job["scope"], job["provider"])
        decision = decide_after_error(
            error,
            retries_used=job["retries"],
            config=config,
            now=self._clock(),
            deadline_at=job["deadline_at"],
        )
        if isinstance(decision, FailStep):
            await self._fail(job, decision)
            return
        log.info(
            "provider call will be retried",
            extra={"job_id": job["id"], "provider": job["provider"], "retry": decision.retry_number,
                   "error_code": error.code},
        )  # fmt: skip
        delay = (decision.retry_at - self._clock()).total_seconds()
        async with self._uow() as uow:
            if await self._jobs(uow.conn).postpone(
                job["id"],
                self.owner,
                delay_seconds=delay,
                retries=decision.retry_number,
                counts_as_delay=False,
            ):
                await self._publish(uow.conn, job, [self._delayed(job, decision.retry_at, decision.reason)])

    async def _delay(self, job: dict[str, Any], retry_at: datetime, reason: str) -> None:
        delay = max((retry_at - self._clock()).total_seconds(), 0.0)
        async with self._uow() as uow:
            if not await self._jobs(uow.conn).postpone(
                job["id"], self.owner, delay_seconds=delay, retries=None, counts_as_delay=True
            ):
                return
            # Said once per wait, not on every re-check: a busy provider would flood the task's stream.
            if job["delays"] == 0:
                await self._publish(uow.conn, job, [self._delayed(job, retry_at, reason)])

    async def _postpone(self, job: dict[str, Any], delay_seconds: float) -> None:
        """Back to the queue without using a retry (our own infrastructure was not ready)."""
        async with self._uow() as uow:
            await self._jobs(uow.conn).postpone(
                job["id"], self.owner, delay_seconds=delay_seconds, retries=None, counts_as_delay=False
            )

    async def _fail(self, job: dict[str, Any], decision: FailStep) -> None:
        log.info(
            "step failed",
            extra={"job_id": job["id"], "provider": job["provider"], "error_code": decision.error_code},
        )
        async with self._uow() as uow:
            if await self._jobs(uow.conn).finish(
                job["id"], self.owner, "failed", error_code=decision.error_code,
                error_message=decision.error_message,
            ):  # fmt: skip
                await self._publish(
                    uow.conn,
                    job,
                    [StepFailed(task_id=job["task_id"], user_id=job["user_id"], step_id=job["step_id"],
                                attempt=job["attempt"], error_code=decision.error_code,
                                error_message=decision.error_message, retryable=decision.retryable)],
                )  # fmt: skip

    def _delayed(self, job: dict[str, Any], retry_at: datetime, reason: str) -> StepDelayed:
        return StepDelayed(
            task_id=job["task_id"], user_id=job["user_id"], step_id=job["step_id"], attempt=job["attempt"],
            reason=reason, retry_at=retry_at,  # type: ignore[arg-type]
        )  # fmt: skip

    async def _publish_if_mine(self, job: dict[str, Any], event: IntegrationEvent) -> bool:
        async with self._uow() as uow:
            if not await self._jobs(uow.conn).still_mine(job["id"], self.owner):
                return False
            await self._publish(uow.conn, job, [event])
        return True

    async def _publish(
        self, conn: psycopg.AsyncConnection, job: dict[str, Any], events: Sequence[IntegrationEvent]
    ) -> None:
        await add_to_outbox(
            conn,
            [
                (
                    e.TOPIC,
                    Envelope.wrap(e, correlation_id=job["correlation_id"], causation_id=job["causation_id"]),
                )
                for e in events
            ],
        )

    def _breaker(self, scope: str, provider: str) -> CircuitBreaker:
        key = (scope, provider)
        if key not in self._breakers:
            self._breakers[key] = CircuitBreaker(
                failure_threshold=self._settings.circuit_failure_threshold,
                cooldown=timedelta(seconds=self._settings.circuit_cooldown_seconds),
            )
        return self._breakers[key]
