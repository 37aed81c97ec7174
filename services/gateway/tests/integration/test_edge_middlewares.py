"""The edge middlewares in a real aiohttp app, over real HTTP and the real local Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from gateway_test_support import KeptSettings
from redis.asyncio import Redis

from funmagic_gateway.adapters.rate_limiter import (
    CounterLeases,
    PurchasedCredits,
    RateLimitSettingsStore,
    RedisRateLimiter,
)
from funmagic_gateway.application.ports import Caller
from funmagic_gateway.domain.rate_limits import RateLimit, RateLimitSettings, RateLimitTier
from funmagic_gateway.entrypoints.edge import (
    CLIENT_IP_KEY,
    IPNetwork,
    cors_middleware,
    parse_trusted_proxies,
    rate_limit_middleware,
    security_headers_middleware,
)
from funmagic_kit.http import HttpProblem, problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import PRINCIPAL_KEY

ORIGIN = "https://app.funmagic.test"
LOCALHOST = parse_trusted_proxies("127.0.0.1/32")
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass(frozen=True)
class Principal:
    user_id: str


@web.middleware
async def fake_auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stands in for the auth middleware: `X-Test-User: alice` signs the request in as alice."""
    user = request.headers.get("X-Test-User")
    request[PRINCIPAL_KEY] = Principal(user) if user else None
    return await handler(request)


async def echo_client_ip(request: web.Request) -> web.Response:
    return web.json_response({"client_ip": request[CLIENT_IP_KEY]})


async def create_task(request: web.Request) -> web.Response:
    return web.json_response({"id": "t-1"}, status=201)


async def not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="no such thing")


async def invalid_input(request: web.Request) -> web.Response:
    raise HttpProblem(422, "Unprocessable Content", "name is required")


ROUTES = [
    web.get("/api/items", echo_client_ip),
    web.post("/api/tasks", create_task),
    web.get("/api/gone", not_found),
    web.post("/api/invalid", invalid_input),
    web.get("/health", echo_client_ip),
]


@dataclass
class Edge:
    """What a test configures: the limits (kept, and in Redis), the trusted proxies, whether HSTS is on."""

    redis: Redis
    prefix: str
    kept: KeptSettings

    async def settings(self, **limits: RateLimit) -> RateLimitSettingsStore:
        store = RateLimitSettingsStore(self.redis, self.kept, key=f"{self.prefix}:settings")
        await store.put(RateLimitSettings(**limits), Caller(token="an-admins-token"))
        return store

    @asynccontextmanager
    async def serve(
        self,
        store: RateLimitSettingsStore,
        *,
        trusted: Sequence[IPNetwork] = (),
        hsts: bool = True,
        limiter: RedisRateLimiter | None = None,
        outermost: Sequence[Callable] = (),
        purchased: PurchasedCredits | None = None,
    ) -> AsyncIterator[aiohttp.ClientSession]:
        limiter = limiter or RedisRateLimiter(self.redis, prefix=self.prefix)
        app = web.Application(
            middlewares=[
                *outermost,
                security_headers_middleware(hsts=hsts),
                cors_middleware([ORIGIN]),
                fake_auth,
                rate_limit_middleware(CounterLeases(limiter), store, trusted, purchased=purchased),
            ]
        )
        app.add_routes(ROUTES)
        async with TestServer(app) as server, aiohttp.ClientSession(str(server.make_url("/"))) as session:
            yield session


@pytest.fixture
def edge(redis: Redis, prefix: str, kept: KeptSettings) -> Edge:
    return Edge(redis, prefix, kept)


def per_minute(limit: int) -> RateLimit:
    return RateLimit(limit=limit, window_seconds=60)


async def test_success_responses_carry_the_rate_limit_headers(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(5))
    async with edge.serve(store) as client, client.get("/api/items") as response:
        assert response.status == 200
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["X-RateLimit-Remaining"] == "4"
        assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 60


async def test_over_the_limit_is_a_429_problem_with_retry_after(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(2))
    async with edge.serve(store) as client:
        for _ in range(2):
            async with client.get("/api/items") as response:
                assert response.status == 200
        async with client.get("/api/items") as response:
            assert response.status == 429
            assert response.headers["Content-Type"].startswith("application/problem+json")
            body = await response.json(content_type=None)
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            assert response.headers["X-RateLimit-Limit"] == "2"
            assert response.headers["X-RateLimit-Remaining"] == "0"
            assert response.headers["X-RateLimit-Reset"] == response.headers["Retry-After"]
    assert body["type"] == "about:blank"
    assert body["title"] == "Too Many Requests"
    assert body["status"] == 429
    assert body["category"] == "global_api"
    assert "global_api" in body["detail"]


async def test_the_most_constraining_limit_is_reported(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(100), task_creation=per_minute(1))
    alice = {"X-Test-User": "alice"}
    async with edge.serve(store) as client:
        async with client.post("/api/tasks", headers=alice) as response:
            assert response.status == 201
            assert response.headers["X-RateLimit-Limit"] == "1"
            assert response.headers["X-RateLimit-Remaining"] == "0"
        async with client.post("/api/tasks", headers=alice) as response:
            assert response.status == 429
            assert (await response.json(content_type=None))["category"] == "task_creation"
        # Only creation is limited: listing still works.
        async with client.get("/api/items", headers=alice) as response:
            assert response.status == 200


async def test_user_limits_count_per_user_not_per_address(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(100), user_api=per_minute(1))
    async with edge.serve(store) as client:
        async with client.get("/api/items", headers={"X-Test-User": "alice"}) as response:
            assert response.status == 200
        async with client.get("/api/items", headers={"X-Test-User": "alice"}) as response:
            assert response.status == 429
            assert (await response.json(content_type=None))["category"] == "user_api"
        # Same address, another user: a separate bucket.
        async with client.get("/api/items", headers={"X-Test-User": "bob"}) as response:
            assert response.status == 200
        # Anonymous calls are not counted per user at all.
        async with client.get("/api/items") as response:
            assert response.status == 200


async def test_ip_limits_count_per_client_address_behind_a_trusted_proxy(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(1))
    async with edge.serve(store, trusted=LOCALHOST) as client:
        first = {"X-Forwarded-For": "198.51.100.1"}
        async with client.get("/api/items", headers=first) as response:
            assert response.status == 200
            assert (await response.json())["client_ip"] == "198.51.100.1"
        async with client.get("/api/items", headers=first) as response:
            assert response.status == 429
        async with client.get("/api/items", headers={"X-Forwarded-For": "198.51.100.2"}) as response:
            assert response.status == 200
            assert (await response.json())["client_ip"] == "198.51.100.2"


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(edge: Edge) -> None:
    # No trusted proxies: rotating X-Forwarded-For must not buy a fresh bucket.
    store = await edge.settings(global_api=per_minute(1))
    async with edge.serve(store, trusted=()) as client:
        async with client.get("/api/items", headers={"X-Forwarded-For": "198.51.100.1"}) as response:
            assert response.status == 200
            assert (await response.json())["client_ip"] == "127.0.0.1"
        async with client.get("/api/items", headers={"X-Forwarded-For": "198.51.100.2"}) as response:
            assert response.status == 429


async def test_non_api_paths_are_not_limited_but_know_the_client(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(1))
    async with edge.serve(store, trusted=LOCALHOST) as client:
        for _ in range(3):
            async with client.get("/health", headers={"X-Forwarded-For": "198.51.100.9"}) as response:
                assert response.status == 200
                assert (await response.json())["client_ip"] == "198.51.100.9"
                assert not any(name in response.headers for name in RATE_HEADERS)


async def test_raised_http_errors_get_every_edge_header(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(5))
    async with (
        edge.serve(store) as client,
        client.get("/api/gone", headers={"Origin": ORIGIN}) as response,
    ):
        assert response.status == 404
        assert response.headers["X-RateLimit-Remaining"] == "4"
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value


async def test_kit_problems_raised_by_handlers_get_every_edge_header(edge: Edge) -> None:
    # In the service the kit's problem middleware is outermost and renders HttpProblem.
    store = await edge.settings(global_api=per_minute(5))
    outermost = [problem_middleware(Metrics("gateway-tests"))]
    async with (
        edge.serve(store, outermost=outermost) as client,
        client.post("/api/invalid", headers={"Origin": ORIGIN}) as response,
    ):
        assert response.status == 422
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["X-Frame-Options"] == "DENY"


async def test_cors_preflight_from_an_allowed_origin(edge: Edge) -> None:
    store = await edge.settings()
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with edge.serve(store) as client, client.options("/api/tasks", headers=headers) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"
        assert response.headers["Access-Control-Allow-Headers"] == (
            "Content-Type, Authorization, X-CSRF-Token, X-Request-Id, Idempotency-Key"
        )
        assert response.headers["Access-Control-Max-Age"] == "600"
        assert response.headers["Vary"] == "Origin"


async def test_cors_preflight_from_another_origin_is_refused(edge: Edge) -> None:
    store = await edge.settings()
    headers = {"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"}
    async with edge.serve(store) as client, client.options("/api/tasks", headers=headers) as response:
        assert response.status == 403
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert (await response.json(content_type=None))["status"] == 403
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_actual_request_from_an_allowed_origin(edge: Edge) -> None:
    store = await edge.settings()
    async with (
        edge.serve(store) as client,
        client.get("/api/items", headers={"Origin": ORIGIN}) as response,
    ):
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert response.headers["Access-Control-Expose-Headers"] == (
            "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After"
        )
        assert response.headers["Vary"] == "Origin"


async def test_cors_actual_request_from_another_origin_gets_no_cors_headers(edge: Edge) -> None:
    store = await edge.settings()
    async with (
        edge.serve(store) as client,
        client.get("/api/items", headers={"Origin": "https://evil.test"}) as response,
    ):
        assert response.status == 200
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]


async def test_security_headers_with_hsts(edge: Edge) -> None:
    store = await edge.settings()
    async with edge.serve(store, hsts=True) as client, client.get("/health") as response:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


async def test_security_headers_without_hsts(edge: Edge) -> None:
    store = await edge.settings()
    async with edge.serve(store, hsts=False) as client, client.get("/api/gone") as response:
        assert response.status == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Strict-Transport-Security" not in response.headers


async def test_redis_down_fails_open_and_warns_once(edge: Edge, caplog: pytest.LogCaptureFixture) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    store = RateLimitSettingsStore(down, edge.kept, key="unused")
    limiter = RedisRateLimiter(down, prefix="unused")
    try:
        with caplog.at_level(logging.WARNING, logger="funmagic_gateway.entrypoints.edge"):
            async with edge.serve(store, limiter=limiter) as client:
                for _ in range(3):
                    async with client.get("/api/items") as response:
                        assert response.status == 200
                        assert not any(name in response.headers for name in RATE_HEADERS)
    finally:
        await down.aclose()
    warnings = [r for r in caplog.records if "rate limiter unavailable" in r.getMessage()]
    assert len(warnings) == 1


# --- tiers: what a user bought multiplies their per-user limits ---------------------------------------


class Bought:
    """Stands in for credits' purchases route: what each user bought in all; counts the questions."""

    def __init__(self, **bought: int) -> None:
        self.bought = bought
        self.asked: list[str] = []

    async def lifetime_purchased(self, user_id: str) -> int:
        self.asked.append(user_id)
        return self.bought.get(user_id, 0)


async def create_tasks(client: aiohttp.ClientSession, user: str, times: int) -> list[aiohttp.ClientResponse]:
    answers = []
    for _ in range(times):
        async with client.post("/api/tasks", headers={"X-Test-User": user}) as response:
            answers.append(response)
    return answers


async def test_each_user_gets_the_task_creation_limit_of_their_tier(edge: Edge) -> None:
    store = await edge.settings(task_creation=per_minute(2))
    bought = Bought(basic=1, premium=1000)
    purchased = PurchasedCredits(edge.redis, bought, prefix=f"{edge.prefix}:purchased")
    async with edge.serve(store, purchased=purchased) as client:
        free, basic, premium = [await create_tasks(client, user, 7) for user in ("free", "basic", "premium")]

    assert [r.status for r in free] == [201] * 2 + [429] * 5
    assert [r.status for r in basic] == [201] * 4 + [429] * 3
    assert [r.status for r in premium] == [201] * 6 + [429] * 1
    assert [r.headers["X-RateLimit-Limit"] for r in (free[0], basic[0], premium[0])] == ["2", "4", "6"]
    assert sorted(bought.asked) == ["basic", "free", "premium"], "credits asked once per user, then cached"


async def test_a_purchase_raises_the_limit_within_the_running_window(edge: Edge) -> None:
    store = await edge.settings(task_creation=per_minute(2))
    bought = Bought()
    purchased = PurchasedCredits(edge.redis, bought, prefix=f"{edge.prefix}:purchased")
    async with edge.serve(store, purchased=purchased) as client:
        before = await create_tasks(client, "buyer", 3)
        bought.bought["buyer"] = 500
        await purchased.refresh("buyer")  # what the CreditsPurchased event does
        after = await create_tasks(client, "buyer", 2)

    assert [r.status for r in before] == [201, 201, 429]
    # The window goes on counting (3 so far): with 2× the limit is 4, so one more passes.
    assert [r.status for r in after] == [201, 429]
    assert after[0].headers["X-RateLimit-Limit"] == "4"
    assert after[0].headers["X-RateLimit-Remaining"] == "0"


async def test_tiers_leave_the_per_ip_limits_and_anonymous_callers_alone(edge: Edge) -> None:
    store = await edge.settings(global_api=per_minute(3), user_api=per_minute(100))
    bought = Bought(premium=1000)
    purchased = PurchasedCredits(edge.redis, bought, prefix=f"{edge.prefix}:purchased")
    async with edge.serve(store, purchased=purchased) as client:
        statuses = []
        for _ in range(4):
            async with client.get("/api/items", headers={"X-Test-User": "premium"}) as response:
                statuses.append(response.status)
        async with client.get("/api/items", headers={"X-Forwarded-For": "203.0.113.50"}) as response:
            anonymous = response.status

    assert statuses == [200, 200, 200, 429], "global_api is per IP and never multiplied"
    assert anonymous == 429  # the same client address: no proxy is trusted here
    assert bought.asked == ["premium"]


async def test_without_a_tier_that_multiplies_what_users_bought_is_never_read(edge: Edge) -> None:
    tiers = (RateLimitTier(name="everyone", min_purchased=0, multiplier=1),)
    store = await edge.settings(task_creation=per_minute(2))
    await store.put(RateLimitSettings(task_creation=per_minute(2), tiers=tiers), Caller())
    bought = Bought(premium=1000)
    purchased = PurchasedCredits(edge.redis, bought, prefix=f"{edge.prefix}:purchased")
    async with edge.serve(store, purchased=purchased) as client:
        answers = await create_tasks(client, "premium", 3)

    assert [r.status for r in answers] == [201, 201, 429]
    assert bought.asked == []
