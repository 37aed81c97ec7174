"""The HTTP side of tracing (see `funmagic_kit.tracing`): a SERVER span per request received, a CLIENT span
per request sent, the W3C `traceparent` header read and written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from funmagic_kit.tracing import TRACEPARENT, context_from_carrier, inject_traceparent, is_recording, span

__all__ = ["external_tracing_client_middleware", "tracing_client_middleware", "tracing_middleware"]

# Probes and scrapes run every few seconds and say nothing about a piece of work.
_UNTRACED_PATHS = ("/health", "/metrics")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A SERVER span per request, continuing the caller's `traceparent` (outermost, so it sees the final
    status whatever inner middleware answered)."""
    if request.path.startswith(_UNTRACED_PATHS):
        return await handler(request)
    if not is_recording() and TRACEPARENT not in request.headers:
        # A span would record nothing and pass nothing on: no trace came in and none is kept here.
        return await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    parent = context_from_carrier(request.headers)
    with span(
        f"{request.method} {route}",
        kind=SpanKind.SERVER,
        parent=parent,
        attributes={"http.request.method": request.method, "http.route": route},
    ) as current:
        response = await handler(request)
        current.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            current.set_status(Status(StatusCode.ERROR))
        return response


async def tracing_client_middleware(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """For sessions calling our own services (`aiohttp.ClientSession(middlewares=…)`): a CLIENT span per
    call, its `traceparent` sent along so the service called continues the trace."""
    return await _client_span(request, handler, propagate=True)


async def external_tracing_client_middleware(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """For sessions calling third parties (AI providers, Stripe): a CLIENT span per call, and no
    `traceparent` sent — our trace ids are none of their business."""
    return await _client_span(request, handler, propagate=False)


async def _client_span(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType, *, propagate: bool
) -> aiohttp.ClientResponse:
    # Only the host and path are recorded: query strings may carry signatures and keys.
    url = request.url
    with span(
        f"{request.method} {url.host}",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": request.method,
            "server.address": url.host or "",
            "url.path": url.path,
        },
    ) as current:
        if propagate:
            inject_traceparent(request.headers)
        response = await handler(request)
        current.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            current.set_status(Status(StatusCode.ERROR))
        return response
