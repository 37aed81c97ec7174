"""`/api/tool-types`, `/api/tools`, `/api/banners` (public) and `/api/admin/{tool-types,tools,banners}`
(admins): the public face of the tasks service's catalog, every route a declared forward.

Public answers never carry a step's provider, model, options or default prompt: the public reply models
(`funmagic_contracts.api.catalog`) have no such fields, so even a service answer that held them would lose
them here.
"""

from __future__ import annotations

from funmagic_contracts.api.catalog import (
    ActiveToolsCount,
    AdminBannerPage,
    AdminBannerQuery,
    AdminBannerView,
    AdminToolPage,
    AdminToolQuery,
    AdminToolTypePage,
    AdminToolTypeQuery,
    AdminToolTypeView,
    AdminToolView,
    BannerCreate,
    BannerListQuery,
    BannerPage,
    BannerUpdate,
    ToolCreate,
    ToolDetail,
    ToolDetailQuery,
    ToolListQuery,
    ToolPage,
    ToolTypeCreate,
    ToolTypePage,
    ToolTypeQuery,
    ToolTypeUpdate,
    ToolUpdate,
)
from funmagic_gateway.adapters.reply_cache import ReplyCache
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, operations
from funmagic_kit.api import Operation

__all__ = ["catalog_operations"]


# What refuses an entry its schema allows (422 `invalid_catalog_entry`, with the `field`); `Business rule:`
# marks it for the fuzz test (tests/e2e/test_gateway_openapi.py).
_ENTRY_RULE = (
    "Business rule: the catalog's entry rules (422 `invalid_catalog_entry`, naming the `field`): texts are "
    "trimmed, and names and titles must not be blank; no text holds control characters (descriptions may "
    "hold line breaks and tabs); a field an entry cannot do without (a name, a title, an order, a flag) "
    "cannot be set to null; colours are hex (#1e90ff) or tokens (red-500); translations are keyed by "
    "locale and hold only the entry's translatable texts."
)
_TOOL_RULE = (
    _ENTRY_RULE + " The tool type must exist, and the config must hold at least one valid step whose "
    "provider exists (`local` always does) and whose input modes and options its step type knows."
)
_BANNER_RULE = (
    _ENTRY_RULE + " A link is an http(s) URL or a path of the site (`/tools/figme`), and `ends_at` is after "
    "`starts_at`."
)


def catalog_operations(tasks: ServiceClient, cache: ReplyCache | None = None) -> list[Operation]:
    """The routes; with a `cache`, the public answers are kept there and an admin's change empties it."""
    public, admin = "catalog", "admin: catalog"
    types_item, tools_item = "/api/admin/tool-types/{type_id}", "/api/admin/tools/{tool_id}"
    banners_item = "/api/admin/banners/{banner_id}"
    # Each forward: where (method, public path, service, service path), then what (summary, tag, name…).
    return operations(
        Forward("GET", "/api/tool-types", tasks, "/v1/tool-types",
                "Tool types (categories), in order", public, "tool_types", access="public",
                query=ToolTypeQuery, reply=ToolTypePage, description=CURSOR_RULE,
                cache=cache),
        Forward("GET", "/api/tools", tasks, "/v1/tools",
                "Active tools, featured first", public, "tools", access="public", query=ToolListQuery,
                reply=ToolPage, description=CURSOR_RULE,
                cache=cache),
        Forward("GET", "/api/tools/{slug}", tasks, "/v1/tools/{slug}",
                "One active tool, with its steps", public, "tool", access="public", query=ToolDetailQuery,
                reply=ToolDetail, errors=(404,),
                cache=cache),
        Forward("GET", "/api/banners", tasks, "/v1/banners",
                "Banners shown now: main first, then by position", public, "banners", access="public",
                query=BannerListQuery, reply=BannerPage, description=CURSOR_RULE,
                cache=cache),
        # --- admin: tool types
        Forward("GET", "/api/admin/tool-types", tasks, "/v1/admin/tool-types",
                "All tool types", admin, "admin_tool_types", access="admin", query=AdminToolTypeQuery,
                reply=AdminToolTypePage, description=CURSOR_RULE),
        Forward("POST", "/api/admin/tool-types", tasks, "/v1/admin/tool-types",
                "Add a tool type", admin, "create_tool_type", access="admin", body=ToolTypeCreate,
                reply=AdminToolTypeView, status=201, errors=(409, 422), description=_ENTRY_RULE,
                idempotent=True, clears=cache),
        Forward("GET", types_item, tasks, "/v1/admin/tool-types/{type_id}",
                "One tool type", admin, "admin_tool_type", access="admin", reply=AdminToolTypeView,
                errors=(404,)),
        Forward("PATCH", types_item, tasks, "/v1/admin/tool-types/{type_id}",
                "Change a tool type", admin, "update_tool_type", access="admin", body=ToolTypeUpdate,
                dump="exclude_unset", reply=AdminToolTypeView, errors=(404, 409, 422),
                description=_ENTRY_RULE,
                clears=cache),
        Forward("DELETE", types_item, tasks, "/v1/admin/tool-types/{type_id}",
                "Delete a tool type no tool uses", admin, "delete_tool_type", access="admin", status=204,
                errors=(404, 409), description="Refused (409 `tool_type_in_use`) while any tool has it.",
                clears=cache),
        Forward("GET", types_item + "/active-tools-count", tasks,
                "/v1/admin/tool-types/{type_id}/active-tools-count",
                "How many active tools a tool type has", admin, "active_tools_count", access="admin",
                reply=ActiveToolsCount, errors=(404,)),
        # --- admin: tools
        Forward("GET", "/api/admin/tools", tasks, "/v1/admin/tools",
                "All tools, inactive ones too", admin, "admin_tools", access="admin", query=AdminToolQuery,
                reply=AdminToolPage, description=CURSOR_RULE),
        Forward("POST", "/api/admin/tools", tasks, "/v1/admin/tools",
                "Add a tool", admin, "create_tool", access="admin", body=ToolCreate, reply=AdminToolView,
                status=201, errors=(409, 422), idempotent=True,
                description="Every provider a step names must exist (`local` always does); the price is "
                            "computed from the steps' costs. " + _TOOL_RULE,
                clears=cache),
        Forward("GET", tools_item, tasks, "/v1/admin/tools/{tool_id}",
                "One tool, with its full config", admin, "admin_tool", access="admin", reply=AdminToolView,
                errors=(404,)),
        Forward("PATCH", tools_item, tasks, "/v1/admin/tools/{tool_id}",
                "Change a tool", admin, "update_tool", access="admin", body=ToolUpdate, dump="exclude_unset",
                reply=AdminToolView, errors=(404, 409, 422), description=_TOOL_RULE,
                clears=cache),
        Forward("DELETE", tools_item, tasks, "/v1/admin/tools/{tool_id}",
                "Delete a tool", admin, "delete_tool", access="admin", status=204, errors=(404,),
                description="A tool tasks ran is kept, hidden from users (`deleted_at`), for their history.",
                clears=cache),
        # --- admin: banners
        Forward("GET", "/api/admin/banners", tasks, "/v1/admin/banners",
                "All banners", admin, "admin_banners", access="admin", query=AdminBannerQuery,
                reply=AdminBannerPage, description=CURSOR_RULE),
        Forward("POST", "/api/admin/banners", tasks, "/v1/admin/banners",
                "Add a banner", admin, "create_banner", access="admin", body=BannerCreate,
                reply=AdminBannerView, status=201, errors=(409, 422), description=_BANNER_RULE,
                idempotent=True, clears=cache),
        Forward("GET", banners_item, tasks, "/v1/admin/banners/{banner_id}",
                "One banner", admin, "admin_banner", access="admin", reply=AdminBannerView, errors=(404,)),
        Forward("PATCH", banners_item, tasks, "/v1/admin/banners/{banner_id}",
                "Change a banner", admin, "update_banner", access="admin", body=BannerUpdate,
                dump="exclude_unset", reply=AdminBannerView, errors=(404, 422), description=_BANNER_RULE,
                clears=cache),
        Forward("DELETE", banners_item, tasks, "/v1/admin/banners/{banner_id}",
                "Delete a banner", admin, "delete_banner", access="admin", status=204, errors=(404,),
                clears=cache),
    )  # fmt: skip
