"""The OTLP receiver takes what the OpenTelemetry SDK's exporter sends, as a collector would."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from .otlp_receiver import RunningReceiver, start_in_thread


@pytest.fixture
def receiver() -> Iterator[RunningReceiver]:
    running = start_in_thread()
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_spans_the_sdk_exports_arrive_with_their_service_ids_and_parents(
    receiver: RunningReceiver, compression: Compression
) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    exporter = OTLPSpanExporter(endpoint=f"{receiver.url}/v1/traces", compression=compression)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    with (
        tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER) as outer,
        tracer.start_as_current_span("charge card", attributes={"amount": 5}) as inner,
    ):
        pass
    provider.shutdown()

    spans = {s.name: s for s in receiver.spans()}
    assert set(spans) == {"POST /pay", "charge card"}
    outer_id = format(outer.get_span_context().span_id, "016x")
    assert spans["POST /pay"].span_id == outer_id
    assert spans["POST /pay"].parent_span_id is None
    assert spans["POST /pay"].kind == "server"
    assert spans["charge card"].parent_span_id == outer_id
    assert spans["charge card"].trace_id == format(inner.get_span_context().trace_id, "032x")
    assert spans["charge card"].attributes == {"amount": 5}
    assert {s.service for s in spans.values()} == {"checkout"}


async def test_what_is_not_an_otlp_protobuf_export_is_refused(receiver: RunningReceiver) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{receiver.url}/v1/traces", json={"resourceSpans": []}) as response:
            assert response.status == 415
        async with http.post(
            f"{receiver.url}/v1/traces",
            data=b"\xff\xff\xff",
            headers={"Content-Type": "application/x-protobuf"},
        ) as response:
            assert response.status == 400
    assert receiver.spans() == []
