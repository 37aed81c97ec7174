"""A step job as an aggregate: one `StepRequested` (task, step, attempt) that runners carry out.

Pure: no I/O. Each transition takes the job (and what the caller knows: who asks, the time) and returns a
`StepJobChange` — the job after it and the contract events it implies — or `None` when nothing changes.

    queued ──claim──▶ running ──complete──▶ completed
      ▲                 │ ├────fail / expire──▶ failed
      │                 │ └────cancel─────────▶ cancelled   (a queued job can be cancelled too)
      └─retry / delay / postpone─┘

- `retry`: the provider failed transiently or answered 429 — one retry used, `StepDelayed`
  (provider_429 / provider_error), back in the queue at the step policy's `retry_at`.
- `delay`: the rate limiter denied a slot or the provider's circuit is open — no retry used; the first
  delay of a wait says `StepDelayed` (rate_limited / circuit_open), re-checks within the wait say nothing.
- `postpone`: our own infrastructure was not ready, or the runner is stopping — nothing used, no event.

Fencing (`held_by`): a runner holds a running job through its lease. A transition asked by a runner that
is not the lease owner, or on a job that is no longer running (completed, failed, cancelled, or given
back and claimed by another runner), is stale and changes nothing: only one runner can finish a job, so
`StepCompleted` is said once.

Times are the caller's (`now`, `retry_at`, `until`); the store keeps them on the database's clock (see
`adapters.postgres.StepJobRecords.save`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, get_args

from funmagic_contracts.providers.events import (
    DelayReason,
    StepCompleted,
    StepDelayed,
    StepFailed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import StepRequested
from funmagic_providers.domain.documents import JsonObject
from funmagic_providers.domain.errors import ProviderError
from funmagic_providers.domain.providers import Scope
from funmagic_providers.domain.rate_limit import RateLimitConfig
from funmagic_providers.domain.step_policy import FailStep, RetryStep, decide_after_error

__all__ = [
    "DEADLINE_EXCEEDED",
    "FINISHED",
    "MAX_PROGRESS_MESSAGE",
    "InvariantViolated",
    "StepError",
    "StepEvent",
    "StepJob",
    "StepJobChange",
    "StepJobInput",
    "StepJobStatus",
    "WaitReason",
    "accept",
    "after_provider_error",
    "cancel",
    "check_invariants",
    "claim",
    "complete",
    "delay",
    "expire",
    "fail",
    "held_by",
    "is_due",
    "is_past_deadline",
    "postpone",
    "renew_lease",
    "report_progress",
    "retry",
    "same_request",
    "start",
]

StepJobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
STATUSES: tuple[StepJobStatus, ...] = get_args(StepJobStatus)
FINISHED: frozenset[StepJobStatus] = frozenset({"completed", "failed", "cancelled"})
WaitReason = Literal["rate_limited", "circuit_open"]
"""Why a job waits without using a retry: the limiter denied a slot, or the provider's circuit is open."""
MAX_PROGRESS_MESSAGE = 200
DEADLINE_EXCEEDED = FailStep("deadline_exceeded", "the step ran past its deadline", retryable=False)

StepEvent = StepStarted | StepProgressed | StepDelayed | StepCompleted | StepFailed


# --- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepJobInput:
    """What the step works on: asset ids (read from our own storage), a prompt, provider options."""

    asset_ids: tuple[str, ...] = ()
    # Catalog images (a style reference's), read as published catalog images, not as the user's.
    reference_asset_ids: tuple[str, ...] = ()
    # Images of a conversation's earlier turns, sent back with the `history` option (the user's own).
    history_asset_ids: tuple[str, ...] = ()
    prompt: str | None = None
    options: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class StepError:
    """Why a job failed, as its `StepFailed` said it."""

    code: str
    message: str


@dataclass(frozen=True)
class StepJob:
    """One requested (task, step, attempt) and where it stands; changed only by the transitions below."""

    id: str
    task_id: str
    user_id: str
    step_id: str
    attempt: int
    step_type: str
    provider: str
    model: str
    scope: Scope
    input: StepJobInput
    deadline_at: datetime
    # Of the StepRequested: carried into every event of the job.
    correlation_id: str | None
    causation_id: str | None
    status: StepJobStatus
    run_at: datetime  # a queued job is due from then on
    retries: int = 0  # provider retries used (429 and transient errors)
    delays: int = 0  # limiter and circuit delays of the current wait (a started call ends the wait)
    claims: int = 0  # times a runner took it (more than once after a crash or a wait)
    progress: int | None = None  # the last percent said in StepProgressed (never goes back)
    lease_owner: str | None = None
    lease_until: datetime | None = None
    provider_request_id: str | None = None
    error: StepError | None = None
    traceparent: str | None = None  # of the StepRequested: the runner continues its trace


@dataclass(frozen=True)
class StepJobChange:
    """A decided transition: the job after it and the events to publish with it (maybe none)."""

    job: StepJob
    events: tuple[StepEvent, ...] = ()


# --- rules ---------------------------------------------------------------------------------------------


def held_by(job: StepJob, owner: str) -> bool:
    """Fencing: only the runner holding a running job's lease may change it; anything else is stale."""
    return job.status == "running" and job.lease_owner == owner


def is_due(job: StepJob, now: datetime) -> bool:
    """May a runner claim it now? A queued job once its time has come, and a running job whose runner
    stopped renewing its lease (it crashed or stalled)."""
    if job.status == "queued":
        return job.run_at <= now
    return job.status == "running" and job.lease_until is not None and job.lease_until < now


def is_past_deadline(job: StepJob, now: datetime) -> bool:
    return now >= job.deadline_at


def same_request(job: StepJob, other: StepJob) -> bool:
    """One job per (task, step, attempt): a redelivered or repeated StepRequested is the same request."""
    return (job.task_id, job.step_id, job.attempt) == (other.task_id, other.step_id, other.attempt)


def retries_are_numbered_in_order(job: StepJob, decision: RetryStep) -> None:
    if decision.retry_number != job.retries + 1:
        raise ValueError(f"retry {decision.retry_number} decided for a job that used {job.retries} retries")


# --- transitions ---------------------------------------------------------------------------------------


def accept(
    requested: StepRequested,
    *,
    job_id: str,
    correlation_id: str | None,
    causation_id: str | None,
    now: datetime,
    traceparent: str | None = None,
) -> StepJobChange:
    """A StepRequested becomes a queued job, due at once. (The store keeps one job per `same_request`.)"""
    job = StepJob(
        id=job_id,
        task_id=requested.task_id,
        user_id=requested.user_id,
        step_id=requested.step_id,
        attempt=requested.attempt,
        step_type=requested.step_type,
        provider=requested.provider,
        model=requested.model,
        scope=requested.scope,
        input=StepJobInput(
            asset_ids=tuple(requested.input.asset_ids),
            reference_asset_ids=tuple(requested.input.reference_asset_ids),
            history_asset_ids=tuple(requested.input.history_asset_ids),
            prompt=requested.input.prompt,
            options=dict(requested.input.options),
        ),
        deadline_at=requested.deadline_at,
        correlation_id=correlation_id,
        causation_id=causation_id,
        status="queued",
        run_at=now,
        traceparent=traceparent,
    )
    return StepJobChange(job)


def claim(job: StepJob, *, owner: str, now: datetime, lease_seconds: float) -> StepJobChange | None:
    """`owner` takes a due job with a lease of `lease_seconds` (the store does this for many jobs at
    once, in one statement: `claim_due`)."""
    if not is_due(job, now):
        return None
    return StepJobChange(
        replace(
            job,
            status="running",
            lease_owner=owner,
            lease_until=now + timedelta(seconds=lease_seconds),
            claims=job.claims + 1,
        )
    )


def renew_lease(job: StepJob, *, owner: str, now: datetime, lease_seconds: float) -> StepJobChange | None:
    """Keep the job while its call runs; None: it is no longer ours (cancelled, taken over) — stop."""
    if not held_by(job, owner):
        return None
    return StepJobChange(replace(job, lease_until=now + timedelta(seconds=lease_seconds)))


def start(job: StepJob, *, owner: str) -> StepJobChange | None:
    """The provider call begins: StepStarted, and the wait (if any) is over."""
    if not held_by(job, owner):
        return None
    started = StepStarted(
        task_id=job.task_id,
        user_id=job.user_id,
        scope=job.scope,
        step_id=job.step_id,
        provider=job.provider,
        attempt=job.attempt,
    )
    return StepJobChange(replace(job, delays=0), (started,))


def report_progress(job: StepJob, *, owner: str, percent: int, message: str) -> StepJobChange | None:
    """StepProgressed when the percent (clamped to 0–100) moves forward; a step never goes back."""
    if not held_by(job, owner):
        return None
    percent = max(0, min(int(percent), 100))
    if job.progress is not None and percent <= job.progress:
        return None
    progressed = StepProgressed(
        task_id=job.task_id,
        user_id=job.user_id,
        scope=job.scope,
        step_id=job.step_id,
        attempt=job.attempt,
        progress=percent,
        message=message[:MAX_PROGRESS_MESSAGE],
    )
    return StepJobChange(replace(job, progress=percent), (progressed,))


def complete(job: StepJob, *, owner: str, output: StepOutput) -> StepJobChange | None:
    if not held_by(job, owner):
        return None
    completed = StepCompleted(
        task_id=job.task_id,
        user_id=job.user_id,
        scope=job.scope,
        step_id=job.step_id,
        attempt=job.attempt,
        output=output,
    )
    request_id = output.provider_request_id or job.provider_request_id
    return StepJobChange(replace(_ended(job, "completed"), provider_request_id=request_id), (completed,))


def fail(job: StepJob, *, owner: str, failure: FailStep) -> StepJobChange | None:
    if not held_by(job, owner):
        return None
    failed = StepFailed(
        task_id=job.task_id,
        user_id=job.user_id,
        scope=job.scope,
        step_id=job.step_id,
        attempt=job.attempt,
        error_code=failure.error_code,
        error_message=failure.error_message,
        retryable=failure.retryable,
    )
    error = StepError(failure.error_code, failure.error_message)
    return StepJobChange(replace(_ended(job, "failed"), error=error), (failed,))


def expire(job: StepJob, *, owner: str, now: datetime) -> StepJobChange | None:
    """A job claimed past its step's deadline fails (deadline_exceeded) without calling anyone."""
    if not is_past_deadline(job, now):
        return None
    return fail(job, owner=owner, failure=DEADLINE_EXCEEDED)


def retry(job: StepJob, *, owner: str, decision: RetryStep) -> StepJobChange | None:
    """Back to the queue until `decision.retry_at`, one retry used; the task hears why and when."""
    if not held_by(job, owner):
        return None
    retries_are_numbered_in_order(job, decision)
    delayed = _delayed(job, decision.reason, decision.retry_at)
    return StepJobChange(_queued(job, decision.retry_at, retries=decision.retry_number), (delayed,))


def after_provider_error(
    job: StepJob, *, owner: str, error: ProviderError, config: RateLimitConfig, now: datetime
) -> StepJobChange | None:
    """Retry or fail, as the step policy decides from the error, the retries used and the deadline."""
    decision = decide_after_error(
        error, retries_used=job.retries, config=config, now=now, deadline_at=job.deadline_at
    )
    if isinstance(decision, FailStep):
        return fail(job, owner=owner, failure=decision)
    return retry(job, owner=owner, decision=decision)


def delay(job: StepJob, *, owner: str, until: datetime, reason: WaitReason) -> StepJobChange | None:
    """Back to the queue until `until`, no retry used. Said once per wait, not on every re-check: a busy
    provider would flood the task's stream."""
    if not held_by(job, owner):
        return None
    events: tuple[StepEvent, ...] = (_delayed(job, reason, until),) if job.delays == 0 else ()
    return StepJobChange(_queued(job, until, delays=job.delays + 1), events)


def postpone(job: StepJob, *, owner: str, until: datetime) -> StepJobChange | None:
    """Back to the queue until `until`, using nothing and saying nothing: the job did not get to the
    provider (our own infrastructure was not ready, or the runner is stopping)."""
    if not held_by(job, owner):
        return None
    return StepJobChange(_queued(job, until))


def cancel(job: StepJob) -> StepJobChange | None:
    """TaskCancelRequested: a queued or running job ends as cancelled (tasks says TaskCancelled itself).
    Whoever runs it learns at its next lease renewal; a finished job stays as it is."""
    if job.status in FINISHED:
        return None
    return StepJobChange(_ended(job, "cancelled"))


def _queued(job: StepJob, run_at: datetime, **counters: int) -> StepJob:
    return replace(job, status="queued", run_at=run_at, lease_owner=None, lease_until=None, **counters)


def _ended(job: StepJob, status: StepJobStatus) -> StepJob:
    return replace(job, status=status, lease_owner=None, lease_until=None)


def _delayed(job: StepJob, reason: DelayReason, retry_at: datetime) -> StepDelayed:
    return StepDelayed(
        task_id=job.task_id,
        user_id=job.user_id,
        scope=job.scope,
        step_id=job.step_id,
        attempt=job.attempt,
        reason=reason,
        retry_at=retry_at,
    )


# --- invariants ----------------------------------------------------------------------------------------


class InvariantViolated(AssertionError):
    """A state a step job must never reach; raised even under `python -O` (not an `assert`)."""


def check_invariants(job: StepJob) -> None:
    """Raises InvariantViolated naming the broken invariant."""
    running = job.status == "running"
    broken = [
        (job.status not in STATUSES, f"unknown status {job.status!r}"),
        (job.attempt < 1, f"attempt {job.attempt} < 1"),
        (min(job.retries, job.delays, job.claims) < 0, "a counter is negative"),
        (running and (job.lease_owner is None or job.lease_until is None), "a running job without a lease"),
        (not running and (job.lease_owner, job.lease_until) != (None, None), "a lease on a job not running"),
        (running and job.claims < 1, "a running job nobody claimed"),
        ((job.status == "failed") != (job.error is not None), "an error on a job that did not fail"),
        (job.progress is not None and not 0 <= job.progress <= 100, f"progress {job.progress}%"),
    ]
    for is_broken, message in broken:
        if is_broken:
            raise InvariantViolated(message)
