"""Distributed tracing: one W3C trace context from the first request to the last event, OpenTelemetry spans.

A trace follows a piece of work across the platform: an HTTP request's `traceparent` header is continued
by the service that receives it (`tracing_http.tracing_middleware`, a SERVER span) and passed on by its
own HTTP calls (`tracing_http.tracing_client_middleware`, a CLIENT span); an event written to the outbox
inside a span carries its `traceparent` as a Kafka header, and the consumer continues it (a CONSUMER span
around the handler).
Work that waits in a table between two events (a provider step job) keeps the traceparent in its row.

Spans are exported by OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the
standard `OTEL_*` variables: headers, timeout, batch delay). Unset, the API's no-op tracer is used: no
span is recorded or exported and nothing is added to requests or events, but an incoming traceparent is
still passed on, so a service without an exporter does not break the trace of one that has one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACEPARENT",
    "configure_tracing",
    "context_from_carrier",
    "context_from_headers",
    "context_from_traceparent",
    "current_traceparent",
    "inject_traceparent",
    "is_recording",
    "span",
]

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
_PROPAGATOR = TraceContextTextMapPropagator()
# Set by `configure_tracing` once spans are exported.
_recording = False


def configure_tracing(service: str) -> Callable[[], None] | None:
    """Install the SDK's tracer provider exporting by OTLP, when an endpoint is configured; returns the
    function that flushes and stops it at shutdown (None when tracing is off)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return None
    # Imported only here: a service without an exporter does not pay for loading the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    global _recording
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _recording = True
    log.info("tracing: spans exported by OTLP", extra={"service": service})
    return provider.shutdown


def is_recording() -> bool:
    """Whether spans are recorded and exported (`configure_tracing` found an endpoint)."""
    return _recording


def _tracer() -> trace.Tracer:
    return trace.get_tracer("funmagic")


def current_traceparent() -> str | None:
    """The `traceparent` of the current span, to store or send with work that continues elsewhere."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT)


def context_from_traceparent(traceparent: str | None) -> Context | None:
    """The context a stored or received traceparent continues (None: a new trace starts)."""
    if not traceparent:
        return None
    return _PROPAGATOR.extract({TRACEPARENT: traceparent})


def context_from_carrier(carrier: Mapping[str, str]) -> Context:
    """The context an HTTP request's headers continue (a new trace when they carry none)."""
    return _PROPAGATOR.extract(carrier)


def inject_traceparent(carrier: dict[str, str] | Any) -> None:
    """Add the current span's `traceparent` to outgoing headers (nothing when no span records)."""
    _PROPAGATOR.inject(carrier)


def context_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> Context | None:
    """The context of a Kafka message's `traceparent` header, if it has one."""
    for name, value in headers or ():
        if name == TRACEPARENT:
            return context_from_traceparent(value.decode(errors="replace"))
    return None


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    links: Iterable[Context | None] = (),
) -> Iterator[trace.Span]:
    """A span around a piece of work, current while it runs (so what it calls or writes continues it).
    `parent`: continue that context instead of the current one. `links`: the contexts of other traces this
    work belongs to (a batch of messages), read only while recording — a generator costs nothing otherwise."""
    token = otel_context.attach(parent) if parent is not None else None
    try:
        if not _recording:
            # The API's no-op tracer would only make the parent's span current again, as `attach` just did;
            # skipping it saves a consumer a few microseconds per event.
            yield trace.get_current_span()
            return
        others = (trace.get_current_span(ctx).get_span_context() for ctx in links if ctx is not None)
        linked = [trace.Link(other) for other in others if other.is_valid]
        with _tracer().start_as_current_span(name, kind=kind, attributes=attributes, links=linked) as current:
            yield current
    finally:
        if token is not None:
            otel_context.detach(token)
