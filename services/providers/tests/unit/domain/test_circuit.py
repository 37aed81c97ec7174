"""The circuit breaker stops calls to a failing provider and lets one probe through after a pause."""

from datetime import UTC, datetime, timedelta

from funmagic_providers.domain.circuit import CircuitBreaker

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def failing(threshold: int = 3) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=threshold, cooldown=timedelta(seconds=30))
    for _ in range(threshold):
        assert breaker.allows(T0)
        breaker.record_failure(T0)
    return breaker


def test_closed_circuit_lets_calls_through() -> None:
    breaker = CircuitBreaker()
    assert all(breaker.allows(T0) for _ in range(10))


def test_it_opens_after_consecutive_failures_and_says_when_to_retry() -> None:
    breaker = failing()
    assert breaker.state == "open"
    assert not breaker.allows(T0 + timedelta(seconds=29))
    assert breaker.retry_at(T0 + timedelta(seconds=10)) == T0 + timedelta(seconds=30)


def test_a_success_in_between_resets_the_count() -> None:
    breaker = CircuitBreaker(failure_threshold=3)
    breaker.record_failure(T0)
    breaker.record_failure(T0)
    breaker.record_success()
    breaker.record_failure(T0)
    assert breaker.state == "closed"


def test_after_the_cooldown_exactly_one_probe_goes_through() -> None:
    breaker = failing()
    later = T0 + timedelta(seconds=30)
    assert breaker.allows(later)
    assert breaker.state == "half_open"
    assert not breaker.allows(later)


def test_a_successful_probe_closes_the_circuit() -> None:
    breaker = failing()
    assert breaker.allows(T0 + timedelta(seconds=31))
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allows(T0 + timedelta(seconds=31))


def test_a_failed_probe_opens_it_again_for_another_cooldown() -> None:
    breaker = failing()
    probe_time = T0 + timedelta(seconds=31)
    assert breaker.allows(probe_time)
    breaker.record_failure(probe_time)
    assert breaker.state == "open"
    assert not breaker.allows(probe_time + timedelta(seconds=29))
    assert breaker.allows(probe_time + timedelta(seconds=30))


def test_a_refused_request_is_not_a_provider_failure() -> None:
    breaker = failing()
    assert breaker.allows(T0 + timedelta(seconds=31))
    breaker.record_neutral()
    assert breaker.state == "closed"
