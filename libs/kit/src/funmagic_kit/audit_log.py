"""The audit log's table (`admin_audit`, kit migration 002) in each service's database: written with the
change (`record_admin_action`), read newest first in keyset pages (`audit_page`, `GET /v1/admin/audit`).

Units of work write the rows (`PostgresUnitOfWork.record`, `funmagic_kit.audit`) on their connection just
before the commit, so an entry exists exactly when its change committed. Every service registers
`audit_routes` the same way, and the gateway merges their pages.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import psycopg
from aiohttp import web
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.api.audit import AuditedService, AuditEntry, AuditPage, AuditQuery
from funmagic_contracts.ids import uuid7
from funmagic_kit.api import json_body, read_query, require_role
from funmagic_kit.audit import redacted
from funmagic_kit.pagination import decode_cursor, page_of

__all__ = ["audit_page", "audit_routes", "record_admin_action"]

_INSERT = """
INSERT INTO admin_audit (id, actor_id, action, subject_type, subject_id, changes, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


async def record_admin_action(
    conn: psycopg.AsyncConnection,
    *,
    actor_id: str | None,
    action: str,
    subject_type: str,
    subject_id: str,
    changes: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Add one entry on `conn`, in its open transaction (it commits or rolls back with the change).

    `changes` is redacted here, whatever the caller passed: a secret-named field keeps only "changed"."""
    # Changes hold what a request sent, parsed: a datetime or a UUID is written as text.
    document = Jsonb(redacted(dict(changes or {})), lambda value: json.dumps(value, default=str))
    await conn.execute(_INSERT, (uuid7(), actor_id, action, subject_type, subject_id, document, reason))


_PAGE = """
SELECT id, at, actor_id, action, subject_type, subject_id, changes, reason
FROM admin_audit
WHERE (%(actor_id)s::text IS NULL OR actor_id = %(actor_id)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(subject_type)s::text IS NULL OR subject_type = %(subject_type)s)
  AND (%(subject_id)s::text IS NULL OR subject_id = %(subject_id)s)
  AND (%(after)s::timestamptz IS NULL OR at >= %(after)s)
  AND (%(before)s::timestamptz IS NULL OR at < %(before)s)
  AND (%(after_at)s::timestamptz IS NULL OR (at, id) < (%(after_at)s, %(after_id)s::uuid))
ORDER BY at DESC, id DESC
LIMIT %(limit)s
"""


async def audit_page(pool: AsyncConnectionPool, service: AuditedService, query: AuditQuery) -> AuditPage:
    """The entries matching `query`, newest first, after its cursor (the last entry's (`at`, `id`))."""
    after_at, after_id = decode_cursor(query.cursor, datetime, uuid.UUID) if query.cursor else (None, None)
    params: dict[str, Any] = {
        "actor_id": query.actor_id,
        "action": query.action,
        "subject_type": query.subject_type,
        "subject_id": query.subject_id,
        "after": query.after,
        "before": query.before,
        "after_at": after_at,
        "after_id": after_id,
        "limit": query.limit + 1,
    }
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(_PAGE, params)
        rows = await cursor.fetchall()
    items, next_cursor = page_of(rows, query.limit, key=lambda row: (row["at"], row["id"]))
    return AuditPage(
        items=[AuditEntry(**{**row, "id": str(row["id"])}, service=service) for row in items],
        next_cursor=next_cursor,
    )


def audit_routes(pool: AsyncConnectionPool, service: AuditedService) -> list[web.RouteDef]:
    """The service's audit log route, for admins and super admins (`service`: the name its entries carry)."""

    async def list_audit(request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AuditQuery)
        return json_body(await audit_page(pool, service, query))

    return [web.get("/v1/admin/audit", list_audit)]
