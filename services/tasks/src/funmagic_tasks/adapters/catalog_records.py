"""The tool catalog and the banners on Postgres, and the outbox writer the catalog publishes through.

Lists are keyset pages in SQL: tool types by (sort_order, name), tools by (featured first, slug), banners by
(main first, position, id). Names and slugs are unique among live rows (partial unique indexes); a clash
is a `CatalogConflict`. A tool type is locked `FOR SHARE` while a tool is written against it and
`FOR UPDATE` while it is deleted, so a delete never slips past a tool being created.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.outbox import add_to_outbox
from funmagic_tasks.domain.catalog import CatalogConflict, InvalidCatalogEntry, Tool, parse_tool_config

__all__ = ["CatalogRecords", "decode_cursor", "encode_cursor", "publish_to_outbox"]

Lock = Literal["update", "share"] | None

TYPE_COLUMNS = (
    "tt.id::text, tt.name, tt.display_name, tt.description, tt.icon, tt.color, tt.sort_order, tt.is_active, "
    "tt.translations, tt.created_at, tt.updated_at"
)
TYPE_COUNTS = (
    "(SELECT count(*) FROM tools t WHERE t.tool_type_id = tt.id AND t.deleted_at IS NULL) AS tools_count, "
    "(SELECT count(*) FROM tools t WHERE t.tool_type_id = tt.id AND t.deleted_at IS NULL AND t.is_active) "
    "AS active_tools_count"
)
TOOL_COLUMNS = (
    "t.id::text, t.slug, t.title, t.description, t.thumbnail_asset_id::text, t.tool_type_id::text, t.config, "
    "t.credits_cost, t.is_active, t.is_featured, t.translations, t.created_at, t.updated_at, "
    "tt.name AS tool_type_name, tt.display_name AS tool_type_display_name, "
    "tt.translations AS tool_type_translations"
)
TOOL_FROM = "tools t JOIN tool_types tt ON tt.id = t.tool_type_id"
BANNER_COLUMNS = (
    "b.id::text, b.title, b.description, b.thumbnail_asset_id::text, b.link, b.link_text, b.link_target, "
    "b.type, b.position, b.badge, b.badge_color, b.is_active, b.starts_at, b.ends_at, b.translations, "
    "b.created_at, b.updated_at"
)
BANNER_RANK = "(CASE WHEN b.type = 'main' THEN 0 ELSE 1 END)"

INSERT_TYPE = f"""
INSERT INTO tool_types AS tt
    (id, name, display_name, description, icon, color, sort_order, is_active, translations, created_at,
     updated_at)
VALUES (%(id)s, %(name)s, %(display_name)s, %(description)s, %(icon)s, %(color)s, %(sort_order)s,
        %(is_active)s, %(translations)s, %(now)s, %(now)s)
ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING
RETURNING {TYPE_COLUMNS}, 0::bigint AS tools_count, 0::bigint AS active_tools_count
"""
INSERT_TOOL = """
INSERT INTO tools
    (id, slug, title, description, thumbnail_asset_id, tool_type_id, config, credits_cost, is_active,
     is_featured, translations, created_at, updated_at)
VALUES (%(id)s, %(slug)s, %(title)s, %(description)s, %(thumbnail_asset_id)s, %(tool_type_id)s, %(config)s,
        %(credits_cost)s, %(is_active)s, %(is_featured)s, %(translations)s, %(now)s, %(now)s)
ON CONFLICT (slug) WHERE deleted_at IS NULL DO NOTHING
RETURNING id::text
"""
INSERT_BANNER = f"""
INSERT INTO banners AS b
    (id, title, description, thumbnail_asset_id, link, link_text, link_target, type, position, badge,
     badge_color, is_active, starts_at, ends_at, translations, created_at, updated_at)
VALUES (%(id)s, %(title)s, %(description)s, %(thumbnail_asset_id)s, %(link)s, %(link_text)s, %(link_target)s,
        %(type)s, %(position)s, %(badge)s, %(badge_color)s, %(is_active)s, %(starts_at)s, %(ends_at)s,
        %(translations)s, %(now)s, %(now)s)
ON CONFLICT (id) DO NOTHING
RETURNING {BANNER_COLUMNS}
"""

_TYPE_FIELDS = frozenset(
    {"name", "display_name", "description", "icon", "color", "sort_order", "is_active", "translations"}
)
_TOOL_FIELDS = frozenset(
    {
        "slug", "title", "description", "thumbnail_asset_id", "tool_type_id", "config", "credits_cost",
        "is_active", "is_featured", "translations",
    }
)  # fmt: skip
_BANNER_FIELDS = frozenset(
    {
        "title", "description", "thumbnail_asset_id", "link", "link_text", "link_target", "type", "position",
        "badge", "badge_color", "is_active", "starts_at", "ends_at", "translations",
    }
)  # fmt: skip
_JSON_FIELDS = frozenset({"config", "translations"})


# --- cursors ------------------------------------------------------------------------------------------


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values), separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, *types: type) -> list[Any]:
    """The values of a cursor, each checked against its type; anything forged is `InvalidCatalogEntry`."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(type(v) is t for v, t in zip(values, types, strict=True))  # bool is not int here
        or any(isinstance(v, str) and (len(v) > 100 or "\x00" in v) for v in values)
    ):
        raise InvalidCatalogEntry("cursor", "the cursor is invalid; start again without it")
    return values


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _lock_clause(lock: Lock, table: str) -> str:
    return {None: "", "update": f" FOR UPDATE OF {table}", "share": f" FOR SHARE OF {table}"}[lock]


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(v) if k in _JSON_FIELDS else v for k, v in values.items()}


# --- the outbox -----------------------------------------------------------------------------------------


async def publish_to_outbox(conn: psycopg.AsyncConnection, events: Sequence[IntegrationEvent]) -> None:
    """Each event in an envelope, in the caller's transaction (the relay of the running service sends it)."""
    correlation_id = current_correlation_id()
    await add_to_outbox(conn, [(e.TOPIC, Envelope.wrap(e, correlation_id=correlation_id)) for e in events])


# --- records --------------------------------------------------------------------------------------------


class CatalogRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    # --- tool types ---------------------------------------------------------------------------------------

    async def add_tool_type(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """None when a live tool type has that name."""
        cursor = await self._conn.execute(INSERT_TYPE, _stored(row))
        return await cursor.fetchone()

    async def tool_type(self, type_id: str, *, lock: Lock = None) -> dict[str, Any] | None:
        if _uuid_or_none(type_id) is None:
            return None
        cursor = await self._conn.execute(
            f"SELECT {TYPE_COLUMNS}, {TYPE_COUNTS} FROM tool_types tt WHERE tt.id = %s "
            f"AND tt.deleted_at IS NULL{_lock_clause(lock, 'tt')}",
            (type_id,),
        )
        return await cursor.fetchone()

    async def tool_type_by_name(self, name: str) -> dict[str, Any] | None:
        cursor = await self._conn.execute(
            f"SELECT {TYPE_COLUMNS}, {TYPE_COUNTS} FROM tool_types tt WHERE tt.name = %s "
            "AND tt.deleted_at IS NULL",
            (name,),
        )
        return await cursor.fetchone()

    async def update_tool_type(self, type_id: str, values: dict[str, Any], now: datetime) -> dict[str, Any]:
        assert set(values) <= _TYPE_FIELDS, set(values) - _TYPE_FIELDS
        if values:
            assignments = ", ".join(f"{column} = %({column})s" for column in values)
            await self._unique_update(
                f"UPDATE tool_types SET {assignments}, updated_at = %(now)s "
                "WHERE id = %(id)s AND deleted_at IS NULL",
                {**_stored(values), "id": type_id, "now": now},
                "tool_type_exists",
                f"a tool type named {values.get('name')!r} exists already",
            )
        row = await self.tool_type(type_id)
        assert row is not None
        return row

    async def tools_using(self, type_id: str) -> int:
        """Live tools (active or not) of a tool type."""
        cursor = await self._conn.execute(
            "SELECT count(*) AS n FROM tools WHERE tool_type_id = %s AND deleted_at IS NULL", (type_id,)
        )
        row = await cursor.fetchone()
        return int(row["n"]) if row else 0

    async def delete_tool_type(self, type_id: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE tool_types SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false "
            "WHERE id = %(id)s AND deleted_at IS NULL",
            {"id": type_id, "now": now},
        )
        return cursor.rowcount == 1

    async def tool_types_page(
        self, *, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        conditions = ["tt.deleted_at IS NULL"]
        params: dict[str, Any] = {"limit": limit + 1}
        if active is not None:
            conditions.append("tt.is_active = %(active)s")
            params["active"] = active
        if cursor:
            params["after_sort"], params["after_name"] = decode_cursor(cursor, int, str)
            conditions.append("(tt.sort_order, tt.name) > (%(after_sort)s, %(after_name)s)")
        rows = await (
            await self._conn.execute(
                f"SELECT {TYPE_COLUMNS}, {TYPE_COUNTS} FROM tool_types tt WHERE {' AND '.join(conditions)} "
                "ORDER BY tt.sort_order, tt.name LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1]["sort_order"], items[-1]["name"]) if len(rows) > limit else None
        return items, next_cursor

    # --- tools ------------------------------------------------------------------------------------------

    async def add_tool(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """None when a live tool has that slug."""
        cursor = await self._conn.execute(INSERT_TOOL, _stored(row))
        added = await cursor.fetchone()
        return None if added is None else await self.tool(added["id"])

    async def tool(self, tool_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        if _uuid_or_none(tool_id) is None:
            return None
        lock = " FOR UPDATE OF t" if for_update else ""
        cursor = await self._conn.execute(
            f"SELECT {TOOL_COLUMNS} FROM {TOOL_FROM} WHERE t.id = %s AND t.deleted_at IS NULL{lock}",
            (tool_id,),
        )
        return await cursor.fetchone()

    async def tool_row_by_slug(self, slug: str, *, active_only: bool = False) -> dict[str, Any] | None:
        active = " AND t.is_active" if active_only else ""
        cursor = await self._conn.execute(
            f"SELECT {TOOL_COLUMNS} FROM {TOOL_FROM} WHERE t.slug = %s AND t.deleted_at IS NULL{active}",
            (slug,),
        )
        return await cursor.fetchone()

    async def tool_by_slug(self, slug: str) -> Tool | None:
        """The live tool with that slug as the task saga uses it (an inactive one has `is_active` False)."""
        row = await self.tool_row_by_slug(slug)
        if row is None:
            return None
        return Tool(
            id=row["id"],
            slug=row["slug"],
            title=row["title"],
            is_active=row["is_active"],
            credits_cost=row["credits_cost"],
            config=parse_tool_config(row["config"]),
        )

    async def update_tool(self, tool_id: str, values: dict[str, Any], now: datetime) -> dict[str, Any]:
        assert set(values) <= _TOOL_FIELDS, set(values) - _TOOL_FIELDS
        if values:
            assignments = ", ".join(f"{column} = %({column})s" for column in values)
            await self._unique_update(
                f"UPDATE tools SET {assignments}, updated_at = %(now)s "
                "WHERE id = %(id)s AND deleted_at IS NULL",
                {**_stored(values), "id": tool_id, "now": now},
                "tool_exists",
                f"a tool with the slug {values.get('slug')!r} exists already",
            )
        row = await self.tool(tool_id)
        assert row is not None
        return row

    async def delete_tool(self, tool_id: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE tools SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false "
            "WHERE id = %(id)s AND deleted_at IS NULL",
            {"id": tool_id, "now": now},
        )
        return cursor.rowcount == 1

    async def tools_page(
        self,
        *,
        active: bool | None,
        type_name: str | None = None,
        query: str | None = None,
        featured: bool | None = None,
        locales: Sequence[str] = (),
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Featured first, then by slug. `query` matches title or description (English, or the texts of
        `locales`) as a literal substring: `%`, `_` and `\\` in it are escaped."""
        conditions = ["t.deleted_at IS NULL"]
        params: dict[str, Any] = {"limit": limit + 1}
        if active is not None:
            conditions.append("t.is_active = %(active)s")
            params["active"] = active
        if type_name:
            conditions.append("tt.name = %(type_name)s")
            params["type_name"] = type_name
        if featured is not None:
            conditions.append("t.is_featured = %(featured)s")
            params["featured"] = featured
        if query:
            params["pattern"] = (
                "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            matches = ["t.title ILIKE %(pattern)s", "t.description ILIKE %(pattern)s"]
            for index, locale in enumerate(locales):
                params[f"locale_{index}"] = locale
                matches += [
                    f"t.translations -> %(locale_{index})s ->> 'title' ILIKE %(pattern)s",
                    f"t.translations -> %(locale_{index})s ->> 'description' ILIKE %(pattern)s",
                ]
            conditions.append(f"({' OR '.join(matches)})")
        if cursor:
            params["after_unfeatured"], params["after_slug"] = decode_cursor(cursor, bool, str)
            conditions.append("((NOT t.is_featured), t.slug) > (%(after_unfeatured)s, %(after_slug)s)")
        rows = await (
            await self._conn.execute(
                f"SELECT {TOOL_COLUMNS} FROM {TOOL_FROM} WHERE {' AND '.join(conditions)} "
                "ORDER BY (NOT t.is_featured), t.slug LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        items = rows[:limit]
        next_cursor = (
            encode_cursor(not items[-1]["is_featured"], items[-1]["slug"]) if len(rows) > limit else None
        )
        return items, next_cursor

    # --- banners ----------------------------------------------------------------------------------------

    async def add_banner(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """None when a banner with that id exists (a deleted one too)."""
        cursor = await self._conn.execute(INSERT_BANNER, _stored(row))
        return await cursor.fetchone()

    async def banner(self, banner_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        if _uuid_or_none(banner_id) is None:
            return None
        lock = " FOR UPDATE" if for_update else ""
        cursor = await self._conn.execute(
            f"SELECT {BANNER_COLUMNS} FROM banners b WHERE b.id = %s AND b.deleted_at IS NULL{lock}",
            (banner_id,),
        )
        return await cursor.fetchone()

    async def update_banner(self, banner_id: str, values: dict[str, Any], now: datetime) -> dict[str, Any]:
        assert set(values) <= _BANNER_FIELDS, set(values) - _BANNER_FIELDS
        if values:
            assignments = ", ".join(f"{column} = %({column})s" for column in values)
            await self._conn.execute(
                f"UPDATE banners SET {assignments}, updated_at = %(now)s "
                "WHERE id = %(id)s AND deleted_at IS NULL",
                {**_stored(values), "id": banner_id, "now": now},
            )
        row = await self.banner(banner_id)
        assert row is not None
        return row

    async def delete_banner(self, banner_id: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE banners SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false "
            "WHERE id = %(id)s AND deleted_at IS NULL",
            {"id": banner_id, "now": now},
        )
        return cursor.rowcount == 1

    async def banners_page(
        self,
        *,
        live_at: datetime | None,
        banner_type: str | None = None,
        active: bool | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Main banners first, then by position. `live_at`: only those shown at that moment (active and
        `starts_at <= live_at < ends_at`, a null bound open)."""
        conditions = ["b.deleted_at IS NULL"]
        params: dict[str, Any] = {"limit": limit + 1}
        if live_at is not None:
            conditions += [
                "b.is_active",
                "(b.starts_at IS NULL OR b.starts_at <= %(now)s)",
                "(b.ends_at IS NULL OR %(now)s < b.ends_at)",
            ]
            params["now"] = live_at
        if active is not None:
            conditions.append("b.is_active = %(active)s")
            params["active"] = active
        if banner_type:
            conditions.append("b.type = %(type)s")
            params["type"] = banner_type
        if cursor:
            rank, position, after_id = decode_cursor(cursor, int, int, str)
            if _uuid_or_none(after_id) is None:
                raise InvalidCatalogEntry("cursor", "the cursor is invalid; start again without it")
            params |= {"after_rank": rank, "after_position": position, "after_id": after_id}
            conditions.append(
                f"({BANNER_RANK}, b.position, b.id) "
                "> (%(after_rank)s, %(after_position)s, %(after_id)s::uuid)"
            )
        rows = await (
            await self._conn.execute(
                f"SELECT {BANNER_COLUMNS} FROM banners b WHERE {' AND '.join(conditions)} "
                f"ORDER BY {BANNER_RANK}, b.position, b.id LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        items = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = items[-1]
            next_cursor = encode_cursor(0 if last["type"] == "main" else 1, last["position"], last["id"])
        return items, next_cursor

    # --- helpers ----------------------------------------------------------------------------------------

    async def _unique_update(self, sql: str, params: dict[str, Any], code: str, message: str) -> None:
        # A savepoint: the clash is reported and the caller's transaction stays usable (it rolls back anyway).
        try:
            async with self._conn.transaction():
                await self._conn.execute(sql, params)
        except psycopg.errors.UniqueViolation:
            raise CatalogConflict(code, message) from None
