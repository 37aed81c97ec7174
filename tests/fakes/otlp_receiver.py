"""An OTLP/HTTP trace receiver, as a collector answers it: `POST /v1/traces` with a protobuf
`ExportTraceServiceRequest` (optionally gzip-compressed), answered by an `ExportTraceServiceResponse`.
Anything else is refused the way a collector refuses it (415 for another content type, 400 for a body that
does not decode). It keeps every span it receives, flattened, for tests to look at.

    receiver = start_in_thread()
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    ...
    receiver.spans()   # [ReceivedSpan(service=..., trace_id=..., span_id=..., parent_span_id=..., ...)]
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiohttp import web
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["ReceivedSpan", "RunningReceiver", "start_in_thread"]

PROTOBUF = "application/x-protobuf"
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    attributes: dict[str, object]


def _value(any_value) -> object:  # an OTLP AnyValue: only the scalar kinds our spans use
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def spans_of(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    found = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    ReceivedSpan(
                        service=str(resource.get("service.name", "")),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=_KINDS.get(span.kind, str(span.kind)),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                )
    return found


class OtlpReceiver:
    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.url = ""
        self._runner: web.AppRunner | None = None

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _traces(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"unsupported content type {request.content_type}")
        body = await request.read()  # aiohttp has already undone a `Content-Encoding: gzip`
        export = ExportTraceServiceRequest()
        try:
            export.ParseFromString(body)
        except DecodeError as error:
            return web.Response(status=400, text=f"not an ExportTraceServiceRequest: {error}")
        received = spans_of(export)
        with self._lock:
            self._spans.extend(received)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)


class RunningReceiver:
    def __init__(self, receiver: OtlpReceiver, loop: asyncio.AbstractEventLoop, thread: threading.Thread):
        self.receiver = receiver
        self.url = receiver.url
        self._loop = loop
        self._thread = thread

    def spans(self) -> list[ReceivedSpan]:
        return self.receiver.spans()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def start_in_thread(host: str = "127.0.0.1", port: int = 0) -> RunningReceiver:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="otlp-receiver", daemon=True)
    thread.start()
    receiver = OtlpReceiver()
    try:
        asyncio.run_coroutine_threadsafe(receiver.start(host, port), loop).result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        raise
    return RunningReceiver(receiver, loop, thread)
