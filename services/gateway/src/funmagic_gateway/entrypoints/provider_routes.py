"""`/api/admin/providers/*` (web scope, admins) and `/api/admin/admin-providers/*` (studio scope,
super_admins): the provider registry. Keys are write-only: answers carry `api_key_hint` only."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import relay, safe_id
from funmagic_gateway.entrypoints.schemas import Reply, Request
from funmagic_kit.api import Access, Operation, read_body, read_query

__all__ = ["ProviderRoutes"]

Handler = Any


class ProviderCreate(Request):
    name: str = Field(min_length=1, max_length=63, examples=["openai"])
    type: Literal["openai", "fal", "tripo", "local"]
    display_name: str | None = Field(None, max_length=120)
    api_key: str | None = Field(None, min_length=1, max_length=1024, description="Write-only.")
    base_url: str | None = Field(None, max_length=500, examples=["https://api.openai.com/v1"])
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="`rateLimit` {maxConcurrency, maxPerMinute, maxPerDay, retryOn429, maxRetries, "
        "baseBackoffMs}, all optional; no rateLimit = no limits.",
    )
    is_active: bool = True


class ProviderUpdate(Request):
    display_name: str | None = Field(None, max_length=120)
    api_key: str | None = Field(None, max_length=1024, description="Write-only; replaces the stored key.")
    base_url: str | None = Field(None, max_length=500)
    config: dict[str, Any] | None = None
    is_active: bool | None = None


class Provider(Reply):
    id: str
    scope: Literal["web", "admin"]
    name: str
    display_name: str | None = None
    type: str
    base_url: str | None = None
    config: dict[str, Any]
    is_active: bool
    is_healthy: bool | None = None
    health_checked_at: datetime | None = None
    has_api_key: bool
    api_key_hint: str | None = Field(None, description="'••••' and the key's last four characters.")
    created_at: datetime
    updated_at: datetime


class ProviderPage(Reply):
    items: list[Provider]
    next_cursor: str | None = None


class ProviderQuery(Request):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=63)


class ProviderRoutes:
    def __init__(self, providers: ServiceClient) -> None:
        self._providers = providers

    def operations(self) -> list[Operation]:
        operations: list[Operation] = []
        families: tuple[tuple[str, str, Access, str], ...] = (
            ("/api/admin/providers", "/v1/admin/providers", "admin", "AI providers for user tools"),
            (
                "/api/admin/admin-providers",
                "/v1/admin/admin-providers",
                "super_admin",
                "AI providers for the studio",
            ),
        )
        for public, internal, access, what in families:
            tag = f"admin: {public.rsplit('/', 1)[-1]}"
            item = public + "/{provider_id}"
            noun = "studio_provider" if access == "super_admin" else "provider"
            operations += [
                Operation("GET", public, self._list(internal), f"List {what}", tag, access=access,
                          query=ProviderQuery, response=ProviderPage, name=f"list_{noun}s"),
                Operation("POST", public, self._create(internal), f"Add one of the {what}", tag,
                          access=access, body=ProviderCreate, response=Provider, status=201,
                          errors=(409, 422), name=f"create_{noun}"),
                Operation("GET", item, self._item("GET", internal), f"One of the {what}", tag, access=access,
                          response=Provider, errors=(404,), name=f"get_{noun}"),
                Operation("PATCH", item, self._update(internal), f"Change one of the {what}", tag,
                          access=access, body=ProviderUpdate, response=Provider, errors=(404, 422),
                          name=f"update_{noun}"),
                Operation("DELETE", item, self._item("DELETE", internal), f"Remove one of the {what}", tag,
                          access=access, status=204, errors=(404,), name=f"delete_{noun}"),
                Operation("POST", item + "/health-check", self._item("POST", internal, "/health-check"),
                          "Check the provider now", tag, access=access, response=Provider, errors=(404,),
                          name=f"check_{noun}_health"),
            ]  # fmt: skip
        return operations

    def _list(self, internal: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            query = read_query(request, ProviderQuery)
            params = {k: str(v) for k, v in query.model_dump(exclude_none=True).items()}
            return await relay(self._providers, request, "GET", internal, ProviderPage, params=params)

        return handler

    def _create(self, internal: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            body = await read_body(request, ProviderCreate)
            return await relay(
                self._providers, request, "POST", internal, Provider, payload=body.model_dump()
            )

        return handler

    def _update(self, internal: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            body = await read_body(request, ProviderUpdate)
            path = f"{internal}/{safe_id(request.match_info['provider_id'])}"
            payload = body.model_dump(exclude_unset=True)
            return await relay(self._providers, request, "PATCH", path, Provider, payload=payload)

        return handler

    def _item(self, method: str, internal: str, suffix: str = "") -> Handler:
        model = None if method == "DELETE" else Provider

        async def handler(request: web.Request) -> web.Response:
            path = f"{internal}/{safe_id(request.match_info['provider_id'])}{suffix}"
            return await relay(self._providers, request, method, path, model)

        return handler
