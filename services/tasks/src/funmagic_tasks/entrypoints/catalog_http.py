"""Internal HTTP API of the catalog: public reads and admin CRUD of tool types, tools and banners.

Public routes need no user (the kit still requires the internal credential or a user token of every
caller); admin routes need the `admin` role. Bodies and queries are the public models of
`funmagic_contracts.api.catalog` (the gateway forwards them as they are), a tool's config excepted; the
domain checks every body in full, and its errors name the field (`config.steps[0].provider.name`) in a 422
problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from funmagic_contracts.api.catalog import (
    AdminBannerQuery,
    AdminToolQuery,
    AdminToolTypeQuery,
    BannerCreate,
    BannerListQuery,
    BannerUpdate,
    ToolCreate,
    ToolDetailQuery,
    ToolListQuery,
    ToolTypeCreate,
    ToolTypeQuery,
    ToolTypeUpdate,
    ToolUpdate,
)
from funmagic_kit.api import path_uuid, read_body, read_query, request_key, require_role
from funmagic_tasks.application.catalog import Catalog

__all__ = ["CatalogApp"]


# A tool's body is the public one with its config as a plain object: the domain parses the config itself,
# and its refusal names the field (`config.steps[0].type`), which a validation error of the typed config
# would not. Through the gateway the typed config has been checked already.
class ToolBody(ToolCreate):
    config: dict[str, Any]  # type: ignore[assignment]


class ToolChanges(ToolUpdate):
    config: dict[str, Any] | None = None  # type: ignore[assignment]


@dataclass(frozen=True)
class CatalogApp:
    catalog: Catalog

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.get("/v1/tool-types", self.tool_types),
            web.get("/v1/tools", self.tools),
            web.get("/v1/tools/{slug}", self.tool),
            web.get("/v1/banners", self.banners),
            web.get("/v1/admin/tool-types", self.admin_tool_types),
            web.post("/v1/admin/tool-types", self.create_tool_type),
            web.get("/v1/admin/tool-types/{type_id}", self.admin_tool_type),
            web.patch("/v1/admin/tool-types/{type_id}", self.update_tool_type),
            web.delete("/v1/admin/tool-types/{type_id}", self.delete_tool_type),
            web.get("/v1/admin/tool-types/{type_id}/active-tools-count", self.active_tools_count),
            web.get("/v1/admin/tools", self.admin_tools),
            web.post("/v1/admin/tools", self.create_tool),
            web.get("/v1/admin/tools/{tool_id}", self.admin_tool),
            web.patch("/v1/admin/tools/{tool_id}", self.update_tool),
            web.delete("/v1/admin/tools/{tool_id}", self.delete_tool),
            web.get("/v1/admin/banners", self.admin_banners),
            web.post("/v1/admin/banners", self.create_banner),
            web.get("/v1/admin/banners/{banner_id}", self.admin_banner),
            web.patch("/v1/admin/banners/{banner_id}", self.update_banner),
            web.delete("/v1/admin/banners/{banner_id}", self.delete_banner),
        ]

    # --- public -----------------------------------------------------------------------------------------

    async def tool_types(self, request: web.Request) -> web.Response:
        query = read_query(request, ToolTypeQuery)
        return web.json_response(await self.catalog.tool_types(**query.model_dump()))

    async def tools(self, request: web.Request) -> web.Response:
        query = read_query(request, ToolListQuery)
        return web.json_response(await self.catalog.tools(**query.model_dump()))

    async def tool(self, request: web.Request) -> web.Response:
        query = read_query(request, ToolDetailQuery)
        return web.json_response(await self.catalog.tool(request.match_info["slug"], locale=query.locale))

    async def banners(self, request: web.Request) -> web.Response:
        query = read_query(request, BannerListQuery)
        return web.json_response(await self.catalog.banners(**query.model_dump()))

    # --- admin: tool types ------------------------------------------------------------------------------

    async def admin_tool_types(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminToolTypeQuery)
        return web.json_response(await self.catalog.admin_tool_types(**query.model_dump()))

    async def create_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await read_body(request, ToolTypeCreate)
        # A retried request (same Idempotency-Key and body) creates once.
        key = request_key(request, "tool_types.create", body)
        created = await self.catalog.create_tool_type(key=key, **body.model_dump())
        return web.json_response(created, status=201)

    async def admin_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.admin_tool_type(_id(request, "type_id", "tool type")))

    async def update_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        type_id = _id(request, "type_id", "tool type")
        body = await read_body(request, ToolTypeUpdate)
        return web.json_response(
            await self.catalog.update_tool_type(type_id, body.model_dump(exclude_unset=True))
        )

    async def delete_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        await self.catalog.delete_tool_type(_id(request, "type_id", "tool type"))
        return web.Response(status=204)

    async def active_tools_count(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.active_tools_count(_id(request, "type_id", "tool type")))

    # --- admin: tools -----------------------------------------------------------------------------------

    async def admin_tools(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminToolQuery)
        return web.json_response(await self.catalog.admin_tools(**query.model_dump()))

    async def create_tool(self, request: web.Request) -> web.Response:
        admin = require_role(request, "admin")
        body = await read_body(request, ToolBody)
        key = request_key(request, "tools.create", body)
        created = await self.catalog.create_tool(admin_id=admin.user_id, key=key, **body.model_dump())
        return web.json_response(created, status=201)

    async def admin_tool(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.admin_tool(_id(request, "tool_id", "tool")))

    async def update_tool(self, request: web.Request) -> web.Response:
        admin = require_role(request, "admin")
        tool_id = _id(request, "tool_id", "tool")
        body = await read_body(request, ToolChanges)
        changes = body.model_dump(exclude_unset=True)
        return web.json_response(await self.catalog.update_tool(tool_id, changes, admin_id=admin.user_id))

    async def delete_tool(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        await self.catalog.delete_tool(_id(request, "tool_id", "tool"))
        return web.Response(status=204)

    # --- admin: banners ---------------------------------------------------------------------------------

    async def admin_banners(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminBannerQuery)
        return web.json_response(await self.catalog.admin_banners(**query.model_dump()))

    async def create_banner(self, request: web.Request) -> web.Response:
        admin = require_role(request, "admin")
        body = await read_body(request, BannerCreate)
        key = request_key(request, "banners.create", body)
        created = await self.catalog.create_banner(admin_id=admin.user_id, key=key, **body.model_dump())
        return web.json_response(created, status=201)

    async def admin_banner(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.admin_banner(_id(request, "banner_id", "banner")))

    async def update_banner(self, request: web.Request) -> web.Response:
        admin = require_role(request, "admin")
        banner_id = _id(request, "banner_id", "banner")
        body = await read_body(request, BannerUpdate)
        changes = body.model_dump(exclude_unset=True)
        return web.json_response(await self.catalog.update_banner(banner_id, changes, admin_id=admin.user_id))

    async def delete_banner(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        await self.catalog.delete_banner(_id(request, "banner_id", "banner"))
        return web.Response(status=204)


def _id(request: web.Request, name: str, what: str) -> str:
    return path_uuid(request, name, what)
