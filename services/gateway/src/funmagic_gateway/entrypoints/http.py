"""Public HTTP routes of the gateway, its OpenAPI document, and its view of the whole platform's health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import aiohttp
from aiohttp import web

from funmagic_gateway.adapters.rate_limiter import RateLimitSettingsStore
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.domain.rate_limits import RateLimitSettings
from funmagic_gateway.entrypoints.forwarding import caller_of
from funmagic_kit.api import Operation, build_openapi, docs_page, json_body, read_body
from funmagic_kit.health import HealthCheck

__all__ = ["PublicApi", "health_checks", "rate_limit_operations"]

API_TITLE = "FunMagic API"
API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "The public API of FunMagic. Browsers authenticate with HttpOnly cookies and send the `fm_csrf` "
    "cookie's value in `X-CSRF-Token` on state changes; API clients use `Authorization: Bearer`. "
    "Errors are `application/problem+json` (RFC 9457). Types are strict: a field declared `integer` takes "
    'an integer written without a fraction (`5`, not `5.0`, `true` or `"5"`; 422 otherwise). '
    "Limits are announced in `X-RateLimit-*` headers. "
    "Each operation says who may call it in `x-access`: `public`, `user` (signed in), `admin`, "
    "`super_admin` (401 without a valid token, 403 without the role). `x-owner` says whose object its "
    "path names: `caller` (the user who created it), `caller_or_admin` (that user, or any admin), "
    "`admin` (the admin who created it; a super_admin may read it); anyone else gets 404, as for an "
    "object that does not exist."
)


def rate_limit_operations(store: RateLimitSettingsStore) -> list[Operation]:
    async def get_rate_limits(request: web.Request) -> web.Response:
        return json_body(await store.get())

    async def put_rate_limits(request: web.Request) -> web.Response:
        settings = await read_body(request, RateLimitSettings)
        await store.put(settings, caller_of(request))
        return json_body(settings)

    return [
        Operation(
            "GET",
            "/api/admin/settings/rate-limit",
            get_rate_limits,
            "API rate limits and tiers",
            "admin: settings",
            access="admin",
            response=RateLimitSettings,
            errors=(503,),
        ),
        Operation(
            "PUT",
            "/api/admin/settings/rate-limit",
            put_rate_limits,
            "Change API rate limits and tiers (stored durably; every gateway replica applies them within "
            "a second)",
            "admin: settings",
            access="admin",
            body=RateLimitSettings,
            response=RateLimitSettings,
            errors=(503,),
            description="The whole set: a category left out returns to its default, and so do the tiers. "
            "Business rule: tier names and thresholds must be unique (422).",
        ),
    ]


class PublicApi:
    def __init__(self, operations: Sequence[Operation], identity: ServiceClient) -> None:
        self._operations = list(operations)
        self._identity = identity
        self._document = build_openapi(API_TITLE, API_VERSION, self._operations, description=API_DESCRIPTION)

    @property
    def document(self) -> dict:
        return self._document

    def routes(self) -> list[web.RouteDef]:
        return [
            *(op.route() for op in self._operations),
            web.get("/openapi.json", self.openapi),
            web.get("/docs", self.docs),
            web.get("/.well-known/jwks.json", self.jwks),
        ]

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self._document)

    async def docs(self, request: web.Request) -> web.Response:
        return web.Response(text=docs_page(API_TITLE, "/openapi.json"), content_type="text/html")

    async def jwks(self, request: web.Request) -> web.Response:
        reply = await self._identity.call("GET", "/.well-known/jwks.json")
        reply.raise_for_problem()
        return web.json_response(reply.body, headers={"Cache-Control": "public, max-age=60"})


def health_checks(service_urls: Mapping[str, str]) -> tuple[HealthCheck, ...]:
    """One check per internal service (its own `/health/all`), and `db`: every service's database.

    The gateway owns no database; its `/health/db` answers for the platform's databases as a whole.
    """
    urls = dict(service_urls)
    checks = [HealthCheck(name, _service_is_healthy(url), timeout_seconds=3.0) for name, url in urls.items()]
    checks.append(HealthCheck("db", _databases_are_healthy(urls), timeout_seconds=3.0))
    return tuple(checks)


def _databases_are_healthy(urls: dict[str, str]) -> Callable[[], Awaitable[dict[str, object]]]:
    async def check() -> dict[str, object]:
        async with aiohttp.ClientSession() as session:
            results = {}
            for name, base_url in urls.items():
                async with session.get(f"{base_url.rstrip('/')}/health/db") as response:
                    results[name] = response.status == 200
        if not all(results.values()):
            raise RuntimeError(f"databases failing: {[n for n, ok in results.items() if not ok]}")
        return results

    return check


def _service_is_healthy(base_url: str) -> Callable[[], Awaitable[dict[str, object]]]:
    async def check() -> dict[str, object]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{base_url.rstrip('/')}/health/all") as response,
        ):
            body = await response.json()
            if response.status != 200:
                failing = [n for n, c in body.get("checks", {}).items() if not c.get("ok")]
                raise RuntimeError(f"{body.get('service')} reports failing checks: {failing}")
            return {name: check["ok"] for name, check in body["checks"].items()}

    return check
