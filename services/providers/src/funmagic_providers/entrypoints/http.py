"""Internal HTTP API of providers: the admin registry, the step types' schema and the studio's models
(health and /metrics come from the kit).

Web-scope providers are managed by admins; admin-scope (studio) providers by super_admins only. Bodies
never echo a key back; answers show `api_key_hint`. Refusals (not found, a name taken, an invalid
record) are domain errors; the kit's problem middleware answers them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from funmagic_contracts.api.providers import HealthHistoryQuery, ProviderCreate, ProviderQuery, ProviderUpdate
from funmagic_kit.api import (
    path_uuid,
    read_body,
    read_query,
    request_key,
    require_internal_caller,
    require_role,
)
from funmagic_kit.http import HttpProblem
from funmagic_providers.adapters.apis.capabilities import step_type_catalog, studio_models_of
from funmagic_providers.application.registry import ProviderChanges, ProviderRegistry
from funmagic_providers.domain.providers import SCOPES, Scope

__all__ = ["ProvidersApp"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProvidersApp:
    def __init__(self, registry: ProviderRegistry) -> None:
        self._registry = registry

    def routes(self) -> Sequence[web.RouteDef]:
        routes: list[web.RouteDef] = []
        for scope, prefix in (("web", "/v1/admin/providers"), ("admin", "/v1/admin/admin-providers")):
            routes += [
                web.get(prefix, self._list(scope)),
                web.post(prefix, self._create(scope)),
                web.get(prefix + "/{provider_id}", self._get(scope)),
                web.patch(prefix + "/{provider_id}", self._update(scope)),
                web.delete(prefix + "/{provider_id}", self._delete(scope)),
                web.post(prefix + "/{provider_id}/health-check", self._health_check(scope)),
                web.get(prefix + "/{provider_id}/health-history", self._health_history(scope)),
            ]
        routes.append(web.get("/v1/admin/step-types", self.step_types))
        routes.append(web.get("/v1/internal/providers/{scope}/{name}", self.provider_exists))
        routes.append(web.get("/v1/admin/studio/providers", self.studio_providers))
        routes.append(web.get("/v1/internal/studio/providers/{name}", self.studio_provider))
        return routes

    async def studio_providers(self, request: web.Request) -> web.Response:
        """The studio's prompt bar: every active studio provider with the models its type offers (any admin
        may see names and models; keys and settings stay with super admins)."""
        require_role(request, "admin")
        providers = await self._registry.studio_providers()
        return web.json_response(
            {
                "items": [
                    {"name": name, "type": type_, "models": studio_models_of(type_)}
                    for name, type_ in providers
                ]
            }
        )

    async def studio_provider(self, request: web.Request) -> web.Response:
        """For tasks (posting a studio message): one active studio provider and its models, else 404."""
        require_internal_caller(request)
        found = await self._registry.studio_provider(request.match_info["name"])
        if found is None:
            raise HttpProblem(404, "Not Found", "no such studio provider")
        name, type_ = found
        return web.json_response({"name": name, "type": type_, "models": studio_models_of(type_)})

    async def step_types(self, request: web.Request) -> web.Response:
        """What each step type can run on (provider types, models, options): the tool editor's form."""
        require_role(request, "admin")
        return web.json_response(step_type_catalog())

    async def provider_exists(self, request: web.Request) -> web.Response:
        """For other services (tasks validating a tool's steps): 200 if the provider can run steps."""
        require_internal_caller(request)
        scope = next((scope for scope in SCOPES if scope == request.match_info["scope"]), None)
        if scope is None:
            raise HttpProblem(404, "Not Found", "no such scope")
        if not await self._registry.exists(scope, request.match_info["name"]):
            raise HttpProblem(404, "Not Found", "no such provider")
        return web.json_response({"name": request.match_info["name"], "scope": scope})

    def _list(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            query = read_query(request, ProviderQuery)
            return web.json_response(await self._registry.list(scope, limit=query.limit, cursor=query.cursor))

        return handler

    def _create(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            body = await read_body(request, ProviderCreate)
            # A retried request (same Idempotency-Key and body) creates once; each scope keys its own.
            key = request_key(request, f"{scope}_providers.create", body)
            created = await self._registry.create(scope, key=key, **body.model_dump())
            return web.json_response(created, status=201)

        return handler

    def _get(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            return web.json_response(await self._registry.get(scope, _provider_id(request)))

        return handler

    def _update(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            body = await read_body(request, ProviderUpdate)
            changes = ProviderChanges(**body.model_dump(exclude_unset=True))
            return web.json_response(await self._registry.update(scope, _provider_id(request), changes))

        return handler

    def _delete(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            await self._registry.delete(scope, _provider_id(request))
            return web.Response(status=204)

        return handler

    def _health_check(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            return web.json_response(await self._registry.check_health(scope, _provider_id(request)))

        return handler

    def _health_history(self, scope: Scope) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            _authorize(request, scope)
            query = read_query(request, HealthHistoryQuery)
            page = await self._registry.health_history(
                scope, _provider_id(request), limit=query.limit, cursor=query.cursor
            )
            return web.json_response(page)

        return handler


def _authorize(request: web.Request, scope: Scope) -> None:
    require_role(request, "super_admin" if scope == "admin" else "admin")


def _provider_id(request: web.Request) -> str:
    return path_uuid(request, "provider_id", "provider")
