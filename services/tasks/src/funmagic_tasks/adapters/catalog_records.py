"""The tool catalog and the banners on Postgres, rows mapped to the catalog's entries and back.

Lists are keyset pages in SQL: tool types by (sort_order, name), tools by (featured first, slug, id: a
deleted tool may share its slug with a live one), banners by (main first, position, id). Names and slugs
are unique among live rows (partial unique indexes); a clash is a `CatalogConflict`. A tool type is locked
`FOR SHARE` while a tool is written against it and `FOR UPDATE` while it is deleted, so a delete never
slips past a tool being created; likewise a tool is locked `FOR KEY SHARE` while a task is created on it
and `FOR UPDATE` while it is edited or deleted, so whether tasks ran it (soft delete) or not (hard delete) is
decided on what is committed. `FOR KEY SHARE`, not `FOR SHARE`: counting a use of the tool (an UPDATE of
`usage_count` when another of its tasks starts) does not conflict with it, so starts on a popular tool do
not queue behind its creations, nor creations behind those starts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

from funmagic_kit.pagination import InvalidCursor, decode_cursor, page_of
from funmagic_kit.pipelined import Sent
from funmagic_kit.rows import from_row, to_row
from funmagic_tasks.application.ports import RowLock
from funmagic_tasks.domain.catalog import (
    BannerEntry,
    BannerRecord,
    CatalogConflict,
    InvalidCatalogEntry,
    Tool,
    ToolEntry,
    ToolRecord,
    ToolTypeEntry,
    ToolTypeLabel,
    ToolTypeRecord,
    config_to_json,
    parse_tool_config,
)

__all__ = ["CatalogRecords"]

Row = Mapping[str, Any]
RecordT = TypeVar("RecordT")

# Selected under the names of the records' and entries' fields (`from_row`).
TYPE_COLUMNS = (
    "tt.id::text AS id, tt.name, tt.display_name, tt.description, tt.icon, tt.color, tt.sort_order, "
    "tt.is_active, tt.translations, tt.created_at, tt.updated_at"
)
TYPE_COUNTS = (
    "(SELECT count(*) FROM tools t WHERE t.tool_type_id = tt.id AND t.deleted_at IS NULL) AS tools_count, "
    "(SELECT count(*) FROM tools t WHERE t.tool_type_id = tt.id AND t.deleted_at IS NULL AND t.is_active) "
    "AS active_tools_count"
)
TOOL_COLUMNS = (
    "t.id::text AS id, t.slug, t.title, t.description, t.thumbnail_asset_id::text AS thumbnail_asset_id, "
    "t.tool_type_id::text AS tool_type_id, t.config, t.credits_cost, t.is_active, t.is_featured, "
    "t.translations, t.created_at, t.updated_at, t.deleted_at, t.image_urls, t.usage_count, "
    "tt.name AS tool_type_name, "
    "tt.display_name AS tool_type_display_name, tt.translations AS tool_type_translations"
)
TOOL_FROM = "tools t JOIN tool_types tt ON tt.id = t.tool_type_id"
BANNER_COLUMNS = (
    "b.id::text AS id, b.title, b.description, b.thumbnail_asset_id::text AS thumbnail_asset_id, b.link, "
    "b.link_text, b.link_target, b.type, b.position, b.badge, b.badge_color, b.is_active, b.starts_at, "
    "b.ends_at, b.translations, b.created_at, b.updated_at, b.image_urls"
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
     is_featured, translations, image_urls, created_at, updated_at)
VALUES (%(id)s, %(slug)s, %(title)s, %(description)s, %(thumbnail_asset_id)s, %(tool_type_id)s, %(config)s,
        %(credits_cost)s, %(is_active)s, %(is_featured)s, %(translations)s, %(image_urls)s, %(now)s, %(now)s)
ON CONFLICT (slug) WHERE deleted_at IS NULL DO NOTHING
RETURNING id::text
"""
UPDATE_TYPE = """
UPDATE tool_types SET name = %(name)s, display_name = %(display_name)s, description = %(description)s,
    icon = %(icon)s, color = %(color)s, sort_order = %(sort_order)s, is_active = %(is_active)s,
    translations = %(translations)s, updated_at = %(now)s
WHERE id = %(id)s AND deleted_at IS NULL
"""
UPDATE_TOOL = """
UPDATE tools SET slug = %(slug)s, title = %(title)s, description = %(description)s,
    thumbnail_asset_id = %(thumbnail_asset_id)s, tool_type_id = %(tool_type_id)s, config = %(config)s,
    credits_cost = %(credits_cost)s, is_active = %(is_active)s, is_featured = %(is_featured)s,
    translations = %(translations)s, image_urls = %(image_urls)s, updated_at = %(now)s
WHERE id = %(id)s AND deleted_at IS NULL
"""
UPDATE_BANNER = """
UPDATE banners SET title = %(title)s, description = %(description)s,
    thumbnail_asset_id = %(thumbnail_asset_id)s, link = %(link)s, link_text = %(link_text)s,
    link_target = %(link_target)s, type = %(type)s, position = %(position)s, badge = %(badge)s,
    badge_color = %(badge_color)s, is_active = %(is_active)s, starts_at = %(starts_at)s,
    ends_at = %(ends_at)s, translations = %(translations)s, image_urls = %(image_urls)s, updated_at = %(now)s
WHERE id = %(id)s AND deleted_at IS NULL
"""
INSERT_BANNER = f"""
INSERT INTO banners AS b
    (id, title, description, thumbnail_asset_id, link, link_text, link_target, type, position, badge,
     badge_color, is_active, starts_at, ends_at, translations, image_urls, created_at, updated_at)
VALUES (%(id)s, %(title)s, %(description)s, %(thumbnail_asset_id)s, %(link)s, %(link_text)s, %(link_target)s,
        %(type)s, %(position)s, %(badge)s, %(badge_color)s, %(is_active)s, %(starts_at)s, %(ends_at)s,
        %(translations)s, %(image_urls)s, %(now)s, %(now)s)
ON CONFLICT (id) DO NOTHING
RETURNING {BANNER_COLUMNS}
"""


# --- cursors ------------------------------------------------------------------------------------------


def _cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """The key of a page's cursor; a forged one is refused as an invalid catalog entry (the code clients
    have always seen for it)."""
    try:
        return decode_cursor(cursor, *types)
    except InvalidCursor:
        raise InvalidCatalogEntry("cursor", "the cursor is invalid; start again without it") from None


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _lock_clause(lock: RowLock, table: str) -> str:
    return {None: "", "update": f" FOR UPDATE OF {table}", "share": f" FOR SHARE OF {table}"}[lock]


# --- records --------------------------------------------------------------------------------------------


class CatalogRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    # --- tool types ---------------------------------------------------------------------------------------

    async def add_tool_type(self, type_id: str, entry: ToolTypeEntry, now: datetime) -> ToolTypeRecord | None:
        """None when a live tool type has that name."""
        cursor = await self._conn.execute(INSERT_TYPE, {**_type_columns(entry), "id": type_id, "now": now})
        row = await cursor.fetchone()
        return None if row is None else _tool_type(row)

    async def tool_type(self, type_id: str, *, lock: RowLock = None) -> ToolTypeRecord | None:
        if _uuid_or_none(type_id) is None:
            return None
        cursor = await self._conn.execute(
            f"SELECT {TYPE_COLUMNS}, {TYPE_COUNTS} FROM tool_types tt WHERE tt.id = %s "
            f"AND tt.deleted_at IS NULL{_lock_clause(lock, 'tt')}",
            (type_id,),
        )
        row = await cursor.fetchone()
        return None if row is None else _tool_type(row)

    async def tool_type_by_name(self, name: str) -> ToolTypeRecord | None:
        cursor = await self._conn.execute(
            f"SELECT {TYPE_COLUMNS}, {TYPE_COUNTS} FROM tool_types tt WHERE tt.name = %s "
            "AND tt.deleted_at IS NULL",
            (name,),
        )
        row = await cursor.fetchone()
        return None if row is None else _tool_type(row)

    async def update_tool_type(self, type_id: str, entry: ToolTypeEntry, now: datetime) -> ToolTypeRecord:
        await self._unique_update(
            UPDATE_TYPE,
            {**_type_columns(entry), "id": type_id, "now": now},
            "tool_type_exists",
            f"a tool type named {entry.name!r} exists already",
        )
        return await _must_be_there(self.tool_type(type_id))

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
            "WHERE id = %(id)s AND deleted_at IS NULL RETURNING 1",
            {"id": type_id, "now": now},
        )
        return await cursor.fetchone() is not None

    async def tool_types_page(
        self, *, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[ToolTypeRecord], str | None]:
        conditions = ["tt.deleted_at IS NULL"]
        params: dict[str, object] = {"limit": limit + 1}
        if active is not None:
            conditions.append("tt.is_active = %(active)s")
            params["active"] = active
        if cursor:
            params["after_sort"], params["after_name"] = _cursor(cursor, int, str)
            conditions.append("(tt.sort_order, tt.name) > (%(after_sort)s, %(after_name)s)")
        rows = await (
            await self._conn.execute(
                f"SELECT {TYPE_COLUMNS}, {TYPE_COUNTS} FROM tool_types tt WHERE {' AND '.join(conditions)} "
                "ORDER BY tt.sort_order, tt.name LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        records = [_tool_type(row) for row in rows]
        return page_of(records, limit, key=lambda r: (r.entry.sort_order, r.entry.name))

    # --- tools ------------------------------------------------------------------------------------------

    async def add_tool(
        self, tool_id: str, entry: ToolEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> ToolRecord | None:
        """None when a live tool has that slug."""
        cursor = await self._conn.execute(
            INSERT_TOOL, {**_tool_columns(entry, image_urls), "id": tool_id, "now": now}
        )
        added = await cursor.fetchone()
        return None if added is None else await self.tool(added["id"])

    async def tool(
        self, tool_id: str, *, lock: RowLock = None, include_deleted: bool = False
    ) -> ToolRecord | None:
        if _uuid_or_none(tool_id) is None:
            return None
        live = "" if include_deleted else " AND t.deleted_at IS NULL"
        cursor = await self._conn.execute(
            f"SELECT {TOOL_COLUMNS} FROM {TOOL_FROM} WHERE t.id = %s{live}{_lock_clause(lock, 't')}",
            (tool_id,),
        )
        row = await cursor.fetchone()
        return None if row is None else _tool_record(row)

    async def count_use(self, tool_id: str) -> None:
        await self._conn.execute("UPDATE tools SET usage_count = usage_count + 1 WHERE id = %s", [tool_id])

    async def hold_tool(self, tool_id: str) -> bool:
        return await (await self.send_hold_tool(tool_id)).answer()

    async def send_hold_tool(self, tool_id: str) -> Sent[bool]:
        async def read(cursor: psycopg.AsyncCursor[Any]) -> bool:
            return await cursor.fetchone() is not None

        cursor = await self._conn.execute(
            "SELECT 1 FROM tools WHERE id = %s AND deleted_at IS NULL FOR KEY SHARE", (tool_id,)
        )
        return Sent(cursor, read)

    async def tool_record_by_slug(self, slug: str, *, active_only: bool = False) -> ToolRecord | None:
        active = " AND t.is_active" if active_only else ""
        cursor = await self._conn.execute(
            f"SELECT {TOOL_COLUMNS} FROM {TOOL_FROM} WHERE t.slug = %s AND t.deleted_at IS NULL{active}",
            (slug,),
        )
        row = await cursor.fetchone()
        return None if row is None else _tool_record(row)

    async def tool_by_slug(self, slug: str) -> Tool | None:
        """The live tool with that slug as the task saga uses it (an inactive one has `is_active` False)."""
        record = await self.tool_record_by_slug(slug)
        return None if record is None else record.as_tool()

    async def update_tool(
        self, tool_id: str, entry: ToolEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> ToolRecord:
        await self._unique_update(
            UPDATE_TOOL,
            {**_tool_columns(entry, image_urls), "id": tool_id, "now": now},
            "tool_exists",
            f"a tool with the slug {entry.slug!r} exists already",
        )
        return await _must_be_there(self.tool(tool_id))

    async def delete_tool(self, tool_id: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE tools SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false "
            "WHERE id = %(id)s AND deleted_at IS NULL RETURNING 1",
            {"id": tool_id, "now": now},
        )
        return await cursor.fetchone() is not None

    async def remove_tool(self, tool_id: str) -> bool:
        cursor = await self._conn.execute("DELETE FROM tools WHERE id = %s RETURNING 1", (tool_id,))
        return await cursor.fetchone() is not None

    async def tools_page(
        self,
        *,
        active: bool | None,
        type_name: str | None = None,
        query: str | None = None,
        featured: bool | None = None,
        deleted: bool | None = False,
        locales: Sequence[str] = (),
        limit: int,
        cursor: str | None,
    ) -> tuple[list[ToolRecord], str | None]:
        """Featured first, then by slug (and id). `query` matches title or description (English, or the
        texts of `locales`) as a literal substring: `%`, `_` and `\\` in it are escaped. `deleted`: live
        tools (False), soft-deleted ones (True), both (None)."""
        conditions = {
            False: ["t.deleted_at IS NULL"],
            True: ["t.deleted_at IS NOT NULL"],
            None: [],
        }[deleted]
        params: dict[str, object] = {"limit": limit + 1}
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
            # (0 featured, 1 not, slug, id): the kit's cursors carry numbers and text, not booleans.
            unfeatured, params["after_slug"], params["after_id"] = _cursor(cursor, int, str, uuid.UUID)
            params["after_unfeatured"] = unfeatured == 1
            conditions.append(
                "((NOT t.is_featured), t.slug, t.id) "
                "> (%(after_unfeatured)s, %(after_slug)s, %(after_id)s::uuid)"
            )
        rows = await (
            await self._conn.execute(
                f"SELECT {TOOL_COLUMNS} FROM {TOOL_FROM} WHERE {' AND '.join(conditions) or 'TRUE'} "
                "ORDER BY (NOT t.is_featured), t.slug, t.id LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        records = [_tool_record(row) for row in rows]
        return page_of(records, limit, key=lambda r: (0 if r.entry.is_featured else 1, r.entry.slug, r.id))

    # --- banners ----------------------------------------------------------------------------------------

    async def add_banner(
        self, banner_id: str, entry: BannerEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> BannerRecord | None:
        """None when a banner with that id exists (a deleted one too)."""
        cursor = await self._conn.execute(
            INSERT_BANNER, {**_banner_columns(entry, image_urls), "id": banner_id, "now": now}
        )
        row = await cursor.fetchone()
        return None if row is None else _banner(row)

    async def banner(self, banner_id: str, *, lock: RowLock = None) -> BannerRecord | None:
        if _uuid_or_none(banner_id) is None:
            return None
        cursor = await self._conn.execute(
            f"SELECT {BANNER_COLUMNS} FROM banners b WHERE b.id = %s AND b.deleted_at IS NULL"
            f"{_lock_clause(lock, 'b')}",
            (banner_id,),
        )
        row = await cursor.fetchone()
        return None if row is None else _banner(row)

    async def update_banner(
        self, banner_id: str, entry: BannerEntry, now: datetime, image_urls: Mapping[str, str]
    ) -> BannerRecord:
        await self._conn.execute(
            UPDATE_BANNER, {**_banner_columns(entry, image_urls), "id": banner_id, "now": now}
        )
        return await _must_be_there(self.banner(banner_id))

    async def delete_banner(self, banner_id: str, now: datetime) -> bool:
        cursor = await self._conn.execute(
            "UPDATE banners SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false "
            "WHERE id = %(id)s AND deleted_at IS NULL RETURNING 1",
            {"id": banner_id, "now": now},
        )
        return await cursor.fetchone() is not None

    async def banners_page(
        self,
        *,
        live_at: datetime | None,
        banner_type: str | None = None,
        active: bool | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[BannerRecord], str | None]:
        """Main banners first, then by position. `live_at`: only those shown at that moment (active and
        `starts_at <= live_at < ends_at`, a null bound open)."""
        conditions = ["b.deleted_at IS NULL"]
        params: dict[str, object] = {"limit": limit + 1}
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
            rank, position, after_id = _cursor(cursor, int, int, uuid.UUID)
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
        records = [_banner(row) for row in rows]
        return page_of(
            records, limit, key=lambda r: (0 if r.entry.type == "main" else 1, r.entry.position, r.id)
        )

    # --- helpers ----------------------------------------------------------------------------------------

    async def _unique_update(self, sql: str, params: Mapping[str, object], code: str, message: str) -> None:
        # A savepoint: the clash is reported and the caller's transaction stays usable (it rolls back anyway).
        try:
            async with self._conn.transaction():
                await self._conn.execute(sql, params)
        except psycopg.errors.UniqueViolation:
            raise CatalogConflict(code, message) from None


async def _must_be_there(read: Awaitable[RecordT | None]) -> RecordT:
    """A row this transaction just wrote (and holds locked), read back."""
    record = await read
    if record is None:
        raise LookupError("a row written in this transaction is gone")
    return record


# --- entries → columns ---------------------------------------------------------------------------------
# The columns are named like the entries' fields; JSON documents are converted.


def _type_columns(entry: ToolTypeEntry) -> dict[str, object]:
    return to_row(entry, translations=Jsonb(entry.translations))


def _tool_columns(entry: ToolEntry, image_urls: Mapping[str, str]) -> dict[str, object]:
    return to_row(
        entry,
        config=Jsonb(config_to_json(entry.config)),
        credits_cost=entry.credits_cost,
        translations=Jsonb(entry.translations),
        image_urls=Jsonb(dict(image_urls)),
    )


def _banner_columns(entry: BannerEntry, image_urls: Mapping[str, str]) -> dict[str, object]:
    return to_row(entry, translations=Jsonb(entry.translations), image_urls=Jsonb(dict(image_urls)))


# --- rows → records ------------------------------------------------------------------------------------


def _tool_type(row: Row) -> ToolTypeRecord:
    return from_row(ToolTypeRecord, row, entry=from_row(ToolTypeEntry, row))


def _tool_record(row: Row) -> ToolRecord:
    # The config is stored in canonical form (checked on the way in) and parsed back into the domain's model.
    entry = from_row(ToolEntry, row, config=parse_tool_config(row["config"]))
    tool_type = ToolTypeLabel(
        id=row["tool_type_id"],
        name=row["tool_type_name"],
        display_name=row["tool_type_display_name"],
        translations=row["tool_type_translations"],
    )
    return from_row(ToolRecord, row, entry=entry, tool_type=tool_type)


def _banner(row: Row) -> BannerRecord:
    return from_row(BannerRecord, row, entry=from_row(BannerEntry, row))
