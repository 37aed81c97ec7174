"""The providers service's Prometheus metrics, read back from the registry /metrics serves."""

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest

from funmagic_providers.adapters.metrics import ProvidersMetrics
from funmagic_providers.domain.circuit import CircuitBreaker

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_provider_call_is_timed_by_provider_step_type_and_outcome() -> None:
    registry = CollectorRegistry()
    metrics = ProvidersMetrics(registry)

    metrics.provider_call("fal", "image-gen", "succeeded", 4.2)
    metrics.provider_call("fal", "image-gen", "succeeded", 150.0)
    metrics.provider_call("fal", "image-gen", "unavailable", 0.3)

    def sample(suffix: str, outcome: str, **extra: str) -> float | None:
        labels = {"provider": "fal", "step_type": "image-gen", "outcome": outcome, **extra}
        return registry.get_sample_value(f"funmagic_provider_call_seconds_{suffix}", labels)

    assert sample("count", "succeeded") == 2
    assert sample("bucket", "succeeded", le="120.0") == 1  # the latency alert's edge
    assert sample("sum", "succeeded") == 154.2
    assert sample("count", "unavailable") == 1
    assert sample("count", "failed") is None


def test_lag_and_dead_letters_are_gauges_set_to_what_the_monitor_measured_last() -> None:
    registry = CollectorRegistry()
    metrics = ProvidersMetrics(registry)

    metrics.queue_sampled({("credits", "tasks.events"): 1500}, {"tasks.events.dlq": 3})
    metrics.queue_sampled({("credits", "tasks.events"): 0}, {"tasks.events.dlq": 4})

    lag = {"group": "credits", "topic": "tasks.events"}
    assert registry.get_sample_value("funmagic_consumer_lag", lag) == 0
    assert registry.get_sample_value("funmagic_dead_letters", {"topic": "tasks.events.dlq"}) == 4


def test_a_circuit_is_exported_as_open_until_it_closes_again() -> None:
    registry = CollectorRegistry()
    metrics = ProvidersMetrics(registry)
    breaker = CircuitBreaker(failure_threshold=1)
    breakers = {("web", "fal"): breaker, ("admin", "local"): CircuitBreaker()}
    metrics.watch_circuits(lambda: breakers)

    def circuit_open(scope: str, provider: str) -> float | None:
        labels = {"scope": scope, "provider": provider}
        return registry.get_sample_value("funmagic_provider_circuit_open", labels)

    assert circuit_open("web", "fal") == 0
    breaker.record_failure(T0)  # read at every scrape: no call needs to tell the metrics
    assert circuit_open("web", "fal") == 1
    assert circuit_open("admin", "local") == 0
    breaker.record_success()
    assert circuit_open("web", "fal") == 0
    assert b"# TYPE funmagic_provider_circuit_open gauge" in generate_latest(registry)
