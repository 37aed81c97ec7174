"""The HTTP clients the provider adapters call through, and the one place their calls are recorded.

Every provider call goes out through one of two clients built here: the aiohttp session (fal, Tripo) with
the `record_provider_calls` middleware, and the `openai` SDK's httpx client with `RecordingTransport`. Both
add a `ProviderCall` (redacted by `domain.provider_calls`) to the list of the step job being run, which
the runner opens with `ContextCallRecorder.record()` around the adapter's `run`: a context variable, so
tasks the adapter starts count too, and a call made outside (storage reads and writes share the aiohttp
session) is not recorded. Adapters know nothing of it.

A JSON or text answer is read here, once (both clients keep the bytes for the adapter). A file download
or an event stream is not: it is recorded with its status, headers and size when its headers come, and
its duration is the time to those headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

import aiohttp
import httpx
import openai

from funmagic_kit.tracing_http import external_tracing_client_middleware
from funmagic_providers.domain.documents import JsonValue
from funmagic_providers.domain.provider_calls import (
    MAX_CALLS_PER_JOB,
    ProviderCall,
    body_of,
    credentials_of,
    request_ids,
    safe_url,
)
from funmagic_providers.domain.steps import ProviderAccess

__all__ = [
    "ContextCallRecorder",
    "RecordingTransport",
    "openai_client",
    "provider_session",
    "record_provider_calls",
]

_calls: ContextVar[list[ProviderCall] | None] = ContextVar("provider_calls", default=None)


class ContextCallRecorder:
    """`with recorder.record() as calls:` — the provider calls made in this context land in `calls`."""

    @contextlib.contextmanager
    def record(self) -> Iterator[list[ProviderCall]]:
        calls: list[ProviderCall] = []
        token = _calls.set(calls)
        try:
            yield calls
        finally:
            _calls.reset(token)


def provider_session(timeout_seconds: float) -> aiohttp.ClientSession:
    """The aiohttp session of the fal and Tripo adapters: each call a span (no traceparent goes to a third
    party) and recorded."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        middlewares=(external_tracing_client_middleware, record_provider_calls),
    )


def openai_client(provider: ProviderAccess, *, timeout: float) -> openai.AsyncOpenAI:
    """An SDK client for one call (closed with it). The SDK's own retries are off: the step policy
    retries, with the provider's rate limits and the step's deadline in view."""
    return openai.AsyncOpenAI(
        api_key=provider.api_key or "",
        base_url=provider.base_url,
        max_retries=0,
        timeout=timeout,
        http_client=openai.DefaultAsyncHttpxClient(
            timeout=timeout, transport=RecordingTransport(httpx.AsyncHTTPTransport())
        ),
    )


# --- aiohttp ----------------------------------------------------------------------------------------------


async def record_provider_calls(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    calls = _calls.get()
    if calls is None:
        return await handler(request)
    started_at, started = datetime.now(UTC), time.perf_counter()
    secrets = credentials_of(request.headers.items())
    request_body = await _aiohttp_request_body(request, secrets)

    def add(status: int | None, headers: Mapping[str, str] | None, body: JsonValue,
            error: str | None = None) -> None:  # fmt: skip
        _add(calls, ProviderCall(
            started_at=started_at, method=request.method, url=_url(str(request.url), secrets), status=status,
            duration_ms=_ms_since(started), request_ids=request_ids((headers or {}).items()),
            request_body=request_body, response_body=body, error=error,
        ))  # fmt: skip

    try:
        response = await handler(request)
    except BaseException as error:
        add(None, None, None, _failure(error))
        raise
    content_type = response.headers.get("Content-Type")
    if _readable(content_type):
        try:
            data = await response.read()  # kept by the response: the adapter reads the same bytes
        except BaseException as error:
            add(response.status, response.headers, None, _failure(error))
            raise
        add(response.status, response.headers, body_of(data, content_type, secrets=secrets))
    else:
        add(response.status, response.headers, _unread(content_type, response.headers.get("Content-Length")))
    return response


async def _aiohttp_request_body(request: aiohttp.ClientRequest, secrets: list[str]) -> JsonValue:
    # Diagnostics never break a call: a body this cannot read is only named.
    try:
        body = request.body
        content_type = request.headers.get("Content-Type")
        if isinstance(body, bytes | bytearray):
            if not body:
                return None
            if _readable(content_type):
                return body_of(bytes(body), content_type, secrets=secrets)
            return _unread(content_type, str(len(body)))
        if not body.size:
            return None
        content_type = content_type or body.content_type
        if _readable(content_type):
            return body_of(await body.as_bytes(), content_type, secrets=secrets)
        return _unread(content_type, str(body.size))
    except Exception:
        return "<unreadable body>"


# --- httpx (the openai SDK) ------------------------------------------------------------------------------


class RecordingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that records the calls it carries (when a recording is open) and passes them on
    to `inner`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        calls = _calls.get()
        if calls is None:
            return await self._inner.handle_async_request(request)
        started_at, started = datetime.now(UTC), time.perf_counter()
        secrets = credentials_of(request.headers.items())
        request_body = _httpx_request_body(request, secrets)

        def add(response: httpx.Response | None, body: JsonValue, error: str | None = None) -> None:
            _add(calls, ProviderCall(
                started_at=started_at, method=request.method, url=_url(str(request.url), secrets),
                status=None if response is None else response.status_code, duration_ms=_ms_since(started),
                request_ids=request_ids(response.headers.items() if response is not None else ()),
                request_body=request_body, response_body=body, error=error,
            ))  # fmt: skip

        try:
            response = await self._inner.handle_async_request(request)
        except BaseException as error:
            add(None, None, _failure(error))
            raise
        content_type = response.headers.get("content-type")
        if not _readable(content_type):
            add(response, _unread(content_type, response.headers.get("content-length")))
            return response
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        except BaseException as error:
            add(response, None, _failure(error))
            raise
        finally:
            await response.aclose()
        # The bytes as they came (still compressed, if they were), in a response the client decodes as usual.
        answered = httpx.Response(
            response.status_code, headers=response.headers, content=raw, request=request,
            extensions=response.extensions,
        )  # fmt: skip
        add(answered, body_of(answered.content, content_type, secrets=secrets))
        return answered

    async def aclose(self) -> None:
        await self._inner.aclose()


def _httpx_request_body(request: httpx.Request, secrets: list[str]) -> JsonValue:
    content_type = request.headers.get("content-type")
    if not _readable(content_type):
        return _unread(content_type, request.headers.get("content-length"))
    try:
        return body_of(request.content, content_type, secrets=secrets)
    except httpx.RequestNotRead:
        return _unread(content_type, request.headers.get("content-length"))


# --- shared -----------------------------------------------------------------------------------------------


def _add(calls: list[ProviderCall], call: ProviderCall) -> None:
    if len(calls) < MAX_CALLS_PER_JOB:
        calls.append(call)


def _url(url: str, secrets: list[str]) -> str:
    kept = safe_url(url)
    for secret in secrets:
        kept = kept.replace(secret, "<redacted secret>")
    return kept


def _readable(content_type: str | None) -> bool:
    """JSON and text (but event streams) are read and kept; anything else is only named."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind == "text/event-stream":
        return False
    return not kind or kind == "application/json" or kind.endswith("+json") or kind.startswith("text/")


def _unread(content_type: str | None, length: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower() or "binary"
    size = f", {length} bytes" if length and length.isdigit() else ""
    return f"<{kind} body{size}>"


def _failure(error: BaseException) -> str:
    """Why no answer came, in our words: an exception's text may repeat a URL with its query."""
    if isinstance(error, TimeoutError | httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return f"no answer ({type(error).__name__})"


def _ms_since(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))
