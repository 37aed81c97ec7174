"""The catalog use cases: admin CRUD of tool types, tools and banners, and the public reads.

Every change is checked whole by the domain (the stored entry with the change applied), written in one
unit of work, and announced in the same transaction (`ToolChanged`, `BannerChanged`, published through the
unit of work). A tool's config names providers; each one but the built-in `local` is checked with the
`Providers` port before anything is written (the providers service answers; a provider that does not
exist is a 422 on `config.steps[i].provider.name`).

Public reads show only what users may see: active, live tools (without provider details), active tool
types, banners inside their time window; texts come in the requested locale with an English fallback.
Whether a tool is shown depends on the tool alone; an inactive tool type only drops out of the list of
tool types.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from funmagic_contracts.tasks.events import BannerChanged, CatalogAction, ToolChanged
from funmagic_kit.clock import Clock
from funmagic_kit.logs import get_logger
from funmagic_tasks.application.ports import CatalogStore, Providers, TasksUnitOfWork, UnitOfWorkFactory
from funmagic_tasks.domain.catalog import (
    BANNER_FIELDS,
    LOCAL_PROVIDER,
    TOOL_FIELDS,
    TOOL_TYPE_FIELDS,
    BannerRecord,
    CatalogConflict,
    CatalogNotFound,
    InvalidCatalogEntry,
    Tool,
    ToolConfig,
    ToolRecord,
    ToolTypeLabel,
    ToolTypeRecord,
    changed_fields,
    check_banner,
    check_slug,
    check_tool,
    check_tool_type,
    config_to_json,
    locale_chain,
    localize,
    localize_config,
    parse_tool_config,
    public_config,
)
from funmagic_tasks.domain.json_values import JsonObject

__all__ = ["Catalog"]

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class Catalog:
    uow: UnitOfWorkFactory
    providers: Providers
    clock: Clock

    # --- tool types (admin) -----------------------------------------------------------------------------

    async def create_tool_type(self, **fields: object) -> JsonObject:
        entry = check_tool_type(_only(fields, TOOL_TYPE_FIELDS))
        async with self.uow() as uow:
            record = await uow.catalog.add_tool_type(str(uuid.uuid4()), entry, self.clock.now())
        if record is None:
            raise CatalogConflict("tool_type_exists", f"a tool type named {entry.name!r} exists already")
        log.info("tool type created", extra={"tool_type": entry.name})
        return _admin_type_view(record)

    async def admin_tool_types(
        self, *, active: bool | None = None, limit: int = 100, cursor: str | None = None
    ) -> JsonObject:
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.tool_types_page(
                active=active, limit=limit, cursor=cursor
            )
        return {"items": [_admin_type_view(r) for r in records], "next_cursor": next_cursor}

    async def admin_tool_type(self, type_id: str) -> JsonObject:
        async with self.uow() as uow:
            record = await uow.catalog.tool_type(type_id)
        if record is None:
            raise CatalogNotFound("no such tool type")
        return _admin_type_view(record)

    async def tool_type_by_name(self, name: str) -> JsonObject | None:
        async with self.uow() as uow:
            record = await uow.catalog.tool_type_by_name(name)
        return None if record is None else _admin_type_view(record)

    async def update_tool_type(self, type_id: str, changes: Mapping[str, object]) -> JsonObject:
        changes = _only(changes, TOOL_TYPE_FIELDS)
        async with self.uow() as uow:
            record = await uow.catalog.tool_type(type_id, lock="update")
            if record is None:
                raise CatalogNotFound("no such tool type")
            entry = check_tool_type({**record.entry.as_fields(), **changes})
            changed = changed_fields(record.entry, entry, changes)
            if changed:
                record = await uow.catalog.update_tool_type(type_id, entry, self.clock.now())
        log.info("tool type updated", extra={"tool_type": record.entry.name, "fields": changed})
        return _admin_type_view(record)

    async def delete_tool_type(self, type_id: str) -> None:
        async with self.uow() as uow:
            record = await uow.catalog.tool_type(type_id, lock="update")
            if record is None:
                raise CatalogNotFound("no such tool type")
            # Counted after the lock, in a statement of its own: it sees a tool committed while we waited.
            in_use = await uow.catalog.tools_using(type_id)
            if in_use:
                raise CatalogConflict(
                    "tool_type_in_use",
                    f"{in_use} tool(s) use the tool type {record.entry.name!r}; move or delete them first",
                )
            await uow.catalog.delete_tool_type(type_id, self.clock.now())
        log.info("tool type deleted", extra={"tool_type": record.entry.name})

    # --- tools (admin) ----------------------------------------------------------------------------------

    async def create_tool(self, **fields: object) -> JsonObject:
        entry = check_tool(_only(fields, TOOL_FIELDS))
        await self._check_providers(entry.config)
        async with self.uow() as uow:
            await _live_type(uow.catalog, entry.tool_type_id)
            record = await uow.catalog.add_tool(str(uuid.uuid4()), entry, self.clock.now())
            if record is None:
                raise CatalogConflict("tool_exists", f"a tool with the slug {entry.slug!r} exists already")
            _tool_changed(uow, record, "created")
        log.info("tool created", extra={"tool": entry.slug})
        return _admin_tool_view(record)

    async def admin_tools(
        self,
        *,
        type: str | None = None,
        q: str | None = None,
        active: bool | None = None,
        featured: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JsonObject:
        """Live tools, inactive ones too unless `active` says otherwise."""
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.tools_page(
                active=active, type_name=type, query=q, featured=featured, limit=limit, cursor=cursor
            )
        return {"items": [_admin_tool_view(r) for r in records], "next_cursor": next_cursor}

    async def admin_tool(self, tool_id: str) -> JsonObject:
        async with self.uow() as uow:
            record = await uow.catalog.tool(tool_id)
        if record is None:
            raise CatalogNotFound("no such tool")
        return _admin_tool_view(record)

    async def admin_tool_by_slug(self, slug: str) -> JsonObject | None:
        async with self.uow() as uow:
            record = await uow.catalog.tool_record_by_slug(slug)
        return None if record is None else _admin_tool_view(record)

    async def update_tool(self, tool_id: str, changes: Mapping[str, object]) -> JsonObject:
        changes = _only(changes, TOOL_FIELDS)
        if changes.get("config") is not None:
            # Before the transaction: a call to the providers service holds no lock and no connection.
            await self._check_providers(parse_tool_config(changes["config"]))
        async with self.uow() as uow:
            record = await uow.catalog.tool(tool_id, lock="update")
            if record is None:
                raise CatalogNotFound("no such tool")
            entry = check_tool({**record.entry.as_fields(), **changes})
            if entry.tool_type_id != record.entry.tool_type_id:
                await _live_type(uow.catalog, entry.tool_type_id)
            changed = changed_fields(record.entry, entry, changes)
            # The price follows the config: it changes when (and only when) the config does.
            if entry.credits_cost != record.credits_cost:
                changed = sorted({*changed, "credits_cost"})
            if changed:
                record = await uow.catalog.update_tool(tool_id, entry, self.clock.now())
                _tool_changed(uow, record, "updated")
        log.info("tool updated", extra={"tool": record.entry.slug, "fields": changed})
        return _admin_tool_view(record)

    async def delete_tool(self, tool_id: str) -> None:
        """Soft delete: tasks that ran it keep their history, its slug is free again, new tasks are
        refused."""
        async with self.uow() as uow:
            record = await uow.catalog.tool(tool_id, lock="update")
            if record is None or not await uow.catalog.delete_tool(tool_id, self.clock.now()):
                raise CatalogNotFound("no such tool")
            _tool_changed(uow, record, "deleted")
        log.info("tool deleted", extra={"tool": record.entry.slug})

    # --- banners (admin) --------------------------------------------------------------------------------

    async def create_banner(self, *, banner_id: str | None = None, **fields: object) -> JsonObject:
        """`banner_id` is for the seed (a fixed id makes it idempotent); the API leaves it out."""
        entry = check_banner(_only(fields, BANNER_FIELDS))
        async with self.uow() as uow:
            record = await uow.catalog.add_banner(banner_id or str(uuid.uuid4()), entry, self.clock.now())
            if record is None:
                raise CatalogConflict("banner_exists", "a banner with that id exists (or existed)")
            uow.publish(BannerChanged(banner_id=record.id, action="created"))
        log.info("banner created", extra={"banner_id": record.id})
        return _admin_banner_view(record)

    async def admin_banners(
        self,
        *,
        type: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JsonObject:
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.banners_page(
                live_at=None, banner_type=type, active=active, limit=limit, cursor=cursor
            )
        return {"items": [_admin_banner_view(r) for r in records], "next_cursor": next_cursor}

    async def admin_banner(self, banner_id: str) -> JsonObject:
        async with self.uow() as uow:
            record = await uow.catalog.banner(banner_id)
        if record is None:
            raise CatalogNotFound("no such banner")
        return _admin_banner_view(record)

    async def update_banner(self, banner_id: str, changes: Mapping[str, object]) -> JsonObject:
        changes = _only(changes, BANNER_FIELDS)
        async with self.uow() as uow:
            record = await uow.catalog.banner(banner_id, lock="update")
            if record is None:
                raise CatalogNotFound("no such banner")
            entry = check_banner({**record.entry.as_fields(), **changes})
            if changed_fields(record.entry, entry, changes):
                record = await uow.catalog.update_banner(banner_id, entry, self.clock.now())
                uow.publish(BannerChanged(banner_id=banner_id, action="updated"))
        return _admin_banner_view(record)

    async def delete_banner(self, banner_id: str) -> None:
        async with self.uow() as uow:
            if not await uow.catalog.delete_banner(banner_id, self.clock.now()):
                raise CatalogNotFound("no such banner")
            uow.publish(BannerChanged(banner_id=banner_id, action="deleted"))
        log.info("banner deleted", extra={"banner_id": banner_id})

    # --- public reads -----------------------------------------------------------------------------------

    async def tool_types(
        self, *, locale: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> JsonObject:
        locale_chain(locale)  # an invalid locale is refused before any query
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.tool_types_page(active=True, limit=limit, cursor=cursor)
        return {"items": [_public_type_view(r, locale) for r in records], "next_cursor": next_cursor}

    async def tools(
        self,
        *,
        type: str | None = None,
        q: str | None = None,
        featured: bool | None = None,
        locale: str | None = None,
        limit: int = 24,
        cursor: str | None = None,
    ) -> JsonObject:
        chain = locale_chain(locale)
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.tools_page(
                active=True, type_name=type, query=q, featured=featured, locales=chain, limit=limit,
                cursor=cursor,
            )  # fmt: skip
        return {"items": [_public_tool_view(r, locale) for r in records], "next_cursor": next_cursor}

    async def tool(self, slug: str, *, locale: str | None = None) -> JsonObject:
        """An active, live tool as users see it, with its (public, localised) config."""
        locale_chain(locale)
        try:
            check_slug(slug)
        except InvalidCatalogEntry:
            raise CatalogNotFound("no such tool") from None
        async with self.uow() as uow:
            record = await uow.catalog.tool_record_by_slug(slug, active_only=True)
        if record is None:
            raise CatalogNotFound("no such tool")
        view = _public_tool_view(record, locale)
        view["config"] = localize_config(
            public_config(record.entry.config), record.entry.translations, locale
        )
        return view

    async def tool_by_slug(self, slug: str) -> Tool | None:
        """The live tool as the task saga uses it (inactive ones too, with `is_active` False)."""
        async with self.uow() as uow:
            return await uow.catalog.tool_by_slug(slug)

    async def banners(
        self,
        *,
        type: str | None = None,
        locale: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JsonObject:
        """Active banners inside their window now: main ones first, then by position."""
        locale_chain(locale)
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.banners_page(
                live_at=self.clock.now(), banner_type=type, limit=limit, cursor=cursor
            )
        return {"items": [_public_banner_view(r, locale) for r in records], "next_cursor": next_cursor}

    # --- helpers ----------------------------------------------------------------------------------------

    async def _check_providers(self, config: ToolConfig) -> None:
        checked: dict[str, bool] = {LOCAL_PROVIDER: True}
        for index, step in enumerate(config.steps):
            name = step.provider.name
            if name not in checked:
                checked[name] = await self.providers.exists(name)
            if not checked[name]:
                raise InvalidCatalogEntry(
                    f"config.steps[{index}].provider.name", f"no provider named {name!r} is configured"
                )


async def _live_type(catalog: CatalogStore, type_id: str) -> ToolTypeRecord:
    # FOR SHARE: a concurrent delete of the tool type waits for this transaction, then sees the tool.
    record = await catalog.tool_type(type_id, lock="share")
    if record is None:
        raise InvalidCatalogEntry("tool_type_id", "no such tool type")
    return record


def _tool_changed(uow: TasksUnitOfWork, record: ToolRecord, action: CatalogAction) -> None:
    uow.publish(ToolChanged(tool_id=record.id, slug=record.entry.slug, action=action))


def _only(fields: Mapping[str, object], allowed: Sequence[str]) -> dict[str, object]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidCatalogEntry(unknown[0], "unknown field")
    return dict(fields)


# --- views ----------------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _admin_type_view(record: ToolTypeRecord) -> JsonObject:
    entry = record.entry
    return {
        "name": entry.name,
        "display_name": entry.display_name,
        "description": entry.description,
        "icon": entry.icon,
        "color": entry.color,
        "sort_order": entry.sort_order,
        "is_active": entry.is_active,
        "translations": entry.translations,
        "id": record.id,
        "tools_count": record.tools_count,
        "active_tools_count": record.active_tools_count,
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
    }


def _public_type_view(record: ToolTypeRecord, locale: str | None) -> JsonObject:
    entry = record.entry
    base: JsonObject = {
        "id": record.id,
        "name": entry.name,
        "display_name": entry.display_name,
        "description": entry.description,
        "icon": entry.icon,
        "color": entry.color,
        "sort_order": entry.sort_order,
    }
    return localize(base, entry.translations, locale, ("display_name", "description"))


def _tool_type_of(label: ToolTypeLabel, locale: str | None = None) -> JsonObject:
    base: JsonObject = {"id": label.id, "name": label.name, "display_name": label.display_name}
    return localize(base, label.translations, locale, ("display_name",))


def _admin_tool_view(record: ToolRecord) -> JsonObject:
    entry = record.entry
    return {
        "slug": entry.slug,
        "title": entry.title,
        "description": entry.description,
        "thumbnail_asset_id": entry.thumbnail_asset_id,
        "tool_type_id": entry.tool_type_id,
        "config": config_to_json(entry.config),
        "is_active": entry.is_active,
        "is_featured": entry.is_featured,
        "translations": entry.translations,
        "id": record.id,
        "credits_cost": record.credits_cost,
        "tool_type": _tool_type_of(record.tool_type),
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
    }


def _public_tool_view(record: ToolRecord, locale: str | None) -> JsonObject:
    entry = record.entry
    base: JsonObject = {
        "id": record.id,
        "slug": entry.slug,
        "title": entry.title,
        "description": entry.description,
        "thumbnail_asset_id": entry.thumbnail_asset_id,
        "credits_cost": record.credits_cost,
        "is_featured": entry.is_featured,
        "tool_type": _tool_type_of(record.tool_type, locale),
    }
    return localize(base, entry.translations, locale, ("title", "description"))


def _banner_texts(record: BannerRecord) -> JsonObject:
    entry = record.entry
    return {
        "title": entry.title,
        "description": entry.description,
        "thumbnail_asset_id": entry.thumbnail_asset_id,
        "link": entry.link,
        "link_text": entry.link_text,
        "link_target": entry.link_target,
        "type": entry.type,
        "position": entry.position,
        "badge": entry.badge,
        "badge_color": entry.badge_color,
    }


def _admin_banner_view(record: BannerRecord) -> JsonObject:
    entry = record.entry
    return {
        **_banner_texts(record),
        "is_active": entry.is_active,
        "starts_at": _time(entry.starts_at),
        "ends_at": _time(entry.ends_at),
        "translations": entry.translations,
        "id": record.id,
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
    }


def _public_banner_view(record: BannerRecord, locale: str | None) -> JsonObject:
    base: JsonObject = {
        "id": record.id,
        **_banner_texts(record),
        "starts_at": _time(record.entry.starts_at),
        "ends_at": _time(record.entry.ends_at),
    }
    return localize(base, record.entry.translations, locale, ("title", "description", "link_text", "badge"))
