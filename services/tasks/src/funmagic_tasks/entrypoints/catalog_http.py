"""Internal HTTP API of the catalog: public reads and admin CRUD of tool types, tools and banners.

Public routes need no user (the kit still requires the internal credential or a user token of every
caller); admin routes need the `admin` role. Bodies are typed here and checked in full by the domain, whose
errors name the field (`config.steps[0].provider.name`) in a 422 problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from funmagic_kit.api import path_uuid, read_body, read_query, require_role
from funmagic_tasks.application.catalog import Catalog

__all__ = ["CatalogApp"]

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"
SEARCH = r"^[^\x00-\x1f\x7f]*$"  # a search is a literal text: no control characters


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)


class ToolTypeBody(_Body):
    name: str
    display_name: str
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    sort_order: int = 0
    is_active: bool = True
    translations: dict[str, Any] = Field(default_factory=dict)


class ToolTypeChanges(_Body):
    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    sort_order: int | None = None
    is_active: bool | None = None
    translations: dict[str, Any] | None = None


class ToolBody(_Body):
    slug: str
    title: str
    description: str | None = None
    thumbnail_asset_id: str | None = None
    tool_type_id: str
    config: dict[str, Any]
    is_active: bool = True
    is_featured: bool = False
    translations: dict[str, Any] = Field(default_factory=dict)


class ToolChanges(_Body):
    slug: str | None = None
    title: str | None = None
    description: str | None = None
    thumbnail_asset_id: str | None = None
    tool_type_id: str | None = None
    config: dict[str, Any] | None = None
    is_active: bool | None = None
    is_featured: bool | None = None
    translations: dict[str, Any] | None = None


class BannerBody(_Body):
    title: str
    description: str | None = None
    thumbnail_asset_id: str | None = None
    link: str | None = None
    link_text: str | None = None
    link_target: Literal["_self", "_blank"] = "_self"
    type: Literal["main", "side"] = "main"
    position: int = 0
    badge: str | None = None
    badge_color: str | None = None
    is_active: bool = True
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    translations: dict[str, Any] = Field(default_factory=dict)


class BannerChanges(_Body):
    title: str | None = None
    description: str | None = None
    thumbnail_asset_id: str | None = None
    link: str | None = None
    link_text: str | None = None
    link_target: Literal["_self", "_blank"] | None = None
    type: Literal["main", "side"] | None = None
    position: int | None = None
    badge: str | None = None
    badge_color: str | None = None
    is_active: bool | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    translations: dict[str, Any] | None = None


class _Query(_Body):
    cursor: str | None = Field(None, max_length=300, description="`next_cursor` of the previous page.")


class ToolTypesQuery(_Query):
    locale: str | None = Field(None, pattern=LOCALE)
    limit: int = Field(100, ge=1, le=200)


class ToolsQuery(_Query):
    type: str | None = Field(None, pattern=SLUG, description="A tool type's name.")
    q: str | None = Field(None, max_length=100, pattern=SEARCH)
    featured: bool | None = None
    locale: str | None = Field(None, pattern=LOCALE)
    limit: int = Field(24, ge=1, le=100)


class ToolQuery(_Body):
    locale: str | None = Field(None, pattern=LOCALE)


class BannersQuery(_Query):
    type: Literal["main", "side"] | None = None
    locale: str | None = Field(None, pattern=LOCALE)
    limit: int = Field(20, ge=1, le=100)


class AdminToolTypesQuery(_Query):
    active: bool | None = None
    limit: int = Field(100, ge=1, le=200)


class AdminToolsQuery(_Query):
    type: str | None = Field(None, pattern=SLUG)
    q: str | None = Field(None, max_length=100, pattern=SEARCH)
    active: bool | None = None
    featured: bool | None = None
    limit: int = Field(50, ge=1, le=100)


class AdminBannersQuery(_Query):
    type: Literal["main", "side"] | None = None
    active: bool | None = None
    limit: int = Field(50, ge=1, le=100)


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
        query = read_query(request, ToolTypesQuery)
        return web.json_response(await self.catalog.tool_types(**query.model_dump()))

    async def tools(self, request: web.Request) -> web.Response:
        query = read_query(request, ToolsQuery)
        return web.json_response(await self.catalog.tools(**query.model_dump()))

    async def tool(self, request: web.Request) -> web.Response:
        query = read_query(request, ToolQuery)
        return web.json_response(await self.catalog.tool(request.match_info["slug"], locale=query.locale))

    async def banners(self, request: web.Request) -> web.Response:
        query = read_query(request, BannersQuery)
        return web.json_response(await self.catalog.banners(**query.model_dump()))

    # --- admin: tool types ------------------------------------------------------------------------------

    async def admin_tool_types(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminToolTypesQuery)
        return web.json_response(await self.catalog.admin_tool_types(**query.model_dump()))

    async def create_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await read_body(request, ToolTypeBody)
        return web.json_response(await self.catalog.create_tool_type(**body.model_dump()), status=201)

    async def admin_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.admin_tool_type(_id(request, "type_id", "tool type")))

    async def update_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        type_id = _id(request, "type_id", "tool type")
        body = await read_body(request, ToolTypeChanges)
        return web.json_response(
            await self.catalog.update_tool_type(type_id, body.model_dump(exclude_unset=True))
        )

    async def delete_tool_type(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        await self.catalog.delete_tool_type(_id(request, "type_id", "tool type"))
        return web.Response(status=204)

    # --- admin: tools -----------------------------------------------------------------------------------

    async def admin_tools(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminToolsQuery)
        return web.json_response(await self.catalog.admin_tools(**query.model_dump()))

    async def create_tool(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await read_body(request, ToolBody)
        return web.json_response(await self.catalog.create_tool(**body.model_dump()), status=201)

    async def admin_tool(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.admin_tool(_id(request, "tool_id", "tool")))

    async def update_tool(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        tool_id = _id(request, "tool_id", "tool")
        body = await read_body(request, ToolChanges)
        return web.json_response(await self.catalog.update_tool(tool_id, body.model_dump(exclude_unset=True)))

    async def delete_tool(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        await self.catalog.delete_tool(_id(request, "tool_id", "tool"))
        return web.Response(status=204)

    # --- admin: banners ---------------------------------------------------------------------------------

    async def admin_banners(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminBannersQuery)
        return web.json_response(await self.catalog.admin_banners(**query.model_dump()))

    async def create_banner(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        body = await read_body(request, BannerBody)
        return web.json_response(await self.catalog.create_banner(**body.model_dump()), status=201)

    async def admin_banner(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        return web.json_response(await self.catalog.admin_banner(_id(request, "banner_id", "banner")))

    async def update_banner(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        banner_id = _id(request, "banner_id", "banner")
        body = await read_body(request, BannerChanges)
        return web.json_response(
            await self.catalog.update_banner(banner_id, body.model_dump(exclude_unset=True))
        )

    async def delete_banner(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        await self.catalog.delete_banner(_id(request, "banner_id", "banner"))
        return web.Response(status=204)


def _id(request: web.Request, name: str, what: str) -> str:
    return path_uuid(request, name, what)
