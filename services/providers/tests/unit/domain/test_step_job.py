"""The step job aggregate, given/when/then: given a job in some state, when a runner (or a cancel) asks
for a transition, then this job and these events — or nothing at all, when the ask is stale."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.providers.events import (
    StepCompleted,
    StepDelayed,
    StepFailed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import StepInput, StepRequested
from funmagic_providers.domain import step_job
from funmagic_providers.domain.errors import InvalidStepInput, ProviderRateLimited, ProviderUnavailable
from funmagic_providers.domain.rate_limit import RateLimitConfig
from funmagic_providers.domain.step_job import (
    InvariantViolated,
    StepError,
    StepJob,
    StepJobChange,
    check_invariants,
)
from funmagic_providers.domain.step_policy import FailStep, RetryStep

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
LEASE = 30.0
RUNNER, OTHER = "runner-a", "runner-b"
OUTPUT = StepOutput(assets=(OutputAsset(asset_id="asset-9", role="image"),), provider_request_id="req-1")


def requested(attempt: int = 1, deadline_in: timedelta = timedelta(minutes=10)) -> StepRequested:
    return StepRequested(
        task_id="task-1",
        user_id="user-1",
        step_id="step-1",
        step_type="image-gen",
        provider="openai",
        model="gpt-image-1",
        scope="web",
        input=StepInput(asset_ids=("asset-1",), prompt="a cat", options={"size": "512x512"}),
        attempt=attempt,
        deadline_at=NOW + deadline_in,
    )


def accepted(event: StepRequested | None = None, job_id: str = "job-1") -> StepJob:
    change = step_job.accept(
        event or requested(), job_id=job_id, correlation_id="corr-1", causation_id="cause-1", now=NOW
    )
    assert change.events == ()
    return then(change)[1]


def queued(**changes: object) -> StepJob:
    job = replace(accepted(), **changes)  # type: ignore[arg-type]
    check_invariants(job)
    return job


def running(owner: str = RUNNER, **changes: object) -> StepJob:
    """A job `owner` claimed at NOW (its lease runs LEASE seconds)."""
    return then(step_job.claim(queued(**changes), owner=owner, now=NOW, lease_seconds=LEASE))[1]


def then(change: StepJobChange | None) -> tuple[tuple[object, ...], StepJob]:
    """The events and the job of a decided change, which must hold together."""
    assert change is not None, "the transition changed nothing"
    check_invariants(change.job)
    return change.events, change.job


def finished(status: str) -> StepJob:
    job = running()
    if status == "completed":
        return then(step_job.complete(job, owner=RUNNER, output=OUTPUT))[1]
    if status == "failed":
        return then(step_job.fail(job, owner=RUNNER, failure=FailStep("boom", "it broke", False)))[1]
    return then(step_job.cancel(job))[1]


# --- accepting a StepRequested ------------------------------------------------------------------------


def test_a_requested_step_becomes_a_queued_job_due_at_once_and_says_nothing() -> None:
    job = accepted()

    assert (job.status, job.run_at, job.retries, job.delays, job.claims) == ("queued", NOW, 0, 0, 0)
    assert (job.task_id, job.step_id, job.attempt, job.provider, job.scope) == (
        "task-1",
        "step-1",
        1,
        "openai",
        "web",
    )
    assert job.input.asset_ids == ("asset-1",)
    assert (job.input.prompt, dict(job.input.options)) == ("a cat", {"size": "512x512"})
    assert (job.correlation_id, job.causation_id) == ("corr-1", "cause-1")
    assert job.lease_owner is None
    assert step_job.is_due(job, NOW)


def test_a_redelivered_step_requested_is_the_same_request_and_a_new_attempt_is_not() -> None:
    first = accepted(job_id="job-1")
    again = accepted(job_id="job-2")
    next_attempt = accepted(requested(attempt=2), job_id="job-3")

    assert step_job.same_request(first, again)
    assert not step_job.same_request(first, next_attempt)


# --- claiming --------------------------------------------------------------------------------------------


def test_a_due_job_is_claimed_with_a_lease() -> None:
    events, job = then(step_job.claim(queued(), owner=RUNNER, now=NOW, lease_seconds=LEASE))

    assert events == ()
    assert (job.status, job.lease_owner, job.claims) == ("running", RUNNER, 1)
    assert job.lease_until == NOW + timedelta(seconds=LEASE)


def test_a_job_waiting_for_its_time_is_not_claimed() -> None:
    later = queued(run_at=NOW + timedelta(seconds=5))

    assert step_job.claim(later, owner=RUNNER, now=NOW, lease_seconds=LEASE) is None
    assert step_job.claim(later, owner=RUNNER, now=NOW + timedelta(seconds=5), lease_seconds=LEASE)


def test_a_running_job_under_a_live_lease_cannot_be_claimed_by_another_runner() -> None:
    job = running(RUNNER)

    assert step_job.claim(job, owner=OTHER, now=NOW + timedelta(seconds=LEASE), lease_seconds=LEASE) is None


def test_a_running_job_whose_lease_ran_out_is_claimed_again_by_another_runner() -> None:
    later = NOW + timedelta(seconds=LEASE + 1)

    events, job = then(step_job.claim(running(RUNNER), owner=OTHER, now=later, lease_seconds=LEASE))

    assert events == ()
    assert (job.lease_owner, job.claims, job.lease_until) == (OTHER, 2, later + timedelta(seconds=LEASE))


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_job_is_never_claimed(status: str) -> None:
    job = finished(status)

    assert step_job.claim(job, owner=OTHER, now=NOW + timedelta(days=1), lease_seconds=LEASE) is None


# --- the lease ---------------------------------------------------------------------------------------------


def test_the_owner_renews_its_lease() -> None:
    later = NOW + timedelta(seconds=10)

    events, job = then(step_job.renew_lease(running(), owner=RUNNER, now=later, lease_seconds=LEASE))

    assert events == ()
    assert job.lease_until == later + timedelta(seconds=LEASE)


def test_a_runner_that_lost_its_job_cannot_renew_it_and_learns_to_stop() -> None:
    taken_over = step_job.claim(
        running(RUNNER), owner=OTHER, now=NOW + timedelta(seconds=LEASE + 1), lease_seconds=LEASE
    )
    assert taken_over is not None

    assert step_job.renew_lease(taken_over.job, owner=RUNNER, now=NOW, lease_seconds=LEASE) is None
    assert step_job.renew_lease(finished("cancelled"), owner=RUNNER, now=NOW, lease_seconds=LEASE) is None


# --- starting and progress ---------------------------------------------------------------------------------


def test_starting_the_call_says_step_started_and_ends_the_wait() -> None:
    events, job = then(step_job.start(running(delays=2), owner=RUNNER))

    assert events == (
        StepStarted(task_id="task-1", user_id="user-1", step_id="step-1", provider="openai", attempt=1),
    )
    assert (job.status, job.delays) == ("running", 0)


def test_only_the_lease_owner_starts_the_call() -> None:
    assert step_job.start(running(OTHER), owner=RUNNER) is None
    assert step_job.start(queued(), owner=RUNNER) is None


def test_progress_is_said_while_it_moves_forward() -> None:
    job = running()

    events, job = then(step_job.report_progress(job, owner=RUNNER, percent=10, message="Working"))
    assert events == (
        StepProgressed(
            task_id="task-1", user_id="user-1", step_id="step-1", attempt=1, progress=10, message="Working"
        ),
    )
    assert job.progress == 10

    assert step_job.report_progress(job, owner=RUNNER, percent=10, message="again") is None
    assert step_job.report_progress(job, owner=RUNNER, percent=5, message="back") is None
    events, job = then(step_job.report_progress(job, owner=RUNNER, percent=60, message="More"))
    assert [e.progress for e in events] == [60]  # type: ignore[attr-defined]


def test_progress_is_clamped_to_a_percent_and_its_message_to_200_characters() -> None:
    events, job = then(step_job.report_progress(running(), owner=RUNNER, percent=250, message="x" * 500))

    (progressed,) = events
    assert isinstance(progressed, StepProgressed)
    assert (progressed.progress, len(progressed.message), job.progress) == (100, 200, 100)
    events, _ = then(step_job.report_progress(running(), owner=RUNNER, percent=-5, message="starting"))
    assert [e.progress for e in events] == [0]  # type: ignore[attr-defined]


def test_progress_from_a_runner_that_lost_the_job_is_not_said() -> None:
    assert step_job.report_progress(running(OTHER), owner=RUNNER, percent=50, message="late") is None
    assert step_job.report_progress(finished("completed"), owner=RUNNER, percent=99, message="") is None


# --- completing and failing ----------------------------------------------------------------------------


def test_completing_says_step_completed_with_the_output_and_ends_the_lease() -> None:
    events, job = then(step_job.complete(running(), owner=RUNNER, output=OUTPUT))

    assert events == (
        StepCompleted(task_id="task-1", user_id="user-1", step_id="step-1", attempt=1, output=OUTPUT),
    )
    assert (job.status, job.lease_owner, job.lease_until) == ("completed", None, None)
    assert job.provider_request_id == "req-1"


def test_a_job_completes_once() -> None:
    completed = finished("completed")

    assert step_job.complete(completed, owner=RUNNER, output=OUTPUT) is None


def test_the_old_owner_cannot_complete_a_job_whose_lease_was_taken_over() -> None:
    taken_over = then(
        step_job.claim(
            running(RUNNER), owner=OTHER, now=NOW + timedelta(seconds=LEASE + 1), lease_seconds=LEASE
        )
    )[1]

    assert step_job.complete(taken_over, owner=RUNNER, output=OUTPUT) is None
    events, _ = then(step_job.complete(taken_over, owner=OTHER, output=OUTPUT))
    assert [type(e) for e in events] == [StepCompleted]


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_a_failed_or_cancelled_job_cannot_be_completed(status: str) -> None:
    assert step_job.complete(finished(status), owner=RUNNER, output=OUTPUT) is None


def test_failing_says_step_failed_and_records_the_error() -> None:
    failure = FailStep("provider_rejected", "no such model", retryable=False)

    events, job = then(step_job.fail(running(), owner=RUNNER, failure=failure))

    assert events == (
        StepFailed(
            task_id="task-1", user_id="user-1", step_id="step-1", attempt=1,
            error_code="provider_rejected", error_message="no such model", retryable=False,
        ),
    )  # fmt: skip
    assert (job.status, job.error, job.lease_owner) == (
        "failed",
        StepError("provider_rejected", "no such model"),
        None,
    )


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_job_cannot_fail(status: str) -> None:
    assert step_job.fail(finished(status), owner=RUNNER, failure=FailStep("x", "y", False)) is None


def test_a_runner_that_is_not_the_owner_cannot_fail_the_job() -> None:
    assert step_job.fail(running(OTHER), owner=RUNNER, failure=FailStep("x", "y", False)) is None


# --- retries after a provider error -------------------------------------------------------------------


def test_a_transient_provider_error_retries_with_backoff_using_one_retry() -> None:
    config = RateLimitConfig(max_retries=3, base_backoff_ms=1000)

    events, job = then(
        step_job.after_provider_error(
            running(), owner=RUNNER, error=ProviderUnavailable("down"), config=config, now=NOW
        )
    )

    retry_at = NOW + timedelta(seconds=1)
    assert events == (
        StepDelayed(
            task_id="task-1", user_id="user-1", step_id="step-1", attempt=1, reason="provider_error",
            retry_at=retry_at,
        ),
    )  # fmt: skip
    assert (job.status, job.retries, job.run_at, job.lease_owner) == ("queued", 1, retry_at, None)


def test_retries_are_numbered_from_what_the_job_used_and_back_off_further() -> None:
    config = RateLimitConfig(max_retries=5, base_backoff_ms=1000)

    events, job = then(
        step_job.after_provider_error(
            running(retries=2), owner=RUNNER, error=ProviderRateLimited("429"), config=config, now=NOW
        )
    )

    (delayed,) = events
    assert isinstance(delayed, StepDelayed)
    assert (delayed.reason, delayed.retry_at, job.retries) == ("provider_429", NOW + timedelta(seconds=4), 3)


def test_a_retry_numbered_out_of_order_is_refused() -> None:
    with pytest.raises(ValueError, match="retry 3"):
        step_job.retry(running(retries=0), owner=RUNNER, decision=RetryStep(NOW, "provider_error", 3))


def test_exhausted_retries_fail_the_step_as_retryable() -> None:
    config = RateLimitConfig(max_retries=2)

    events, job = then(
        step_job.after_provider_error(
            running(retries=2), owner=RUNNER, error=ProviderUnavailable("down"), config=config, now=NOW
        )
    )

    (failed,) = events
    assert isinstance(failed, StepFailed)
    assert (failed.error_code, failed.retryable) == ("provider_unavailable", True)
    assert "gave up after 2 retries" in failed.error_message
    assert (job.status, job.retries) == ("failed", 2)


def test_a_permanent_provider_error_fails_at_once_without_a_retry() -> None:
    events, job = then(
        step_job.after_provider_error(
            running(), owner=RUNNER, error=InvalidStepInput("not an image"), config=RateLimitConfig(), now=NOW
        )
    )

    assert [(type(e), e.retryable) for e in events] == [(StepFailed, False)]  # type: ignore[attr-defined]
    assert (job.status, job.retries) == ("failed", 0)


def test_no_retry_is_scheduled_past_the_deadline() -> None:
    job = running()
    config = RateLimitConfig(base_backoff_ms=60_000)
    late = job.deadline_at - timedelta(seconds=30)

    events, job = then(
        step_job.after_provider_error(
            job, owner=RUNNER, error=ProviderUnavailable("x"), config=config, now=late
        )
    )

    assert job.status == "failed"
    assert "no time left" in events[0].error_message  # type: ignore[attr-defined]


def test_a_stale_runner_cannot_retry_the_job() -> None:
    decision = RetryStep(NOW + timedelta(seconds=1), "provider_error", 1)

    assert step_job.retry(running(OTHER), owner=RUNNER, decision=decision) is None
    assert step_job.retry(finished("cancelled"), owner=RUNNER, decision=decision) is None


# --- delays (limiter, circuit) and postponing ------------------------------------------------------------


def test_a_delay_puts_the_job_back_without_using_a_retry_and_says_so_once_per_wait() -> None:
    until = NOW + timedelta(seconds=3)

    events, job = then(step_job.delay(running(), owner=RUNNER, until=until, reason="rate_limited"))
    assert events == (
        StepDelayed(
            task_id="task-1", user_id="user-1", step_id="step-1", attempt=1, reason="rate_limited",
            retry_at=until,
        ),
    )  # fmt: skip
    assert (job.status, job.run_at, job.retries, job.delays, job.lease_owner) == ("queued", until, 0, 1, None)

    # Claimed again and still denied: the same wait, nothing more is said.
    again = then(step_job.claim(job, owner=RUNNER, now=until, lease_seconds=LEASE))[1]
    events, job = then(
        step_job.delay(again, owner=RUNNER, until=until + timedelta(seconds=3), reason="rate_limited")
    )
    assert events == ()
    assert (job.delays, job.retries) == (2, 0)


def test_a_new_wait_after_a_started_call_is_said_again() -> None:
    job = running(delays=3)
    started = then(step_job.start(job, owner=RUNNER))[1]
    retried = then(step_job.retry(started, owner=RUNNER, decision=RetryStep(NOW, "provider_429", 1)))[1]
    reclaimed = then(step_job.claim(retried, owner=RUNNER, now=NOW, lease_seconds=LEASE))[1]

    events, _ = then(step_job.delay(reclaimed, owner=RUNNER, until=NOW, reason="circuit_open"))

    assert [e.reason for e in events] == ["circuit_open"]  # type: ignore[attr-defined]


def test_a_stale_runner_cannot_delay_the_job() -> None:
    assert step_job.delay(running(OTHER), owner=RUNNER, until=NOW, reason="rate_limited") is None


def test_postponing_puts_the_job_back_using_nothing_and_saying_nothing() -> None:
    until = NOW + timedelta(seconds=1)

    events, job = then(step_job.postpone(running(retries=1, delays=1), owner=RUNNER, until=until))

    assert events == ()
    assert (job.status, job.run_at, job.retries, job.delays, job.lease_owner) == ("queued", until, 1, 1, None)


def test_a_stale_runner_cannot_postpone_the_job() -> None:
    assert step_job.postpone(running(OTHER), owner=RUNNER, until=NOW) is None
    assert step_job.postpone(finished("completed"), owner=RUNNER, until=NOW) is None


# --- cancelling ------------------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_without_an_event() -> None:
    events, job = then(step_job.cancel(queued()))

    assert events == ()
    assert job.status == "cancelled"
    assert step_job.claim(job, owner=RUNNER, now=NOW + timedelta(days=1), lease_seconds=LEASE) is None


def test_a_running_job_is_cancelled_and_its_runner_can_change_it_no_more() -> None:
    events, job = then(step_job.cancel(running(RUNNER)))

    assert events == ()
    assert (job.status, job.lease_owner, job.lease_until) == ("cancelled", None, None)
    assert step_job.renew_lease(job, owner=RUNNER, now=NOW, lease_seconds=LEASE) is None
    assert step_job.complete(job, owner=RUNNER, output=OUTPUT) is None
    assert step_job.report_progress(job, owner=RUNNER, percent=50, message="") is None


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_a_finished_job_is_not_cancelled(status: str) -> None:
    assert step_job.cancel(finished(status)) is None


# --- the deadline --------------------------------------------------------------------------------------


def test_a_job_claimed_past_its_deadline_fails_as_deadline_exceeded() -> None:
    job = running()

    events, job = then(step_job.expire(job, owner=RUNNER, now=job.deadline_at))

    assert events == (
        StepFailed(
            task_id="task-1", user_id="user-1", step_id="step-1", attempt=1, error_code="deadline_exceeded",
            error_message="the step ran past its deadline", retryable=False,
        ),
    )  # fmt: skip
    assert job.status == "failed"


def test_a_job_before_its_deadline_does_not_expire() -> None:
    job = running()

    assert step_job.expire(job, owner=RUNNER, now=job.deadline_at - timedelta(microseconds=1)) is None


def test_only_the_owner_expires_a_job() -> None:
    job = running(OTHER)

    assert step_job.expire(job, owner=RUNNER, now=job.deadline_at + timedelta(hours=1)) is None


# --- invariants ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "broken"),
    [
        ({"status": "paused"}, "unknown status"),
        ({"attempt": 0}, "attempt"),
        ({"retries": -1}, "negative"),
        ({"status": "running"}, "without a lease"),
        ({"lease_owner": RUNNER, "lease_until": NOW}, "not running"),
        ({"status": "running", "lease_owner": RUNNER, "lease_until": NOW}, "nobody claimed"),
        ({"status": "failed"}, "did not fail"),
        ({"error": StepError("x", "y")}, "did not fail"),
        ({"progress": 101}, "progress"),
    ],
)
def test_a_broken_job_is_named(changes: dict[str, object], broken: str) -> None:
    with pytest.raises(InvariantViolated, match=broken):
        check_invariants(replace(accepted(), **changes))  # type: ignore[arg-type]


def test_every_state_a_job_goes_through_holds_together() -> None:
    config = RateLimitConfig(max_retries=1)
    job = accepted()
    for transition in (
        lambda j: step_job.claim(j, owner=RUNNER, now=NOW, lease_seconds=LEASE),
        lambda j: step_job.delay(j, owner=RUNNER, until=NOW, reason="rate_limited"),
        lambda j: step_job.claim(j, owner=RUNNER, now=NOW, lease_seconds=LEASE),
        lambda j: step_job.start(j, owner=RUNNER),
        lambda j: step_job.report_progress(j, owner=RUNNER, percent=40, message="half"),
        lambda j: step_job.after_provider_error(
            j, owner=RUNNER, error=ProviderUnavailable("x"), config=config, now=NOW
        ),
        lambda j: step_job.claim(j, owner=OTHER, now=NOW + timedelta(seconds=2), lease_seconds=LEASE),
        lambda j: step_job.start(j, owner=OTHER),
        lambda j: step_job.complete(j, owner=OTHER, output=OUTPUT),
    ):
        job = then(transition(job))[1]
    assert (job.status, job.retries, job.claims, job.progress) == ("completed", 1, 3, 40)
