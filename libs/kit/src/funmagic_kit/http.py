"""HTTP plumbing shared by every service: request ids, problem+json errors (RFC 9457), metrics, /metrics."""

from __future__ import annotations

import hmac
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from funmagic_kit.errors import (
    Conflict,
    Forbidden,
    LimitReached,
    Malformed,
    NotFound,
    Refused,
    TooLarge,
    TransientError,
    Unauthenticated,
    UpstreamRefused,
)
from funmagic_kit.logs import bind_correlation_id
from funmagic_kit.metrics import CONTENT_TYPE_LATEST, Metrics
from funmagic_kit.outages import is_transient
from funmagic_kit.request_keys import PRINCIPAL_KEY

__all__ = ["HttpProblem", "metrics_route", "problem", "problem_middleware", "refusal_problem"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("funmagic.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpProblem(Exception):
    """Raised by handlers to answer with a problem+json body (RFC 9457); mapped by `problem_middleware`."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: object,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def response(self) -> web.Response:
        response = problem(self.status, self.title, self.detail, **self.extensions)
        response.headers.update(self.headers)
        return response


def problem(status: int, title: str, detail: str | None = None, **extensions: object) -> web.Response:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extensions)
    return web.json_response(body, status=status, content_type="application/problem+json")


# Each kind of refusal has one status, here and nowhere else (most specific kind first).
_REFUSAL_STATUS: tuple[tuple[type[Refused], int, str], ...] = (
    (Malformed, 400, "Bad Request"),
    (Unauthenticated, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (NotFound, 404, "Not Found"),
    (Conflict, 409, "Conflict"),
    (TooLarge, 413, "Content Too Large"),
    (LimitReached, 429, "Too Many Requests"),
    (UpstreamRefused, 502, "Bad Gateway"),
    (Refused, 422, "Unprocessable Content"),
)
# How long a client should wait when a dependency of ours is down.
TRANSIENT_RETRY_AFTER_SECONDS = 2


def refusal_problem(error: Refused) -> web.Response:
    """The problem+json answer to a domain's refusal: its kind's status, its code, field and details."""
    status, title = next((s, t) for kind, s, t in _REFUSAL_STATUS if isinstance(error, kind))
    extensions: dict[str, object] = {"code": error.code}
    if error.field:
        extensions["field"] = error.field
    extensions.update(error.details)
    response = problem(status, title, str(error), **extensions)
    if isinstance(error, LimitReached) and error.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(error.retry_after_seconds)
    return response


def problem_middleware(
    metrics: Metrics,
    *,
    access_log_sample: float = 1.0,
    slow_request_seconds: float = 1.0,
    sample: Callable[[], float] = random.random,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Errors as problem+json, the request id, metrics, and the access log.

    Every answer is counted in the metrics; the access log writes a line for every error (status ≥ 400)
    and every request slower than `slow_request_seconds`, and for a sample (`access_log_sample`, 0–1) of
    the rest: on a busy gateway a JSON line per request costs more than the request's own work. Sampled
    lines carry `sample_rate`, so a count of them can be scaled back.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
        route = (
            request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        )
        with bind_correlation_id(request_id):
            try:
                response = await handler(request)
            except HttpProblem as error:
                response = error.response()
            except Refused as error:
                response = refusal_problem(error)
            except TransientError as error:
                response = _unavailable(request, error)
            except web.HTTPException as error:
                if error.status < 400:
                    # A redirect or other non-error: answered as a plain response (returning the exception
                    # object itself is deprecated in aiohttp).
                    response = web.Response(status=error.status, headers=error.headers)
                else:
                    response = problem(
                        error.status, error.reason, error.text if error.text != error.reason else None
                    )
                    # Keep what outer middlewares or the handler added (Retry-After, CORS, Allow…).
                    for name, value in error.headers.items():
                        if name.lower() not in ("content-type", "content-length"):
                            response.headers[name] = value
            except Exception as error:
                if is_transient(error):
                    # A driver's error that no adapter translated (a pool checkout, a raw query, a Redis
                    # command): still a dependency that is down, not a bug.
                    response = _unavailable(request, error)
                else:
                    log.exception("unhandled error", extra={"path": request.path, "method": request.method})
                    response = problem(500, "Internal Server Error", request_id=request_id)
            if response.status == 503 and "Retry-After" not in response.headers and not response.prepared:
                # Every 503 tells the client when to come back, whoever answered it (an inner middleware,
                # a handler's own problem, an upstream service's answer passed on).
                response.headers["Retry-After"] = str(TRANSIENT_RETRY_AFTER_SECONDS)
            response.headers["X-Request-Id"] = request_id
            elapsed = time.perf_counter() - started
            metrics.count_request(request.method, route, response.status, elapsed)
            always = response.status >= 400 or elapsed >= slow_request_seconds
            if always or (access_log_sample > 0 and sample() < access_log_sample):
                principal = request.get(PRINCIPAL_KEY)
                # The path only: query strings can carry one-time codes (OAuth) and must not reach the logs.
                extra: dict[str, Any] = {
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": response.status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "user_id": getattr(principal, "user_id", None),
                }
                if not always and access_log_sample < 1:
                    extra["sample_rate"] = access_log_sample
                access_log.info("request", extra=extra)
            return response

    return middleware


def _unavailable(request: web.Request, error: Exception) -> web.Response:
    """503 with Retry-After: a dependency of ours is down or busy; the same request later can succeed."""
    cause = error.__cause__
    log.warning(
        "dependency unavailable",
        extra={
            "path": request.path,
            "error": repr(error)[:300],
            "cause": repr(cause)[:300] if cause else None,
        },
    )
    # A driver's message names hosts and ports: callers get a plain sentence instead (our own errors say
    # which dependency, never where it is: the driver's words stay in their cause, logged above).
    detail = str(error) if isinstance(error, TransientError) else "a dependency is unavailable; retry"
    response = problem(503, "Service Unavailable", detail, code="unavailable")
    response.headers["Retry-After"] = str(TRANSIENT_RETRY_AFTER_SECONDS)
    return response


def metrics_route(metrics: Metrics, *, token: str | None = None) -> web.RouteDef:
    """`GET /metrics`: Prometheus text. With a `token` (METRICS_AUTH_TOKEN), only for a scraper that sends
    `Authorization: Bearer <token>` (compared in constant time); anyone else gets a 401 problem."""
    expected = token.encode() if token else None

    async def handler(request: web.Request) -> web.Response:
        if expected is not None and not _bearer_matches(request, expected):
            raise HttpProblem(
                401,
                "Unauthorized",
                "the metrics need the metrics bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return web.get("/metrics", handler)


def _bearer_matches(request: web.Request, expected: bytes) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # compare_digest even for a wrong scheme or an empty value: the answer takes as long either way.
    matches = hmac.compare_digest(presented.strip().encode(), expected)
    return scheme.lower() == "bearer" and matches
