"""The providers service's Prometheus metrics, in the process's registry (the kit's `Metrics.registry`,
served at /metrics): provider calls, circuit breakers, consumer lag and dead letters.

Consumer lag and dead letters are measured by the queue monitor's background round (`sample_lag`, every
QUEUE_LAG_SAMPLE_SECONDS) from Kafka's admin API, so Prometheus needs no Kafka exporter. Circuit states
are read from the step runner when Prometheus scrapes, so they are never stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from funmagic_providers.application.ports import CallOutcome
from funmagic_providers.domain.circuit import CircuitBreaker

__all__ = ["CIRCUIT_OPEN", "PROVIDER_CALL_BUCKETS", "CircuitCollector", "ProvidersMetrics"]

# From 100 ms (the local provider) to 10 min (a 3D model): the latency alert's threshold (120 s) is an edge.
PROVIDER_CALL_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
CIRCUIT_OPEN = "funmagic_provider_circuit_open"


class ProvidersMetrics:
    """`StepMetrics` and `QueueMetrics` for Prometheus."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._call_seconds = Histogram(
            "funmagic_provider_call_seconds",
            "Time of one provider call, by how it ended (succeeded, failed, unavailable, cancelled, error).",
            ["provider", "step_type", "outcome"],
            registry=registry,
            buckets=PROVIDER_CALL_BUCKETS,
        )
        self._lag = Gauge(
            "funmagic_consumer_lag",
            "Messages of a topic a consumer group has not committed yet (all partitions), as last measured.",
            ["group", "topic"],
            registry=registry,
        )
        self._dead_letters = Gauge(
            "funmagic_dead_letters",
            "Messages a dead-letter topic has received (its partitions' end offsets); growth is a new one.",
            ["topic"],
            registry=registry,
        )

    def provider_call(self, provider: str, step_type: str, outcome: CallOutcome, seconds: float) -> None:
        self._call_seconds.labels(provider, step_type, outcome).observe(seconds)

    def queue_sampled(self, lags: Mapping[tuple[str, str], int], dead_letters: Mapping[str, int]) -> None:
        for (group, topic), lag in lags.items():
            self._lag.labels(group, topic).set(lag)
        for topic, count in dead_letters.items():
            self._dead_letters.labels(topic).set(count)

    def watch_circuits(self, circuits: Callable[[], Mapping[tuple[str, str], CircuitBreaker]]) -> None:
        """Export the step runner's circuit breakers (`runner.circuits`) at every scrape."""
        self._registry.register(CircuitCollector(circuits))


class CircuitCollector(Collector):
    """`funmagic_provider_circuit_open{scope,provider}`: 1 while a provider's circuit is not closed (open:
    calls are refused; half-open: one probe goes through), 0 when closed. One series per provider this
    replica has called; each replica has its own breakers."""

    def __init__(self, circuits: Callable[[], Mapping[tuple[str, str], CircuitBreaker]]) -> None:
        self._circuits = circuits

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for (scope, provider), breaker in self._circuits().items():
            family.add_metric([scope, provider], 0.0 if breaker.state == "closed" else 1.0)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            CIRCUIT_OPEN,
            "1 while calls to a provider are refused or probed by its circuit breaker (not closed), else 0.",
            labels=["scope", "provider"],
        )
