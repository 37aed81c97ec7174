"""After a failed call: retry transient failures with backoff, fail permanent ones at once."""

from datetime import UTC, datetime, timedelta

import pytest

from funmagic_providers.domain.errors import (
    BadProviderResponse,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from funmagic_providers.domain.rate_limit import RateLimitConfig
from funmagic_providers.domain.step_policy import FailStep, RetryStep, decide_after_error

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FAR = NOW + timedelta(hours=1)


DEFAULTS = RateLimitConfig()


def decide(error, retries_used=0, config=DEFAULTS, deadline=FAR):
    return decide_after_error(error, retries_used=retries_used, config=config, now=NOW, deadline_at=deadline)


@pytest.mark.parametrize(("retries_used", "seconds"), [(0, 1), (1, 2), (2, 4)])
def test_a_429_retries_after_1_2_4_seconds(retries_used: int, seconds: int) -> None:
    decision = decide(ProviderRateLimited("busy"), retries_used, RateLimitConfig(max_retries=5))
    assert decision == RetryStep(NOW + timedelta(seconds=seconds), "provider_429", retries_used + 1)


def test_backoff_is_capped_at_60_seconds() -> None:
    decision = decide(ProviderRateLimited("busy"), 9, RateLimitConfig(max_retries=20))
    assert isinstance(decision, RetryStep)
    assert decision.retry_at == NOW + timedelta(seconds=60)


def test_the_providers_retry_after_wins() -> None:
    decision = decide(ProviderRateLimited("busy", retry_after=7.5))
    assert isinstance(decision, RetryStep)
    assert decision.retry_at == NOW + timedelta(seconds=7.5)


def test_base_backoff_comes_from_the_config() -> None:
    decision = decide(ProviderRateLimited("busy"), 1, RateLimitConfig(base_backoff_ms=100))
    assert isinstance(decision, RetryStep)
    assert decision.retry_at == NOW + timedelta(seconds=0.2)


def test_max_retries_exhausted_fails_with_a_readable_error() -> None:
    decision = decide(ProviderRateLimited("OpenAI is rate limiting us"), 3, RateLimitConfig(max_retries=3))
    assert isinstance(decision, FailStep)
    assert decision.error_code == "provider_rate_limited"
    assert "gave up after 3 retries" in decision.error_message
    assert decision.retryable


def test_429_is_not_retried_when_retry_on_429_is_off() -> None:
    decision = decide(ProviderRateLimited("busy"), 0, RateLimitConfig(retry_on_429=False))
    assert isinstance(decision, FailStep)
    assert "turned off" in decision.error_message


def test_transient_errors_retry_with_the_same_policy() -> None:
    decision = decide(ProviderUnavailable("timeout"), 1)
    assert decision == RetryStep(NOW + timedelta(seconds=2), "provider_error", 2)


def test_transient_errors_retry_even_when_retry_on_429_is_off() -> None:
    assert isinstance(decide(ProviderUnavailable("502"), 0, RateLimitConfig(retry_on_429=False)), RetryStep)


@pytest.mark.parametrize(
    "error",
    [ProviderRejected("bad prompt", code="content_policy"), BadProviderResponse("no image")],
)
def test_permanent_errors_fail_at_once(error) -> None:
    decision = decide(error)
    assert decision == FailStep(error.code, str(error), retryable=False)


def test_no_retry_is_scheduled_past_the_deadline() -> None:
    decision = decide(ProviderUnavailable("timeout"), 2, deadline=NOW + timedelta(seconds=3))
    assert isinstance(decision, FailStep)
    assert "deadline" in decision.error_message
