"""`/api/admin/users/{user_id}/overview`: an admin's view of one user, composed from identity, credits and
tasks (`application.user_overview`). The other `/api/admin/users*` routes forward to identity
(`auth_routes`) and credits (`credits_routes`).

`/api/admin/stats/*`: the admin app's overview page, composed from tasks, credits and providers
(`application.admin_stats`), and each service's figures alone (declared forwards).

`/api/admin/audit`: the admin writes every service recorded, merged newest first
(`application.admin_audit`)."""

from __future__ import annotations

from aiohttp import web

from funmagic_contracts.api.audit import AuditPage, AuditQuery
from funmagic_contracts.api.credits import CreditStats
from funmagic_contracts.api.stats import StatsQuery
from funmagic_contracts.api.tasks import TaskStats
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.application.admin_audit import AdminAudit
from funmagic_gateway.application.admin_stats import AdminStats
from funmagic_gateway.application.user_overview import UserOverviews
from funmagic_gateway.application.views import AdminStatsOverview, AdminUserOverview
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, caller_of, operations, safe_id
from funmagic_kit.api import Operation, json_body, read_query

__all__ = ["admin_audit_operations", "admin_stats_operations", "admin_user_operations"]


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


def admin_stats_operations(
    stats: AdminStats, tasks: ServiceClient, credits: ServiceClient
) -> list[Operation]:
    tag = "admin: stats"

    async def stats_overview(request: web.Request) -> web.Response:
        query = read_query(request, StatsQuery)
        return json_body(await stats.overview(caller_of(request), query))

    return operations(
        Operation("GET", "/api/admin/stats/overview", stats_overview,
                  "The overview page: tasks per bucket and their outcomes, active users, credits sold and "
                  "spent, provider health", tag, access="admin", query=StatsQuery,
                  response=AdminStatsOverview, errors=(503,),
                  description="Tasks, credits and providers are asked at once; all or nothing: when one "
                              "cannot answer, a 503 (never a partial overview)."),
        Forward("GET", "/api/admin/stats/tasks", tasks, "/v1/admin/stats/tasks",
                "Tasks' figures over a window", tag, "task_stats", access="admin", query=StatsQuery,
                reply=TaskStats),
        Forward("GET", "/api/admin/stats/credits", credits, "/v1/admin/stats/credits",
                "Credits' figures over a window", tag, "credit_stats", access="admin", query=StatsQuery,
                reply=CreditStats),
    )  # fmt: skip


def admin_audit_operations(audit: AdminAudit) -> list[Operation]:
    async def audit_log(request: web.Request) -> web.Response:
        query = read_query(request, AuditQuery)
        return json_body(await audit.page(caller_of(request), query))

    return [
        Operation(
            "GET",
            "/api/admin/audit",
            audit_log,
            "The audit log: every admin write (who, when, what changed), newest first",
            "admin: audit",
            access="admin",
            query=AuditQuery,
            response=AuditPage,
            errors=(503,),
            description="Merged over the services that made the changes (`service` says which); filters "
            "by admin, action and subject. Secrets are never shown: a key or password field reads "
            '`"changed"`. All or nothing: when a service cannot answer, a 503. ' + CURSOR_RULE,
        )
    ]
