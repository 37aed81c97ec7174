"""`/api/admin/users/{user_id}/overview`: an admin's view of one user, composed from identity, credits and
tasks (`application.user_overview`). The other `/api/admin/users*` routes forward to identity
(`auth_routes`) and credits (`credits_routes`)."""

from __future__ import annotations

from aiohttp import web

from funmagic_gateway.application.user_overview import UserOverviews
from funmagic_gateway.application.views import AdminUserOverview
from funmagic_gateway.entrypoints.forwarding import caller_of, safe_id
from funmagic_kit.api import Operation, json_body

__all__ = ["admin_user_operations"]


def admin_user_operations(overviews: UserOverviews) -> list[Operation]:
    async def user_overview(request: web.Request) -> web.Response:
        user_id = safe_id(request.match_info["user_id"])
        return json_body(await overviews.overview(caller_of(request), user_id))

    return [
        Operation(
            "GET",
            "/api/admin/users/{user_id}/overview",
            user_overview,
            "One user at a glance: account and sessions, balance, latest transactions and tasks",
            "admin: users",
            access="admin",
            response=AdminUserOverview,
            errors=(404, 503),
            description="All or nothing: when identity, credits or tasks cannot answer, a 503 (never a "
            "partial view).",
        )
    ]
