"""The admin app's overview (`/api/admin/stats/*`): the composition over hand-written fakes of its ports
(asked at once, all or nothing), then the routes of the gateway `bootstrap.build` composes, served behind
the kit's problem+json middleware with a stand-in for the token check, in front of a stand-in of the three
services (an aiohttp app that answers as they do and records what it was asked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler

from funmagic_contracts.api.credits import CreditStats
from funmagic_contracts.api.providers import Provider
from funmagic_contracts.api.stats import StatsQuery
from funmagic_contracts.api.tasks import TaskStats
from funmagic_gateway.application.admin_stats import AdminStats
from funmagic_gateway.application.ports import Caller
from funmagic_gateway.bootstrap import Gateway
from funmagic_gateway.config import GatewaySettings
from funmagic_kit.errors import Forbidden, TransientError
from funmagic_kit.http import problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal

ADMIN = Caller(token="an-admins-token")
SINCE, UNTIL = "2026-05-03T10:15:00+00:00", "2026-05-04T10:15:00+00:00"


def task_stats(window: str = "24h", **fields: Any) -> dict[str, Any]:
    return {
        "window": window, "since": SINCE, "until": UNTIL, "bucket_seconds": 900, "created": 3,
        "by_status": {"pending": 0, "running": 1, "completed": 1, "failed": 1, "cancelled": 0},
        "finished": {"completed": 1, "failed": 1}, "success_rate": 0.5, "active_users": 2,
        "series": [{"at": SINCE, "created": 3, "completed": 1, "failed": 1}], **fields,
    }  # fmt: skip


def credit_stats(window: str = "24h") -> dict[str, Any]:
    return {
        "window": window, "since": SINCE, "until": UNTIL, "credits_sold": 100, "purchases": 1,
        "revenue": [{"currency": "USD", "amount_minor": 499, "purchases": 1}], "credits_spent": 20,
        "credits_refunded": 5, "bonus_granted": 50, "credits_adjusted": 0,
    }  # fmt: skip


def provider(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"p-{name}", "scope": "web", "name": name, "display_name": name.title(), "type": "local",
        "base_url": None, "config": {"rateLimit": {"maxConcurrency": 2}}, "is_active": True,
        "is_healthy": True, "health_checked_at": UNTIL, "has_api_key": False, "api_key_hint": None,
        "created_at": SINCE, "updated_at": SINCE, **fields,
    }  # fmt: skip


# --- the composition ---------------------------------------------------------------------------------


@dataclass
class FakeFigures:
    """Tasks, credits and providers as the composition sees them; `failing`: the part that fails."""

    failing: dict[str, Exception] = field(default_factory=dict)
    asked: list[tuple[str, Caller, object]] = field(default_factory=list)
    everyone_asked: asyncio.Barrier = field(default_factory=lambda: asyncio.Barrier(3))

    async def _answer(self, part: str, caller: Caller, query: object) -> None:
        self.asked.append((part, caller, query))
        # Each answers only once all three were asked: the parts are asked for at once.
        await asyncio.wait_for(self.everyone_asked.wait(), 1)
        if part in self.failing:
            raise self.failing[part]

    async def task_stats(self, caller: Caller, query: StatsQuery) -> TaskStats:
        await self._answer("tasks", caller, query)
        return TaskStats.model_validate(task_stats(query.window))

    async def credit_stats(self, caller: Caller, query: StatsQuery) -> CreditStats:
        await self._answer("credits", caller, query)
        return CreditStats.model_validate(credit_stats(query.window))

    async def web_providers(self, caller: Caller) -> Sequence[Provider]:
        await self._answer("providers", caller, None)
        return [Provider.model_validate(provider(n, is_healthy=n != "fal")) for n in ("openai", "fal")]


def admin_stats(figures: FakeFigures) -> AdminStats:
    return AdminStats(tasks=figures, credits=figures, providers=figures)


async def test_the_overview_has_both_services_figures_and_every_providers_health_asked_at_once() -> None:
    figures = FakeFigures()

    overview = await admin_stats(figures).overview(ADMIN, StatsQuery(window="7d"))

    assert sorted(part for part, _, _ in figures.asked) == ["credits", "providers", "tasks"]
    assert all(caller == ADMIN for _, caller, _ in figures.asked), "each service checks the admin itself"
    assert overview.window == "7d"
    assert (overview.since, overview.until) == (overview.tasks.since, overview.tasks.until)
    assert (overview.tasks.created, overview.tasks.success_rate) == (3, 0.5)
    assert (overview.credits.credits_sold, overview.credits.revenue[0].amount_minor) == (100, 499)
    assert [(p.name, p.type, p.is_healthy) for p in overview.providers] == [
        ("fal", "local", False),
        ("openai", "local", True),
    ]
    shown = overview.model_dump(mode="json")["providers"][0]
    health = {"id", "name", "display_name", "type", "is_active", "is_healthy", "health_checked_at"}
    assert set(shown) == health, "health only, not the registry's details"


@pytest.mark.parametrize("failing", ["tasks", "credits", "providers"])
async def test_one_part_failing_fails_the_whole_overview(failing: str) -> None:
    figures = FakeFigures(failing={failing: TransientError(f"{failing} is not reachable")})

    with pytest.raises(TransientError, match=failing):
        await admin_stats(figures).overview(ADMIN, StatsQuery())


async def test_a_refusal_is_the_first_parts_in_order_even_when_a_later_one_failed_too() -> None:
    figures = FakeFigures(
        failing={"tasks": Forbidden("this needs the admin role"), "credits": TransientError("down")}
    )

    with pytest.raises(Forbidden):
        await admin_stats(figures).overview(ADMIN, StatsQuery())


# --- the routes, as `build` composes them --------------------------------------------------------------


@dataclass
class Services:
    """Tasks, credits and providers behind the gateway, as one app: what they were asked, and which fail."""

    asked: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.get("/v1/admin/stats/tasks", self.answer(lambda q: task_stats(q["window"]))),
                web.get("/v1/admin/stats/credits", self.answer(lambda q: credit_stats(q["window"]))),
                web.get("/v1/admin/providers", self.answer(lambda q: {"items": [provider("local")]})),
            ]
        )
        return app

    @staticmethod
    def answer(body: Callable[[dict[str, str]], Any]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            return web.json_response(body(dict(request.query)))

        return handler

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or None
        self.asked.append((request.path, dict(request.query), token))
        if request.path in self.failing:
            return web.json_response({"title": "Internal Server Error", "status": 500}, status=500)
        return await handler(request)


@web.middleware
async def signed_in_as(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stands in for the token check: `X-Test-Role` signs the request in with that role."""
    if role := request.headers.get("X-Test-Role"):
        claims = {"sub": f"{role}-1", "sid": "session", "role": role, "iat": 0, "exp": 0}
        request[PRINCIPAL_KEY] = Principal.from_claims(claims, f"token-of-{role}")
    return await handler(request)


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
async def client(
    services: Services,
    build_gateway: Callable[[GatewaySettings], Gateway],
    gateway_settings: Callable[..., GatewaySettings],
) -> AsyncIterator[TestClient]:
    async with TestServer(services.app()) as upstream:
        base = str(upstream.make_url("")).rstrip("/")
        gateway = build_gateway(gateway_settings(TASKS_URL=base, CREDITS_URL=base, PROVIDERS_URL=base))
        served = web.Application(middlewares=[problem_middleware(Metrics("gateway-tests")), signed_in_as])
        served.add_routes(gateway.api.routes())
        async with TestClient(TestServer(served)) as test_client:
            yield test_client


async def call(client: TestClient, path: str, role: str | None = None) -> tuple[int, Any, dict[str, str]]:
    headers = {"X-Test-Role": role} if role else {}
    async with client.get(path, headers=headers) as response:
        return response.status, await response.json(content_type=None), dict(response.headers)


STATS_ROUTES = ("/api/admin/stats/overview", "/api/admin/stats/tasks", "/api/admin/stats/credits")


@pytest.mark.parametrize("path", STATS_ROUTES)
async def test_only_admins_and_super_admins_may_read_the_figures(
    client: TestClient, services: Services, path: str
) -> None:
    statuses = {role: (await call(client, path, role))[0] for role in (None, "user", "admin", "super_admin")}

    assert statuses == {None: 401, "user": 403, "admin": 200, "super_admin": 200}
    assert {token for _, _, token in services.asked} == {"token-of-admin", "token-of-super_admin"}


async def test_the_overview_composes_the_three_services_for_the_window_asked(
    client: TestClient, services: Services
) -> None:
    status, overview, _ = await call(client, "/api/admin/stats/overview?window=1h", "admin")

    assert status == 200, overview
    assert (overview["window"], overview["since"], overview["until"]) == (
        "1h",
        "2026-05-03T10:15:00Z",
        "2026-05-04T10:15:00Z",
    )
    assert overview["tasks"] == TaskStats.model_validate(task_stats("1h")).model_dump(mode="json")
    assert overview["credits"] == CreditStats.model_validate(credit_stats("1h")).model_dump(mode="json")
    assert overview["providers"] == [
        {"id": "p-local", "name": "local", "display_name": "Local", "type": "local", "is_active": True,
         "is_healthy": True, "health_checked_at": "2026-05-04T10:15:00Z"}
    ]  # fmt: skip
    assert sorted((path, tuple(sorted(query.items()))) for path, query, _ in services.asked) == [
        ("/v1/admin/providers", (("limit", "200"),)),
        ("/v1/admin/stats/credits", (("window", "1h"),)),
        ("/v1/admin/stats/tasks", (("window", "1h"),)),
    ]


async def test_the_window_defaults_to_a_day_and_the_figures_forward_as_the_services_answer(
    client: TestClient, services: Services
) -> None:
    status, tasks, _ = await call(client, "/api/admin/stats/tasks", "admin")
    credit_status, credits, _ = await call(client, "/api/admin/stats/credits?window=30d", "admin")

    assert (status, credit_status) == (200, 200)
    assert tasks == TaskStats.model_validate(task_stats("24h")).model_dump(mode="json")
    assert credits["window"] == "30d"
    assert credits["revenue"] == [{"currency": "USD", "amount_minor": 499, "purchases": 1}]
    assert [(path, query) for path, query, _ in services.asked] == [
        ("/v1/admin/stats/tasks", {"window": "24h"}),
        ("/v1/admin/stats/credits", {"window": "30d"}),
    ]


@pytest.mark.parametrize("path", STATS_ROUTES)
async def test_an_unknown_window_is_refused_at_the_edge(
    client: TestClient, services: Services, path: str
) -> None:
    status, problem, _ = await call(client, f"{path}?window=2h", "admin")

    assert status == 422, problem
    assert problem["errors"][0]["loc"] == ["window"]
    assert services.asked == []


@pytest.mark.parametrize(
    "failing", ["/v1/admin/stats/tasks", "/v1/admin/stats/credits", "/v1/admin/providers"]
)
async def test_a_failing_service_makes_the_overview_a_503_never_a_500(
    client: TestClient, services: Services, failing: str
) -> None:
    services.failing.add(failing)

    status, problem, headers = await call(client, "/api/admin/stats/overview", "admin")

    assert status == 503, problem
    assert headers["Retry-After"]
    assert "tasks" not in problem
    assert "credits" not in problem


async def test_an_unreachable_service_makes_the_overview_a_503(
    build_gateway: Callable[[GatewaySettings], Gateway],
    gateway_settings: Callable[..., GatewaySettings],
) -> None:
    gateway = build_gateway(gateway_settings())  # every service at an address nothing listens on
    served = web.Application(middlewares=[problem_middleware(Metrics("gateway-tests")), signed_in_as])
    served.add_routes(gateway.api.routes())
    async with TestClient(TestServer(served)) as client:
        status, problem, _ = await call(client, "/api/admin/stats/overview", "admin")

    assert status == 503, problem
