"""The gateway's edge middlewares: client address, rate limits, CORS and security headers.

Middlewares here decorate responses the handler returns *and* the errors it raises — aiohttp's
`web.HTTPException` (a response in aiohttp 3) and the kit's `HttpProblem` (its headers are copied into
the problem response) — so a 404 or 422 carries the same headers as a 200. Responses a handler already
prepared (streams such as SSE) have sent their headers and are left alone.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from functools import partial
from urllib.parse import urlsplit

from aiohttp import web

from funmagic_gateway.adapters.rate_limiter import (
    CounterLeases,
    PurchasedCredits,
    RateLimiterUnavailable,
    RateLimitSettingsStore,
)
from funmagic_gateway.domain.rate_limits import (
    TIERED_CATEGORIES,
    RateLimitCategory,
    RateLimitDecision,
    RateLimitSettings,
    SubjectKind,
    decide_most_constraining,
    requests_to_limit,
)
from funmagic_kit.http import HttpProblem, problem
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal

__all__ = [
    "CLIENT_IP_KEY",
    "IPNetwork",
    "client_ip",
    "cors_middleware",
    "parse_trusted_proxies",
    "rate_limit_middleware",
    "security_headers_middleware",
]

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
Headers = MutableMapping[str, str]
# The caller's address as the gateway believes it (see `client_ip`), for later middlewares and handlers.
CLIENT_IP_KEY: web.RequestKey[str] = web.RequestKey("client_ip", str)


async def _handle_and_decorate(
    request: web.Request, handler: Handler, decorate: Callable[[Headers], None]
) -> web.StreamResponse:
    """Run the handler and apply `decorate` to the headers of whatever it answers or raises."""
    try:
        response = await handler(request)
    except (web.HTTPException, HttpProblem) as error:
        decorate(error.headers)
        raise
    if not response.prepared:
        decorate(response.headers)
    return response


# --- client address -------------------------------------------------------------------------------


def parse_trusted_proxies(value: str) -> tuple[IPNetwork, ...]:
    """Parse "10.0.0.0/8, 192.168.1.7, fd00::/8"; an empty string trusts no proxy.

    strict: "10.0.0.5/24" (host bits set) is refused rather than guessed at, since a wrong guess
    here decides whose X-Forwarded-For we believe.
    """
    networks: list[IPNetwork] = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as error:
            raise ValueError(f"invalid trusted proxy entry {entry!r}: {error}") from None
    return tuple(networks)


def client_ip(request: web.BaseRequest, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The address of the client, believing X-Forwarded-For only as far as our own proxies wrote it.

    The original took the first X-Forwarded-For value from anyone, so a client could pick its own rate
    limit bucket. Here the header counts only when the peer is a trusted proxy, and is read from the
    right (the entries proxies appended) until the first address that is not a trusted proxy.
    """
    remote = request.remote
    peer = _parse_ip(remote) if remote else None
    if peer is None:
        # No TCP peer (e.g. a unix socket): nothing to vouch for forwarded headers.
        return remote or "unknown"
    if not _is_trusted(peer, trusted_proxies):
        return str(peer)
    last_trusted = peer
    for entry in reversed(_forwarded_for_entries(request)):
        address = _parse_ip(entry)
        if address is None:
            # Garbage written by someone left of our proxies: stop, never trust what lies beyond it.
            return str(last_trusted)
        if not _is_trusted(address, trusted_proxies):
            return str(address)
        last_trusted = address
    return str(last_trusted)


def _forwarded_for_entries(request: web.BaseRequest) -> list[str]:
    # Several X-Forwarded-For headers are one comma-separated list in order (RFC 9110 §5.3).
    values = request.headers.getall("X-Forwarded-For", ())
    return [part.strip() for value in values for part in value.split(",")]


def _parse_ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; one client must have one key.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress, trusted_proxies: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in trusted_proxies)


# --- rate limiting --------------------------------------------------------------------------------

_FAIL_OPEN_LOG_INTERVAL_SECONDS = 60.0
_ADDRESS_MEMO_SIZE = 4096


class _ThrottledWarning:
    """Logs a warning at most once per interval, so an outage does not flood the logs."""

    def __init__(self, interval_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._last: float | None = None

    def warn(self, message: str, error: BaseException) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            return
        self._last = now
        log.warning(message, extra={"error": str(error) or type(error).__name__})


def rate_limit_middleware(
    limiter: CounterLeases,
    settings_store: RateLimitSettingsStore,
    trusted_proxies: Sequence[IPNetwork],
    *,
    purchased: PurchasedCredits | None = None,
    principal_key: web.RequestKey[Principal] = PRINCIPAL_KEY,
    redis_timeout_seconds: float = 0.5,
) -> Middleware:
    """Count each request against its limits; 429 when one is exhausted.

    `request[principal_key]` (set by an earlier middleware, None or absent when anonymous) must have a
    `user_id`. Sets `request[CLIENT_IP_KEY]` for every request, API or not.

    A signed-in user's per-user limits are multiplied by their tier's multiplier, from the credits they
    ever bought (`purchased`; None: every user counts as having bought nothing). That value is remembered
    for a moment, else read in the counters' round trip; only when Redis lacks it is credits asked.
    """
    trusted = tuple(trusted_proxies)
    outage_warning = _ThrottledWarning(_FAIL_OPEN_LOG_INTERVAL_SECONDS)
    # Parsing addresses is a few µs a request; a client sends many from one address. A full memo starts
    # over, so a flood of addresses costs the parsing and no memory.
    addresses: dict[tuple[str | None, tuple[str, ...]], str] = {}

    def believed_address(request: web.Request) -> str:
        # Forwarded-for entries can change the answer only when some proxy is trusted.
        forwarded = tuple(request.headers.getall("X-Forwarded-For", ())) if trusted else ()
        key = (request.remote, forwarded)
        address = addresses.get(key)
        if address is None:
            if len(addresses) >= _ADDRESS_MEMO_SIZE:
                addresses.clear()
            address = addresses[key] = client_ip(request, trusted)
        return address

    async def limit(request: web.Request) -> RateLimitDecision | None:
        principal = request.get(principal_key)
        categories = requests_to_limit(request.method, request.path, principal is not None)
        if not categories:
            return None
        try:
            settings = settings_store.cached()
            if settings is None:
                # Bounded: a Redis that hangs instead of refusing must not hang the API either (the
                # counters bound their own round trips; most requests make none).
                async with asyncio.timeout(redis_timeout_seconds):
                    settings = await settings_store.get()
            # The user whose tier counts here (None: anonymous, or no tier changes these limits).
            tiered_user = _tiered_user(principal, purchased, settings, categories)
            bought = purchased.remembered(tiered_user) if purchased and tiered_user else None
            # Counted against the highest tier's limits while the user's is unknown: a lease may
            # refuse by itself only at a limit no tier raises (see `CounterLeases.count`).
            unknown_tier = tiered_user is not None and bought is None
            bound = settings.highest_multiplier() if unknown_tier else settings.multiplier_for(bought)
            windows = [
                (c, _subject(c, request, principal), settings.for_category(c, bound)) for c in categories
            ]
            counted = await limiter.count(
                windows, also_get=purchased.key(tiered_user) if purchased and unknown_tier else None
            )
        except (RateLimiterUnavailable, TimeoutError) as error:
            # Fail open: with Redis down every request would otherwise fail, and keeping the API
            # available matters more than enforcing limits for the minutes an outage lasts.
            outage_warning.warn("rate limiter unavailable; requests are not rate limited", error)
            return None
        limits = [limit for _, _, limit in windows]
        if purchased is not None and tiered_user is not None and bought is None:
            bought = await purchased.lifetime_purchased(tiered_user, counted.extra)
            limits = [settings.for_category(c, settings.multiplier_for(bought)) for c in categories]
        return decide_most_constraining(
            (c, limit, count, ttl_ms)
            for c, limit, (count, ttl_ms) in zip(categories, limits, counted.counts, strict=True)
        )

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[CLIENT_IP_KEY] = believed_address(request)
        decision = await limit(request)
        if decision is None:
            return await handler(request)
        if not decision.allowed:
            return _too_many_requests(decision)
        return await _handle_and_decorate(
            request, handler, partial(_set_rate_limit_headers, decision=decision)
        )

    return middleware


def _tiered_user(
    principal: Principal | None,
    purchased: PurchasedCredits | None,
    settings: RateLimitSettings,
    categories: Sequence[RateLimitCategory],
) -> str | None:
    """The signed-in user whose tier can change this request's limits: a tiered category is counted and
    some tier multiplies (else the purchases need not be read at all)."""
    if principal is None or purchased is None or not any(c in TIERED_CATEGORIES for c in categories):
        return None
    return str(principal.user_id) if any(t.multiplier != 1 for t in settings.tiers) else None


def _subject(category: RateLimitCategory, request: web.Request, principal: object) -> str:
    if category.subject_kind is SubjectKind.USER:
        return str(principal.user_id)  # type: ignore[attr-defined]
    return request[CLIENT_IP_KEY]


def _set_rate_limit_headers(headers: Headers, decision: RateLimitDecision) -> None:
    headers["X-RateLimit-Limit"] = str(decision.limit)
    headers["X-RateLimit-Remaining"] = str(decision.remaining)
    headers["X-RateLimit-Reset"] = str(decision.reset_seconds)


def _too_many_requests(decision: RateLimitDecision) -> web.Response:
    response = problem(
        429,
        "Too Many Requests",
        f"The {decision.category} rate limit of {decision.limit} requests is exhausted; "
        f"retry in {decision.reset_seconds} s.",
        category=decision.category.value,
    )
    _set_rate_limit_headers(response.headers, decision)
    response.headers["Retry-After"] = str(decision.reset_seconds)
    return response


# --- CORS -----------------------------------------------------------------------------------------

_CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
_CORS_ALLOW_HEADERS = "Content-Type, Authorization, X-CSRF-Token, X-Request-Id, Idempotency-Key"
_CORS_EXPOSE_HEADERS = (
    "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
)
_CORS_MAX_AGE_SECONDS = "600"


def cors_middleware(allowed_origins: Sequence[str]) -> Middleware:
    """CORS with credentials for an exact list of origins such as "https://app.example.com"."""
    allowed = _validate_origins(allowed_origins)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_preflight(request):
            return _preflight_response(request.headers["Origin"], allowed)
        origin = request.headers.get("Origin")
        return await _handle_and_decorate(
            request, handler, partial(_decorate_cors, origin=origin, allowed=allowed)
        )

    return middleware


def _validate_origins(origins: Sequence[str]) -> frozenset[str]:
    if isinstance(origins, str):
        # A bare string is a Sequence[str] of characters; refuse it instead of allowing "h", "t", ...
        raise TypeError("allowed_origins must be a sequence of origins, not one string")
    for origin in origins:
        if origin == "*":
            # Browsers refuse "*" with credentials, and echoing any origin would hand every site the
            # user's session: origins must be listed.
            raise ValueError("CORS origin '*' is not allowed because credentials are allowed")
        if not _is_origin(origin):
            raise ValueError(
                f"invalid CORS origin {origin!r}: expected lower-case scheme://host[:port] with no path"
            )
    return frozenset(origins)


def _is_origin(value: str) -> bool:
    # "null" (sandboxed frames, file://) is shared by unrelated documents, so it can never be trusted.
    # Browsers send origins lower-case and without a path; anything else would silently never match.
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        value == value.lower()
        and parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not parts.path
        and not parts.query
        and not parts.fragment
        and not parts.username
        and not parts.password
    )


def _is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def _preflight_response(origin: str, allowed: frozenset[str]) -> web.StreamResponse:
    if origin not in allowed:
        response = problem(403, "Forbidden", f"Origin {origin!r} is not allowed to call this API.")
        _add_vary(response.headers, "Origin")
        return response
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Access-Control-Allow-Methods"] = _CORS_ALLOW_METHODS
    response.headers["Access-Control-Allow-Headers"] = _CORS_ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = _CORS_MAX_AGE_SECONDS
    _add_vary(response.headers, "Origin")
    return response


def _decorate_cors(headers: Headers, origin: str | None, allowed: frozenset[str]) -> None:
    # Vary on every response, allowed or not: a cache must not serve one origin's answer to another.
    _add_vary(headers, "Origin")
    if origin is None or origin not in allowed:
        return
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Credentials"] = "true"
    headers["Access-Control-Expose-Headers"] = _CORS_EXPOSE_HEADERS


def _add_vary(headers: Headers, field: str) -> None:
    # Appended, not replaced: the handler may already vary on something else (e.g. Accept-Encoding).
    existing = headers.get("Vary", "")
    present = {token.strip().lower() for token in existing.split(",")}
    if field.lower() in present or "*" in present:
        return
    headers["Vary"] = f"{existing}, {field}" if existing else field


# --- security headers -----------------------------------------------------------------------------

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_HSTS = "max-age=31536000; includeSubDomains"


def security_headers_middleware(*, hsts: bool) -> Middleware:
    """Browser hardening headers on every response. `hsts` only where the site is served over HTTPS:
    on plain HTTP it would be ignored, and on a dev host it would pin HTTPS for a year."""
    headers_to_set = dict(_SECURITY_HEADERS)
    if hsts:
        headers_to_set["Strict-Transport-Security"] = _HSTS

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await _handle_and_decorate(request, handler, partial(_set_missing, values=headers_to_set))

    return middleware


def _set_missing(headers: Headers, values: dict[str, str]) -> None:
    # setdefault: a handler that needs a different policy (say, a frameable page) sets its own.
    for name, value in values.items():
        headers.setdefault(name, value)
