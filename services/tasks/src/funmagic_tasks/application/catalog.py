"""The catalog use cases: admin CRUD of tool types, tools and banners, and the public reads.

Every change is checked whole by the domain (the stored entry with the change applied), written in one
unit of work, and announced in the same transaction (`ToolChanged`, `BannerChanged`) through the injected
`publish`. A tool's config names providers; each one but the built-in `local` is checked with the injected
`provider_exists` before anything is written (the providers service answers; a provider that does not
exist is a 422 on `config.steps[i].provider.name`).

Public reads show only what users may see: active, live tools (without provider details), active tool
types, banners inside their time window; texts come in the requested locale with an English fallback.
Whether a tool is shown depends on the tool alone; an inactive tool type only drops out of the list of
tool types.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.tasks.events import BannerChanged, CatalogAction, ToolChanged
from funmagic_kit.logs import get_logger
from funmagic_tasks.domain.catalog import (
    LOCAL_PROVIDER,
    CatalogConflict,
    CatalogNotFound,
    InvalidCatalogEntry,
    Tool,
    ToolConfig,
    check_banner,
    check_slug,
    check_tool,
    check_tool_type,
    locale_chain,
    localize,
    localize_config,
    parse_tool_config,
    public_config,
)

__all__ = ["Catalog", "ProviderExists"]

log = get_logger(__name__)

Publish = Callable[[Any, Sequence[IntegrationEvent]], Awaitable[None]]
ProviderExists = Callable[[str], Awaitable[bool]]
"""`provider_exists(name)`: whether the providers service can run steps with that (web-scope) provider."""


class Clock(Protocol):
    def now(self) -> datetime: ...


TOOL_TYPE_FIELDS = ("name", "display_name", "description", "icon", "color", "sort_order", "is_active",
                    "translations")  # fmt: skip
TOOL_FIELDS = ("slug", "title", "description", "thumbnail_asset_id", "tool_type_id", "config", "is_active",
               "is_featured", "translations")  # fmt: skip
BANNER_FIELDS = ("title", "description", "thumbnail_asset_id", "link", "link_text", "link_target",
                 "type", "position", "badge", "badge_color", "is_active", "starts_at", "ends_at",
                 "translations")  # fmt: skip


class Catalog:
    def __init__(
        self,
        *,
        uow: Callable[[], Any],
        records: Callable[[Any], Any],
        publish: Publish,
        provider_exists: ProviderExists,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._records = records
        self._publish = publish
        self._provider_exists = provider_exists
        self._clock = clock

    # --- tool types (admin) -----------------------------------------------------------------------------

    async def create_tool_type(self, **fields: Any) -> dict[str, Any]:
        values = check_tool_type(_only(fields, TOOL_TYPE_FIELDS))
        async with self._uow() as uow:
            row = await self._records(uow.conn).add_tool_type(
                {**values, "id": str(uuid.uuid4()), "now": self._clock.now()}
            )
        if row is None:
            raise CatalogConflict("tool_type_exists", f"a tool type named {values['name']!r} exists already")
        log.info("tool type created", extra={"tool_type": row["name"]})
        return _admin_type_view(row)

    async def admin_tool_types(
        self, *, active: bool | None = None, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        async with self._uow() as uow:
            rows, next_cursor = await self._records(uow.conn).tool_types_page(
                active=active, limit=limit, cursor=cursor
            )
        return {"items": [_admin_type_view(r) for r in rows], "next_cursor": next_cursor}

    async def admin_tool_type(self, type_id: str) -> dict[str, Any]:
        async with self._uow() as uow:
            row = await self._records(uow.conn).tool_type(type_id)
        if row is None:
            raise CatalogNotFound("no such tool type")
        return _admin_type_view(row)

    async def tool_type_by_name(self, name: str) -> dict[str, Any] | None:
        async with self._uow() as uow:
            row = await self._records(uow.conn).tool_type_by_name(name)
        return None if row is None else _admin_type_view(row)

    async def update_tool_type(self, type_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        changes = _only(changes, TOOL_TYPE_FIELDS)
        async with self._uow() as uow:
            records = self._records(uow.conn)
            row = await records.tool_type(type_id, lock="update")
            if row is None:
                raise CatalogNotFound("no such tool type")
            values = check_tool_type({**_stored_type(row), **changes})
            changed = {k: v for k, v in values.items() if k in changes and v != row[k]}
            row = await records.update_tool_type(type_id, changed, self._clock.now()) if changed else row
        log.info("tool type updated", extra={"tool_type": row["name"], "fields": sorted(changed)})
        return _admin_type_view(row)

    async def delete_tool_type(self, type_id: str) -> None:
        async with self._uow() as uow:
            records = self._records(uow.conn)
            row = await records.tool_type(type_id, lock="update")
            if row is None:
                raise CatalogNotFound("no such tool type")
            # Counted after the lock, in a statement of its own: it sees a tool committed while we waited.
            in_use = await records.tools_using(type_id)
            if in_use:
                raise CatalogConflict(
                    "tool_type_in_use",
                    f"{in_use} tool(s) use the tool type {row['name']!r}; move or delete them first",
                )
            await records.delete_tool_type(type_id, self._clock.now())
        log.info("tool type deleted", extra={"tool_type": row["name"]})

    # --- tools (admin) ----------------------------------------------------------------------------------

    async def create_tool(self, **fields: Any) -> dict[str, Any]:
        values, config = check_tool(_only(fields, TOOL_FIELDS))
        await self._check_providers(config)
        async with self._uow() as uow:
            records = self._records(uow.conn)
            await self._live_type(records, values["tool_type_id"])
            row = await records.add_tool({**values, "id": str(uuid.uuid4()), "now": self._clock.now()})
            if row is None:
                raise CatalogConflict(
                    "tool_exists", f"a tool with the slug {values['slug']!r} exists already"
                )
            await self._tool_changed(uow.conn, row, "created")
        log.info("tool created", extra={"tool": row["slug"]})
        return _admin_tool_view(row)

    async def admin_tools(
        self,
        *,
        type: str | None = None,
        q: str | None = None,
        active: bool | None = None,
        featured: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Live tools, inactive ones too unless `active` says otherwise."""
        async with self._uow() as uow:
            rows, next_cursor = await self._records(uow.conn).tools_page(
                active=active, type_name=type, query=q, featured=featured, limit=limit, cursor=cursor
            )
        return {"items": [_admin_tool_view(r) for r in rows], "next_cursor": next_cursor}

    async def admin_tool(self, tool_id: str) -> dict[str, Any]:
        async with self._uow() as uow:
            row = await self._records(uow.conn).tool(tool_id)
        if row is None:
            raise CatalogNotFound("no such tool")
        return _admin_tool_view(row)

    async def admin_tool_by_slug(self, slug: str) -> dict[str, Any] | None:
        async with self._uow() as uow:
            row = await self._records(uow.conn).tool_row_by_slug(slug)
        return None if row is None else _admin_tool_view(row)

    async def update_tool(self, tool_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        changes = _only(changes, TOOL_FIELDS)
        if changes.get("config") is not None:
            # Before the transaction: a call to the providers service holds no lock and no connection.
            await self._check_providers(parse_tool_config(changes["config"]))
        async with self._uow() as uow:
            records = self._records(uow.conn)
            row = await records.tool(tool_id, for_update=True)
            if row is None:
                raise CatalogNotFound("no such tool")
            values, _ = check_tool({**_stored_tool(row), **changes})
            if values["tool_type_id"] != row["tool_type_id"]:
                await self._live_type(records, values["tool_type_id"])
            stored = {**_stored_tool(row), "credits_cost": row["credits_cost"]}
            # The price follows the config: it changes when (and only when) the config does.
            changed = {
                k: v for k, v in values.items() if (k in changes or k == "credits_cost") and v != stored[k]
            }
            if changed:
                row = await records.update_tool(tool_id, changed, self._clock.now())
                await self._tool_changed(uow.conn, row, "updated")
        log.info("tool updated", extra={"tool": row["slug"], "fields": sorted(changed)})
        return _admin_tool_view(row)

    async def delete_tool(self, tool_id: str) -> None:
        """Soft delete: tasks that ran it keep their history, its slug is free again, new tasks are
        refused."""
        async with self._uow() as uow:
            records = self._records(uow.conn)
            row = await records.tool(tool_id, for_update=True)
            if row is None or not await records.delete_tool(tool_id, self._clock.now()):
                raise CatalogNotFound("no such tool")
            await self._tool_changed(uow.conn, row, "deleted")
        log.info("tool deleted", extra={"tool": row["slug"]})

    # --- banners (admin) --------------------------------------------------------------------------------

    async def create_banner(self, *, banner_id: str | None = None, **fields: Any) -> dict[str, Any]:
        """`banner_id` is for the seed (a fixed id makes it idempotent); the API leaves it out."""
        values = check_banner(_only(fields, BANNER_FIELDS))
        async with self._uow() as uow:
            row = await self._records(uow.conn).add_banner(
                {**values, "id": banner_id or str(uuid.uuid4()), "now": self._clock.now()}
            )
            if row is None:
                raise CatalogConflict("banner_exists", "a banner with that id exists (or existed)")
            await self._publish(uow.conn, [BannerChanged(banner_id=row["id"], action="created")])
        log.info("banner created", extra={"banner_id": row["id"]})
        return _admin_banner_view(row)

    async def admin_banners(
        self,
        *,
        type: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        async with self._uow() as uow:
            rows, next_cursor = await self._records(uow.conn).banners_page(
                live_at=None, banner_type=type, active=active, limit=limit, cursor=cursor
            )
        return {"items": [_admin_banner_view(r) for r in rows], "next_cursor": next_cursor}

    async def admin_banner(self, banner_id: str) -> dict[str, Any]:
        async with self._uow() as uow:
            row = await self._records(uow.conn).banner(banner_id)
        if row is None:
            raise CatalogNotFound("no such banner")
        return _admin_banner_view(row)

    async def update_banner(self, banner_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        changes = _only(changes, BANNER_FIELDS)
        async with self._uow() as uow:
            records = self._records(uow.conn)
            row = await records.banner(banner_id, for_update=True)
            if row is None:
                raise CatalogNotFound("no such banner")
            values = check_banner({**_stored_banner(row), **changes})
            changed = {k: v for k, v in values.items() if k in changes and v != row[k]}
            if changed:
                row = await records.update_banner(banner_id, changed, self._clock.now())
                await self._publish(uow.conn, [BannerChanged(banner_id=banner_id, action="updated")])
        return _admin_banner_view(row)

    async def delete_banner(self, banner_id: str) -> None:
        async with self._uow() as uow:
            records = self._records(uow.conn)
            if not await records.delete_banner(banner_id, self._clock.now()):
                raise CatalogNotFound("no such banner")
            await self._publish(uow.conn, [BannerChanged(banner_id=banner_id, action="deleted")])
        log.info("banner deleted", extra={"banner_id": banner_id})

    # --- public reads -----------------------------------------------------------------------------------

    async def tool_types(
        self, *, locale: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        locale_chain(locale)  # an invalid locale is refused before any query
        async with self._uow() as uow:
            rows, next_cursor = await self._records(uow.conn).tool_types_page(
                active=True, limit=limit, cursor=cursor
            )
        return {"items": [_public_type_view(r, locale) for r in rows], "next_cursor": next_cursor}

    async def tools(
        self,
        *,
        type: str | None = None,
        q: str | None = None,
        featured: bool | None = None,
        locale: str | None = None,
        limit: int = 24,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        chain = locale_chain(locale)
        async with self._uow() as uow:
            rows, next_cursor = await self._records(uow.conn).tools_page(
                active=True, type_name=type, query=q, featured=featured, locales=chain, limit=limit,
                cursor=cursor,
            )  # fmt: skip
        return {"items": [_public_tool_view(r, locale) for r in rows], "next_cursor": next_cursor}

    async def tool(self, slug: str, *, locale: str | None = None) -> dict[str, Any]:
        """An active, live tool as users see it, with its (public, localised) config."""
        locale_chain(locale)
        try:
            check_slug(slug)
        except InvalidCatalogEntry:
            raise CatalogNotFound("no such tool") from None
        async with self._uow() as uow:
            row = await self._records(uow.conn).tool_row_by_slug(slug, active_only=True)
        if row is None:
            raise CatalogNotFound("no such tool")
        view = _public_tool_view(row, locale)
        view["config"] = localize_config(
            public_config(parse_tool_config(row["config"])), row["translations"], locale
        )
        return view

    async def tool_by_slug(self, slug: str) -> Tool | None:
        """The live tool as the task saga uses it (inactive ones too, with `is_active` False)."""
        async with self._uow() as uow:
            return await self._records(uow.conn).tool_by_slug(slug)

    async def banners(
        self,
        *,
        type: str | None = None,
        locale: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """Active banners inside their window now: main ones first, then by position."""
        locale_chain(locale)
        async with self._uow() as uow:
            rows, next_cursor = await self._records(uow.conn).banners_page(
                live_at=self._clock.now(), banner_type=type, limit=limit, cursor=cursor
            )
        return {"items": [_public_banner_view(r, locale) for r in rows], "next_cursor": next_cursor}

    # --- helpers ----------------------------------------------------------------------------------------

    async def _check_providers(self, config: ToolConfig) -> None:
        checked: dict[str, bool] = {LOCAL_PROVIDER: True}
        for index, step in enumerate(config.steps):
            name = step.provider.name
            if name not in checked:
                checked[name] = await self._provider_exists(name)
            if not checked[name]:
                raise InvalidCatalogEntry(
                    f"config.steps[{index}].provider.name", f"no provider named {name!r} is configured"
                )

    async def _live_type(self, records: Any, type_id: str) -> dict[str, Any]:
        # FOR SHARE: a concurrent delete of the tool type waits for this transaction, then sees the tool.
        row = await records.tool_type(type_id, lock="share")
        if row is None:
            raise InvalidCatalogEntry("tool_type_id", "no such tool type")
        return row

    async def _tool_changed(self, conn: Any, row: Mapping[str, Any], action: CatalogAction) -> None:
        await self._publish(conn, [ToolChanged(tool_id=row["id"], slug=row["slug"], action=action)])


# --- views ----------------------------------------------------------------------------------------------


def _only(fields: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidCatalogEntry(unknown[0], "unknown field")
    return dict(fields)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _stored_type(row: Mapping[str, Any]) -> dict[str, Any]:
    return {field: row[field] for field in TOOL_TYPE_FIELDS}


def _stored_tool(row: Mapping[str, Any]) -> dict[str, Any]:
    return {field: row[field] for field in TOOL_FIELDS}


def _stored_banner(row: Mapping[str, Any]) -> dict[str, Any]:
    return {field: row[field] for field in BANNER_FIELDS}


def _admin_type_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **_stored_type(row),
        "id": row["id"],
        "tools_count": int(row["tools_count"]),
        "active_tools_count": int(row["active_tools_count"]),
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
    }


def _public_type_view(row: Mapping[str, Any], locale: str | None) -> dict[str, Any]:
    base = {
        "id": row["id"], "name": row["name"], "display_name": row["display_name"],
        "description": row["description"], "icon": row["icon"], "color": row["color"],
        "sort_order": row["sort_order"],
    }  # fmt: skip
    return localize(base, row["translations"], locale, ("display_name", "description"))


def _tool_type_of(row: Mapping[str, Any], locale: str | None = None) -> dict[str, Any]:
    base = {
        "id": row["tool_type_id"],
        "name": row["tool_type_name"],
        "display_name": row["tool_type_display_name"],
    }
    return localize(base, row["tool_type_translations"], locale, ("display_name",))


def _admin_tool_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **_stored_tool(row),
        "id": row["id"],
        "credits_cost": row["credits_cost"],
        "tool_type": _tool_type_of(row),
        "created_at": _time(row["created_at"]),
        "updated_at": _time(row["updated_at"]),
    }


def _public_tool_view(row: Mapping[str, Any], locale: str | None) -> dict[str, Any]:
    base = {
        "id": row["id"], "slug": row["slug"], "title": row["title"], "description": row["description"],
        "thumbnail_asset_id": row["thumbnail_asset_id"], "credits_cost": row["credits_cost"],
        "is_featured": row["is_featured"], "tool_type": _tool_type_of(row, locale),
    }  # fmt: skip
    return localize(base, row["translations"], locale, ("title", "description"))


def _admin_banner_view(row: Mapping[str, Any]) -> dict[str, Any]:
    view = {**_stored_banner(row), "id": row["id"]}
    for field in ("starts_at", "ends_at", "created_at", "updated_at"):
        view[field] = _time(row[field])
    return view


def _public_banner_view(row: Mapping[str, Any], locale: str | None) -> dict[str, Any]:
    base = {
        "id": row["id"], "title": row["title"], "description": row["description"],
        "thumbnail_asset_id": row["thumbnail_asset_id"], "link": row["link"], "link_text": row["link_text"],
        "link_target": row["link_target"], "type": row["type"], "position": row["position"],
        "badge": row["badge"], "badge_color": row["badge_color"],
        "starts_at": _time(row["starts_at"]), "ends_at": _time(row["ends_at"]),
    }  # fmt: skip
    return localize(base, row["translations"], locale, ("title", "description", "link_text", "badge"))
