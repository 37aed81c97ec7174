"""Fault injection, and the plumbing it needs, shared by the fake OpenAI, fal.ai and Tripo servers.

/work/shared/PROVIDERS.md sections 1–3 describe three APIs whose adapters must cope with 429s, 5xx,
hangs and answers they cannot use. Each fake owns a FaultPlan: a queue of one-shot faults and a standing
fault per endpoint, plus an added latency. The fake renders a fault in its own API's error format; this
module only decides *which* fault a request gets.

FakeServer is the common base of the three fakes: aiohttp lifecycle, the request log, the /_control API
(faults, recorded requests, switches) and the standalone `main()` loop that prints `READY <url>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, get_args

from aiohttp import web
from aiohttp.typedefs import Handler

FaultKind = Literal["rate_limited", "server_error", "timeout", "bad_payload", "error"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

# The status a fault answers with when none is given (a timeout answers normally, late).
_DEFAULT_STATUS: dict[str, int] = {"rate_limited": 429, "server_error": 500, "timeout": 0, "bad_payload": 200}
MAX_BODY_BYTES = 64 * 1024 * 1024  # image uploads; aiohttp's own default (1 MiB) is too small
SHUTDOWN_TIMEOUT = 2.0  # close() must not wait out a hung handler; `pause` wakes them anyway


@dataclass(frozen=True)
class Fault:
    """What one request to an endpoint gets instead of (or before) its normal answer.

    - rate_limited: HTTP 429 in the API's format; `retry_after` → `Retry-After` (seconds) and
      `retry_after_ms` → `retry-after-ms`, OpenAI's header the SDK reads first (PROVIDERS 1.7).
    - server_error: `status` (5xx) in the API's format.
    - timeout: the server says nothing for `seconds` (or until the fake closes), then handles the request
      normally. The client has usually given up by then; whatever the request does happens only then.
    - bad_payload: HTTP 200 with valid JSON (or bytes) that a client cannot use.
    - error: `status` with exactly `body`, for anything the helpers above do not cover.
    """

    kind: FaultKind
    status: int = 0
    retry_after: float | None = None
    retry_after_ms: float | None = None
    seconds: float = 0.0
    body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, not {self.kind!r}")
        if self.status == 0:
            if self.kind == "error":
                raise ValueError("an 'error' fault needs a status")
            object.__setattr__(self, "status", _DEFAULT_STATUS[self.kind])  # frozen: set once, here
        if self.kind in ("server_error", "error") and not 400 <= self.status <= 599:
            raise ValueError(f"a {self.kind} fault needs a 4xx/5xx status, not {self.status}")
        if self.kind == "error" and not isinstance(self.body, dict):
            raise ValueError("an 'error' fault needs a JSON object body")
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, retry_after_ms: float | None = None) -> Fault:
        return cls("rate_limited", 429, retry_after=retry_after, retry_after_ms=retry_after_ms)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("server_error", status)

    @classmethod
    def timeout(cls, seconds: float = 30.0) -> Fault:
        return cls("timeout", seconds=seconds)

    @classmethod
    def bad_payload(cls) -> Fault:
        return cls("bad_payload")

    @classmethod
    def error(cls, status: int, body: dict[str, Any]) -> Fault:
        return cls("error", status, body=body)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """The JSON form used by POST /_control/faults: the field names, only `kind` required."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; use {sorted(known)}")
        return cls(**data)

    def rate_limit_headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = _number(self.retry_after)
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = _number(self.retry_after_ms)
        return headers


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class FaultPlan:
    """Which fault (if any) the next request to each endpoint gets, and how late it answers.

    Queued faults are used first, one per request, in order; then the standing fault set by `always`.
    Safe to call from a test thread while the server runs its own loop.
    """

    def __init__(self, endpoints: Iterable[str] | None = None) -> None:
        self.endpoints = tuple(endpoints) if endpoints is not None else None
        self._lock = threading.Lock()
        self._queued: dict[str, deque[Fault]] = {}
        self._always: dict[str, Fault] = {}
        self._latency: dict[str, float] = {}

    def queue(self, endpoint: str, *faults: Fault) -> None:
        self._check(endpoint)
        with self._lock:
            self._queued.setdefault(endpoint, deque()).extend(faults)

    def always(self, endpoint: str, fault: Fault | None) -> None:
        self._check(endpoint)
        with self._lock:
            if fault is None:
                self._always.pop(endpoint, None)
            else:
                self._always[endpoint] = fault

    def set_latency(self, endpoint: str, seconds: float) -> None:
        self._check(endpoint)
        if seconds < 0:
            raise ValueError("latency must not be negative")
        with self._lock:
            self._latency[endpoint] = seconds

    def latency(self, endpoint: str) -> float:
        with self._lock:
            return self._latency.get(endpoint, 0.0)

    def take(self, endpoint: str) -> Fault | None:
        with self._lock:
            queued = self._queued.get(endpoint)
            if queued:
                return queued.popleft()
            return self._always.get(endpoint)

    def pending(self, endpoint: str) -> int:
        """How many queued faults are still unused (a test can assert they were all consumed)."""
        with self._lock:
            return len(self._queued.get(endpoint, ()))

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._always.clear()
            self._latency.clear()

    def _check(self, endpoint: str) -> None:
        if self.endpoints is not None and endpoint not in self.endpoints:
            raise ValueError(f"no endpoint {endpoint!r}; use one of {self.endpoints}")


# --- the shared server --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    endpoint: str | None  # the fault endpoint name, None for routes without one (and unknown paths)
    query: dict[str, str]
    headers: dict[str, str]  # Authorization keeps only its scheme: "Bearer <redacted>"
    received_at: float  # time.monotonic() on arrival, before any latency or fault: gaps show backoff
    json: Any = None  # the parsed body when it was JSON
    form: dict[str, str] = field(default_factory=dict)  # text parts of a multipart body
    files: list[str] = field(default_factory=list)  # names of the file parts in order, repeats kept


class ApiError(Exception):
    """An error answer in the fake's API format; the middleware turns it into the response."""

    def __init__(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


class FakeServer:
    """aiohttp plumbing common to the fakes. Subclasses add routes named after their fault endpoints.

    A route's name is its fault endpoint, optionally with a `:suffix` when two routes share one
    (Tripo's `/upload` and `/upload/sts` are both "upload").
    """

    ENDPOINTS: ClassVar[tuple[str, ...]] = ()
    API_PREFIX: ClassVar[str] = ""  # what `url` adds to the origin, e.g. "/v1"
    SETTINGS: ClassVar[tuple[str, ...]] = ()  # attributes POST /_control/settings may change

    def __init__(self, *, api_key: str) -> None:
        self.api_key = api_key
        self.faults = FaultPlan(self.ENDPOINTS)
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._origin: str | None = None
        self._closing = asyncio.Event()

    # --- lifecycle ---

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake is already running")
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES)
        self._add_control_routes(app)
        self._add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._closing.clear()
        self._runner = runner
        self._origin = f"http://{host}:{runner.addresses[0][1]}"  # the real port when port=0

    async def close(self) -> None:
        if self._runner is None:
            return
        self._closing.set()  # wakes handlers hanging in a timeout fault, so cleanup is quick
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def origin(self) -> str:
        """scheme://host:port, where files and /_control live."""
        if self._origin is None:
            raise RuntimeError("the fake has not been started")
        return self._origin

    @property
    def url(self) -> str:
        """The base URL an adapter (or SDK) is configured with."""
        return self.origin + self.API_PREFIX

    async def pause(self, seconds: float) -> None:
        """Sleeps, but returns at once when the fake closes."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    # --- hooks for the subclasses ---

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        """A rate_limited, server_error, bad_payload or error fault as this API answers it."""
        raise NotImplementedError

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        """An unknown path or method (aiohttp's 404/405) in this API's error format."""
        raise NotImplementedError

    def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        """Adds the headers every answer of this API carries (request or trace ids)."""

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SETTINGS}

    # --- request handling ---

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_control/"):
            # Control calls are not API traffic: keep them out of `requests`, report bad input as 400.
            try:
                return await handler(request)
            except (KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        endpoint = _endpoint_of(request)
        self.requests.append(await _record(request, endpoint))
        try:
            response = await self._answer(request, handler, endpoint)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = self._route_error(request, exc.status, exc.reason).response()
        self._decorate(request, response)
        return response

    async def _answer(
        self, request: web.Request, handler: Handler, endpoint: str | None
    ) -> web.StreamResponse:
        if endpoint is None:
            return await handler(request)
        await self.pause(self.faults.latency(endpoint))
        fault = self.faults.take(endpoint)
        if fault is None:
            return await handler(request)
        if fault.kind == "timeout":
            await self.pause(fault.seconds)
            return await handler(request)
        return self._render_fault(request, endpoint, fault)

    # --- the control API ---

    def _add_control_routes(self, app: web.Application) -> None:
        # Added before the API routes: fal's submit route matches any POST /{owner}/{app}.
        app.router.add_post("/_control/faults", self._control_faults)
        app.router.add_get("/_control/requests", self._control_requests)
        app.router.add_delete("/_control/requests", self._control_clear_requests)
        app.router.add_get("/_control/settings", self._control_get_settings)
        app.router.add_post("/_control/settings", self._control_set_settings)

    async def _control_faults(self, request: web.Request) -> web.Response:
        """`{"clear": true}`, or `{"endpoint": …}` with `"queue": [fault…]`, `"always": fault|null`
        and/or `"latency": seconds`; a fault is Fault's fields as JSON, e.g. `{"kind": "timeout"}`."""
        body = await request.json()
        if not isinstance(body, dict):
            raise TypeError("the body must be a JSON object")
        if body.get("clear"):
            self.faults.clear()
            return web.Response(status=204)
        endpoint = body["endpoint"]
        actions = {"queue", "always", "latency"} & set(body)
        if not actions:
            raise ValueError("give one of queue, always, latency or clear")
        if "queue" in body:
            self.faults.queue(endpoint, *(Fault.from_dict(item) for item in body["queue"]))
        if "always" in body:
            always = body["always"]
            self.faults.always(endpoint, None if always is None else Fault.from_dict(always))
        if "latency" in body:
            self.faults.set_latency(endpoint, float(body["latency"]))
        return web.Response(status=204)

    async def _control_requests(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self.requests])

    async def _control_clear_requests(self, request: web.Request) -> web.Response:
        self.requests.clear()
        return web.Response(status=204)

    async def _control_get_settings(self, request: web.Request) -> web.Response:
        return web.json_response(self.settings())

    async def _control_set_settings(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict):
            raise TypeError("the body must be a JSON object")
        for name, value in body.items():
            if name not in self.SETTINGS:
                raise ValueError(f"no setting {name!r}; use one of {self.SETTINGS}")
            current = getattr(self, name)
            if isinstance(current, float) and type(value) is int:
                value = body[name] = float(value)  # JSON has no separate float for whole numbers
            if type(value) is not type(current):  # bool is not int here: the switches are typed
                raise TypeError(f"{name} must be {type(current).__name__}, not {type(value).__name__}")
        for name, value in body.items():
            setattr(self, name, value)
        return web.json_response(self.settings())


def _endpoint_of(request: web.Request) -> str | None:
    name = request.match_info.route.name
    return name.partition(":")[0] if name else None


async def _record(request: web.Request, endpoint: str | None) -> RecordedRequest:
    received_at = time.monotonic()
    headers = dict(request.headers)
    for name in list(headers):
        if name.lower() == "authorization":
            scheme = headers[name].partition(" ")[0]
            headers[name] = f"{scheme} <redacted>"
    json_body: Any = None
    form: dict[str, str] = {}
    files: list[str] = []
    try:
        if request.content_type == "multipart/form-data":
            # post() caches its result, so the handler reading it again gets the same parts.
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files.append(name)
                else:
                    form[name] = str(value)
        elif request.can_read_body:
            raw = await request.read()  # cached for the handler
            with contextlib.suppress(ValueError):
                json_body = await request.json() if raw else None
    except (ValueError, web.HTTPException):
        pass  # the handler meets the same broken body and answers for it
    return RecordedRequest(
        request.method,
        request.path,
        endpoint,
        dict(request.query),
        headers,
        received_at,
        json_body,
        form,
        files,
    )


# --- running standalone -------------------------------------------------------------------------


def cli_parser(description: str, default_api_key: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (see the READY line)")
    parser.add_argument("--api-key", default=default_api_key)
    return parser


async def serve(fake: FakeServer, host: str, port: int) -> None:
    """Runs until SIGTERM or SIGINT. The one stdout line `READY <url>` tells a parent it listens."""
    await fake.start(host, port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    print(f"READY {fake.url}", flush=True)
    try:
        await stopped.wait()
    finally:
        await fake.close()
