"""The gateway's composed routes as `bootstrap.build` wires them, over real HTTP: the services are one fake
aiohttp app (each route answering as the real service does and recording what it was asked), the gateway's
routes are served behind the kit's problem+json middleware with a stand-in for the token check, and the
rate-limit settings live in the real local Redis, in a database of these tests' own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler
from redis.asyncio import Redis

from funmagic_gateway.bootstrap import Gateway, build
from funmagic_gateway.config import GatewaySettings
from funmagic_gateway.domain.rate_limits import RateLimitSettings
from funmagic_kit.auth import JwksSource, TokenVerifier
from funmagic_kit.http import problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal, Role

INTERNAL_TOKEN = "internal-token-for-composition-tests"
# The gateway's keys are fixed ("ratelimit:settings"…): a database of their own keeps a developer's apart.
COMPOSITION_REDIS_DB = 13
SETTINGS_KEY = "ratelimit:settings"
OWNER, ADMIN = str(uuid.uuid4()), str(uuid.uuid4())
WHEN = "2026-03-01T12:00:00+00:00"


def a_task(task_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "user_id": OWNER,
        "tool_id": "tool-1",
        "tool_slug": "figme",
        "status": "completed",
        "step_ids": ["image-gen"],
        "completed_step_ids": ["image-gen"],
        "price": 20,
        "charged_credits": 20,
        "created_at": WHEN,
        **fields,
    }


@dataclass
class Services:
    """The services behind the gateway, as one app: what they answer and what they were asked."""

    asked: list[tuple[str, str, dict[str, str], str | None, Any]] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    settings: dict[str, Any] | None = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.get("/v1/tasks", self.my_tasks),
                web.get("/v1/tasks/{task_id}", self.task),
                web.delete("/v1/tasks/{task_id}", self.delete_task),
                web.get("/v1/admin/tasks", self.search_tasks),
                web.post("/v1/internal/assets/urls", self.asset_urls),
                web.get("/v1/users/{user_id}", self.user),
                web.get("/v1/admin/users/{user_id}/credits", self.user_credits),
                web.get("/v1/internal/settings/rate-limit", self.get_settings),
                web.put("/v1/internal/settings/rate-limit", self.put_settings),
            ]
        )
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or None
        self.asked.append((request.method, request.path, dict(request.query), token, body))
        assert request.headers["X-Internal-Token"] == INTERNAL_TOKEN
        if any(request.path.startswith(prefix) for prefix in self.failing):
            return web.json_response({"title": "Internal Server Error", "status": 500}, status=500)
        return await handler(request)

    def paths(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, *_ in self.asked]

    async def my_tasks(self, request: web.Request) -> web.Response:
        family = {"effective_status": "completed", "credits_total": 50, "tool_type": None}
        items = [
            a_task("t-1", thumbnail_asset_id="a-1", children=[a_task("c-1", parent_task_id="t-1")], **family),
            a_task("t-2", thumbnail_asset_id="a-deleted", children=[], **family),
        ]
        return web.json_response({"items": items, "next_cursor": None})

    async def task(self, request: web.Request) -> web.Response:
        if request.match_info["task_id"] != "t-1":
            return web.json_response(
                {"title": "Not Found", "status": 404, "code": "task_not_found"}, status=404
            )
        steps = [{"step_id": "image-gen", "attempt": 1, "assets": [{"asset_id": "a-1", "role": "image"}]}]
        output = {"assets": [{"asset_id": "a-1", "role": "image"}], "metadata": {}}
        payload = {"input": {}, "steps": steps, "output": output, "error": None}
        return web.json_response({**a_task("t-1", payload=payload), "children": []})

    async def delete_task(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def search_tasks(self, request: web.Request) -> web.Response:
        return web.json_response({"items": [a_task("t-1"), a_task("c-1")], "next_cursor": None})

    async def asset_urls(self, request: web.Request) -> web.Response:
        body = await request.json()
        owned = {"a-1"} if body["user_id"] == OWNER else set()
        urls = {
            asset_id: {"url": f"https://cdn.test/{asset_id}", "kind": "image", "mime_type": "image/png",
                       "filename": "x.png"}
            for asset_id in body["asset_ids"] if asset_id in owned
        }  # fmt: skip
        return web.json_response({"urls": urls})

    async def user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        if user_id != OWNER:
            return web.json_response(
                {"title": "Not Found", "status": 404, "code": "user_not_found"}, status=404
            )
        return web.json_response(
            {"id": OWNER, "email": "ada@example.com", "name": "Ada", "role": "user", "email_verified": True,
             "created_at": WHEN, "updated_at": WHEN, "session_count": 3}
        )  # fmt: skip

    async def user_credits(self, request: web.Request) -> web.Response:
        transactions = [
            {"id": "9", "type": "spend", "amount": -20, "balance_after": 30, "description": "Figme",
             "created_at": WHEN}
        ]  # fmt: skip
        return web.json_response(
            {"user_id": request.match_info["user_id"], "balance": 30, "reserved_balance": 0,
             "lifetime_earned": 50, "lifetime_spent": 20,
             "transactions": {"items": transactions, "next_cursor": None}}
        )  # fmt: skip

    async def get_settings(self, request: web.Request) -> web.Response:
        if self.settings is None:
            return web.json_response(
                {"title": "Not Found", "status": 404, "code": "setting_not_set"}, status=404
            )
        return web.json_response(self.settings)

    async def put_settings(self, request: web.Request) -> web.Response:
        self.settings = await request.json()
        return web.json_response(self.settings)


@web.middleware
async def signed_in_as(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Stands in for the token check: `X-Test-User` is the verified user, `X-Test-Role` their role."""
    if user_id := request.headers.get("X-Test-User"):
        role = request.headers.get("X-Test-Role", "user")
        claims = {"sub": user_id, "sid": "session", "role": role, "iat": 0, "exp": 0}
        request[PRINCIPAL_KEY] = Principal.from_claims(claims, f"token-of-{user_id}")
    return await handler(request)


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
def own_redis_url(redis_url: str) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{COMPOSITION_REDIS_DB}"))


@pytest.fixture
async def own_redis(own_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis_url)
    await client.delete(SETTINGS_KEY)
    yield client
    await client.delete(SETTINGS_KEY)
    await client.aclose()


@pytest.fixture
async def gateway(services: Services, own_redis: Redis, own_redis_url: str) -> AsyncIterator[Gateway]:
    redis, redis_url = own_redis, own_redis_url
    async with TestServer(services.app()) as upstream, aiohttp.ClientSession() as http:
        base = str(upstream.make_url("")).rstrip("/")
        settings = GatewaySettings.model_validate(
            {
                "HTTP_PORT": "8000",
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "REDIS_URL": redis_url,
                "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
                "AUTH_JWKS_URL": f"{base}/.well-known/jwks.json",
                **{f"{name}_URL": base for name in ("IDENTITY", "TASKS", "CREDITS", "STORAGE", "PROVIDERS")},
            }
        )
        verifier = TokenVerifier(
            JwksSource.from_url(f"{base}/jwks"), redis, issuer="funmagic", audience="api"
        )
        yield build(settings, redis=redis, stream_reads=redis, http=http, verifier=verifier)


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[TestClient]:
    """The gateway's routes as the runtime serves them (behind the kit's problem+json middleware)."""
    served = web.Application(middlewares=[problem_middleware(Metrics("gateway-tests")), signed_in_as])
    served.add_routes(gateway.parts.routes)
    async with TestClient(TestServer(served)) as test_client:
        yield test_client


def as_user(user_id: str = OWNER, role: Role = "user") -> dict[str, str]:
    return {"X-Test-User": user_id, "X-Test-Role": role}


async def call(
    client: TestClient, method: str, path: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with client.request(method, path, **kwargs) as response:
        text = await response.text()
        return response.status, (await response.json(content_type=None)) if text else None, response


# --- tasks with their files' URLs --------------------------------------------------------------------


async def test_my_creations_carry_thumbnail_urls_from_one_storage_call(
    client: TestClient, services: Services
) -> None:
    status, page, _ = await call(client, "GET", "/api/tasks?category=image&limit=5", headers=as_user())

    assert status == 200, page
    assert [(i["id"], i["thumbnail_url"]) for i in page["items"]] == [
        ("t-1", "https://cdn.test/a-1"),
        ("t-2", None),
    ]
    assert page["items"][0]["children"][0]["id"] == "c-1"
    assert page["items"][0]["credits_total"] == 50
    (tasks_asked, storage_asked) = services.asked
    assert tasks_asked[:4] == ("GET", "/v1/tasks", {"category": "image", "limit": "5"}, f"token-of-{OWNER}")
    assert storage_asked[1] == "/v1/internal/assets/urls"
    assert storage_asked[3] is None, "storage is asked with the gateway's credential only"
    assert storage_asked[4] == {"user_id": OWNER, "asset_ids": ["a-1", "a-deleted"]}


async def test_a_task_and_the_admins_view_of_it_carry_the_owners_output_urls(
    client: TestClient, services: Services
) -> None:
    for path, caller in (("/api/tasks/t-1", as_user()), ("/api/admin/tasks/t-1", as_user(ADMIN, "admin"))):
        status, task, _ = await call(client, "GET", path, headers=caller)

        assert status == 200, task
        assert task["payload"]["steps"][0]["assets"][0]["url"] == "https://cdn.test/a-1"
        assert task["payload"]["output"]["assets"][0]["url"] == "https://cdn.test/a-1"
        assert task["children"] == []
    storage_bodies = [body for _, path, _, _, body in services.asked if path == "/v1/internal/assets/urls"]
    assert storage_bodies == [{"user_id": OWNER, "asset_ids": ["a-1"]}] * 2, "the owner's files both times"


async def test_an_unknown_task_is_tasks_404_and_storage_is_not_asked(
    client: TestClient, services: Services
) -> None:
    status, problem, _ = await call(client, "GET", "/api/tasks/t-404", headers=as_user())

    assert (status, problem["code"]) == (404, "task_not_found")
    assert services.paths() == [("GET", "/v1/tasks/t-404")]


async def test_storage_failing_is_a_503_not_a_page_without_pictures(
    client: TestClient, services: Services
) -> None:
    services.failing.add("/v1/internal/assets")

    status, problem, response = await call(client, "GET", "/api/tasks", headers=as_user())

    assert status == 503, problem
    assert response.headers["Retry-After"]


async def test_deleting_a_task_is_forwarded_for_the_owner_and_for_admins(
    client: TestClient, services: Services
) -> None:
    status, _, _ = await call(client, "DELETE", "/api/tasks/t-1", headers=as_user())
    admin_status, _, _ = await call(client, "DELETE", "/api/admin/tasks/t-1", headers=as_user(ADMIN, "admin"))
    user_status, _, _ = await call(client, "DELETE", "/api/admin/tasks/t-1", headers=as_user())

    assert (status, admin_status, user_status) == (204, 204, 403)
    assert [(m, p, t) for m, p, _, t, _ in services.asked] == [
        ("DELETE", "/v1/tasks/t-1", f"token-of-{OWNER}"),
        ("DELETE", "/v1/tasks/t-1", f"token-of-{ADMIN}"),
    ]


# --- an admin's view of a user -----------------------------------------------------------------------


async def test_the_user_overview_combines_identity_credits_and_tasks(
    client: TestClient, services: Services
) -> None:
    status, overview, _ = await call(
        client, "GET", f"/api/admin/users/{OWNER}/overview", headers=as_user(ADMIN, "admin")
    )

    assert status == 200, overview
    assert (overview["user"]["email"], overview["user"]["session_count"]) == ("ada@example.com", 3)
    assert overview["credits"]["balance"] == 30
    assert [t["id"] for t in overview["transactions"]] == ["9"]
    assert [t["id"] for t in overview["tasks"]] == ["t-1", "c-1"]
    asked = {(path, tuple(sorted(query.items())), token) for _, path, query, token, _ in services.asked}
    assert asked == {
        (f"/v1/users/{OWNER}", (), f"token-of-{ADMIN}"),
        (f"/v1/admin/users/{OWNER}/credits", (("limit", "10"),), f"token-of-{ADMIN}"),
        (
            "/v1/admin/tasks",
            (("include_deleted", "false"), ("limit", "10"), ("user_id", OWNER)),
            f"token-of-{ADMIN}",
        ),
    }


@pytest.mark.parametrize("failing", ["/v1/users", "/v1/admin/users", "/v1/admin/tasks"])
async def test_one_service_failing_makes_the_overview_a_503(
    client: TestClient, services: Services, failing: str
) -> None:
    services.failing.add(failing)

    status, problem, _ = await call(
        client, "GET", f"/api/admin/users/{OWNER}/overview", headers=as_user(ADMIN, "admin")
    )

    assert status == 503, problem
    assert "user" not in problem


async def test_an_unknown_user_has_no_overview_and_users_may_not_ask(client: TestClient) -> None:
    status, problem, _ = await call(
        client, "GET", f"/api/admin/users/{uuid.uuid4()}/overview", headers=as_user(ADMIN, "admin")
    )
    assert (status, problem["code"]) == (404, "user_not_found")
    status, _, _ = await call(client, "GET", f"/api/admin/users/{OWNER}/overview", headers=as_user())
    assert status == 403


# --- the rate-limit settings, kept by identity ---------------------------------------------------------


async def test_a_change_of_the_limits_is_kept_by_identity_and_read_back_after_redis_lost_it(
    client: TestClient, services: Services, own_redis: Redis
) -> None:
    admin = as_user(ADMIN, "admin")
    tight = RateLimitSettings.model_validate(
        {"task_creation": {"limit": 3, "window_seconds": 60},
         "tiers": [{"name": "free", "min_purchased": 0, "multiplier": 1},
                   {"name": "gold", "min_purchased": 5, "multiplier": 7}]}
    )  # fmt: skip

    status, answer, _ = await call(
        client, "PUT", "/api/admin/settings/rate-limit", json=tight.model_dump(mode="json"), headers=admin
    )

    assert status == 200, answer
    (put,) = [entry for entry in services.asked if entry[0] == "PUT"]
    assert put[1:4] == ("/v1/internal/settings/rate-limit", {}, f"token-of-{ADMIN}")
    assert RateLimitSettings.model_validate(services.settings) == tight
    assert RateLimitSettings.model_validate_json(await own_redis.get(SETTINGS_KEY)) == tight
    await own_redis.delete(SETTINGS_KEY)  # Redis restarted empty
    status, read, _ = await call(client, "GET", "/api/admin/settings/rate-limit", headers=admin)
    assert status == 200
    assert RateLimitSettings.model_validate(read) == tight


async def test_a_change_identity_cannot_keep_is_a_503_and_changes_nothing(
    client: TestClient, services: Services, own_redis: Redis
) -> None:
    services.failing.add("/v1/internal/settings")
    await own_redis.set(SETTINGS_KEY, RateLimitSettings().model_dump_json())

    status, _, _ = await call(
        client, "PUT", "/api/admin/settings/rate-limit", json={"upload": {"limit": 1, "window_seconds": 1}},
        headers=as_user(ADMIN, "admin"),
    )  # fmt: skip

    assert status == 503
    assert RateLimitSettings.model_validate_json(await own_redis.get(SETTINGS_KEY)) == RateLimitSettings()


async def test_duplicate_tier_names_are_refused_at_the_edge(client: TestClient, services: Services) -> None:
    tiers = [
        {"name": "a", "min_purchased": 0, "multiplier": 1},
        {"name": "a", "min_purchased": 9, "multiplier": 2},
    ]
    status, problem, _ = await call(
        client,
        "PUT",
        "/api/admin/settings/rate-limit",
        json={"tiers": tiers},
        headers=as_user(ADMIN, "admin"),
    )

    assert status == 422, problem
    assert services.asked == [], "identity never sees an invalid document"
