"""The hand-written auth routes over a stand-in identity: cookie mode, token mode and signing out.

The cookies' lifetimes are counted from the gateway's clock (a `ManualClock` here) to identity's expiry
times, so they are exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.auth import CookiePolicy
from funmagic_gateway.entrypoints.auth_routes import AuthRoutes
from funmagic_kit.clock import ManualClock
from funmagic_kit.http import problem_middleware
from funmagic_kit.metrics import Metrics

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SIGNED_IN = {
    "user": {
        "id": "user-1",
        "email": "ada@example.com",
        "name": "Ada",
        "role": "user",
        "email_verified": True,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    },
    "session": {
        "id": "session-1",
        "created_at": NOW.isoformat(),
        "last_refreshed_at": NOW.isoformat(),
        "expires_at": (NOW + timedelta(days=30)).isoformat(),
        "current": True,
    },
    "access_token": "access-token",
    "access_token_expires_at": (NOW + timedelta(minutes=5)).isoformat(),
    "refresh_token": "refresh-token",
    "refresh_token_expires_at": (NOW + timedelta(days=30)).isoformat(),
    "created": False,
    "redirect_to": None,
}


async def identity(request: web.Request) -> web.Response:
    """Stands in for identity: signs in anyone, signs out any session."""
    if request.path == "/v1/sessions":
        return web.json_response(SIGNED_IN, status=201)
    if request.path == "/v1/sessions/sign-out":
        return web.Response(status=204)
    return web.json_response({"title": "Not Found", "status": 404}, status=404)


@pytest.fixture
async def gateway() -> AsyncIterator[aiohttp.ClientSession]:
    identity_app = web.Application()
    identity_app.router.add_route("*", "/{tail:.*}", identity)
    async with TestServer(identity_app) as server, aiohttp.ClientSession() as http:
        client = ServiceClient("identity", str(server.make_url("")), "internal-token-for-unit-tests", http)
        cookies = CookiePolicy(secure=True, domain=None, samesite="Lax")
        routes = AuthRoutes(client, cookies, ManualClock(NOW), app_url="https://app.example", storage=client)
        app = web.Application(middlewares=[problem_middleware(Metrics("gateway-test"))])
        app.add_routes([op.route() for op in routes.operations()])
        async with TestServer(app) as public, aiohttp.ClientSession(str(public.make_url(""))) as session:
            yield session


def set_cookies(response: aiohttp.ClientResponse) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", ()):
        jar.load(header)
    return jar


async def test_cookie_mode_keeps_the_tokens_out_of_the_body_and_times_the_cookies_by_the_clock(
    gateway: aiohttp.ClientSession,
) -> None:
    credentials = {"email": "ada@example.com", "password": "a long passphrase"}
    async with gateway.post("/api/auth/sign-in/email", json=credentials) as response:
        assert response.status == 201
        body = await response.json()
        cookies = set_cookies(response)

    assert body["access_token"] is None
    assert body["refresh_token"] is None
    assert body["refresh_token_expires_at"] is None
    assert "created" not in body
    assert "redirect_to" not in body
    assert cookies["fm_access"].value == "access-token"
    assert cookies["fm_access"]["max-age"] == str(5 * 60)
    assert cookies["fm_refresh"]["max-age"] == str(30 * 24 * 3600)
    assert cookies["fm_refresh"]["path"] == "/api/auth"


async def test_token_mode_answers_the_tokens_and_sets_no_cookie(gateway: aiohttp.ClientSession) -> None:
    credentials = {"email": "ada@example.com", "password": "a long passphrase", "mode": "token"}
    async with gateway.post("/api/auth/sign-in/email", json=credentials) as response:
        assert response.status == 201
        body = await response.json()
        assert not response.headers.getall("Set-Cookie", ())

    assert (body["access_token"], body["refresh_token"]) == ("access-token", "refresh-token")


async def test_signing_out_answers_no_content_and_clears_the_session_cookies(
    gateway: aiohttp.ClientSession,
) -> None:
    async with gateway.post("/api/auth/sign-out", json={"refresh_token": "refresh-token"}) as response:
        assert response.status == 204
        cookies = set_cookies(response)

    assert {name: cookies[name]["max-age"] for name in ("fm_access", "fm_refresh", "fm_csrf")} == {
        "fm_access": "0",
        "fm_refresh": "0",
        "fm_csrf": "0",
    }
