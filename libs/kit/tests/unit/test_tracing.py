"""Trace context without an exporter: nothing is recorded, but a trace that came in goes on out."""

from __future__ import annotations

import pytest

from funmagic_kit.tracing import (
    configure_tracing,
    context_from_headers,
    context_from_traceparent,
    current_traceparent,
    span,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_without_an_endpoint_tracing_stays_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)

    assert configure_tracing("tests") is None


def test_outside_any_trace_there_is_no_traceparent_to_pass_on() -> None:
    with span("work"):
        assert current_traceparent() is None


def test_a_received_traceparent_is_passed_on_by_a_service_that_records_nothing() -> None:
    with span("handle the request", parent=context_from_traceparent(TRACEPARENT)):
        assert current_traceparent() == TRACEPARENT

    assert current_traceparent() is None  # the trace ends with the span


def test_a_kafka_messages_traceparent_header_is_the_context_its_consumer_continues() -> None:
    headers = [("type", b"TaskRequested"), ("traceparent", TRACEPARENT.encode())]

    with span("consume TaskRequested", parent=context_from_headers(headers)):
        assert current_traceparent() == TRACEPARENT

    assert context_from_headers([("type", b"TaskRequested")]) is None


def test_a_malformed_traceparent_starts_no_trace() -> None:
    with span("work", parent=context_from_traceparent("00-not-a-trace-01")):
        assert current_traceparent() is None


def test_a_span_over_a_batch_links_the_trace_of_each_message_it_handles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from funmagic_kit import tracing

    exported = InMemorySpanExporter()
    provider = TracerProvider()  # this test's own, not the process's global one
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(tracing, "_recording", True)
    monkeypatch.setattr(tracing, "_tracer", lambda: provider.get_tracer("tests"))
    other = "00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-01"
    messages = [
        [("traceparent", TRACEPARENT.encode())],
        [("type", b"Untraced")],
        [("traceparent", other.encode())],
    ]

    with span("consume Numbered x3", links=(context_from_headers(headers) for headers in messages)):
        pass

    (batch,) = exported.get_finished_spans()
    assert [format(link.context.trace_id, "032x") for link in batch.links] == [
        TRACEPARENT.split("-")[1],
        other.split("-")[1],
    ]
