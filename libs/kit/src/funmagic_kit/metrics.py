"""Prometheus metrics of the shared runtime, kept in a registry per process (not the global one) so
several runtimes can live in one test process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "HTTP_BUCKETS", "Metrics"]

# From 5 ms to 10 s: the HTTP latency alert's threshold (1 s) falls on a bucket edge.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_REQUEST_CHILDREN_MEMO_SIZE = 1024


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self.outbox_published = Counter(
            "funmagic_outbox_published", "Outbox rows published to Kafka.", registry=self.registry
        )
        self.events_consumed = Counter(
            "funmagic_events_consumed",
            "Events handled by a consumer, by outcome (handled, duplicate, skipped, retried, dead_lettered).",
            ["consumer", "outcome"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "funmagic_event_handler_seconds",
            "Time to handle one event, including its transaction.",
            ["consumer"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.http_requests = Counter(
            "funmagic_http_requests",
            "HTTP requests served.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        # Until the handler has its answer: a streamed body (SSE, a file) is written after, and not counted.
        self.http_request_seconds = Histogram(
            "funmagic_http_request_seconds",
            "Time to answer one HTTP request, by route (the latency alerts read it).",
            ["method", "route"],
            registry=self.registry,
            buckets=HTTP_BUCKETS,
        )
        self.service = labels["service"]
        # prometheus' labels() takes a lock and checks its arguments on every call: the children of the
        # per-request metrics are looked up once per method, route and status. Methods come from clients,
        # so a full memo starts over instead of growing.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def count_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered: `http_requests` and `http_request_seconds`."""
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            if len(self._request_children) >= _REQUEST_CHILDREN_MEMO_SIZE:
                self._request_children.clear()
            children = self._request_children[key] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_request_seconds.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
