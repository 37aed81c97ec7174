"""The catalog use cases: admin CRUD of tool types, tools and banners, and the public reads.

Every change is checked whole by the domain (the stored entry with the change applied), written in one
unit of work, and announced in the same transaction (`ToolTypeChanged`, `ToolChanged`, `BannerChanged`,
published through the unit of work). A tool's config names providers; each one but the built-in `local` is
checked with the `Providers` port before anything is written (the providers service answers; a provider
that does not exist is a 422 on `config.steps[i].provider.name`). The images a change names (thumbnails,
style references) are published by storage (`CatalogImages`) before the transaction too, and their CDN URLs
stored with the entry (an image storage does not have is a 422 on the field naming it).

Deleting: a tool type is refused while live tools have it (409 `tool_type_in_use`); a tool that tasks ran
is soft-deleted (hidden from users, its row kept for those tasks, still listed to admins with
`deleted_at`), one that no task ran is removed.

Public reads show only what users may see: active, live tools (without provider details), active tool
types, banners inside their time window; texts come in the requested locale with an English fallback.
Whether a tool is shown depends on the tool alone; an inactive tool type only drops out of the list of
tool types.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from funmagic_contracts.tasks.events import BannerChanged, CatalogAction, ToolChanged, ToolTypeChanged
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock
from funmagic_kit.logs import get_logger
from funmagic_kit.request_once import RequestKey
from funmagic_tasks.application.ports import (
    CatalogImages,
    CatalogStore,
    Providers,
    TasksUnitOfWork,
    UnitOfWorkFactory,
)
from funmagic_tasks.domain.catalog import (
    BANNER_FIELDS,
    LOCAL_PROVIDER,
    TOOL_FIELDS,
    TOOL_TYPE_FIELDS,
    BannerRecord,
    CatalogConflict,
    CatalogImage,
    CatalogNotFound,
    InvalidCatalogEntry,
    Tool,
    ToolConfig,
    ToolRecord,
    ToolTypeLabel,
    ToolTypeRecord,
    banner_images,
    changed_fields,
    check_banner,
    check_slug,
    check_tool,
    check_tool_type,
    choice_fields,
    config_to_json,
    image_urls_of,
    images_named,
    locale_chain,
    localize,
    localize_config,
    parse_tool_config,
    public_config,
    tool_images,
)
from funmagic_tasks.domain.json_values import JsonObject

__all__ = ["Catalog"]

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class Catalog:
    uow: UnitOfWorkFactory
    providers: Providers
    images: CatalogImages
    clock: Clock

    # --- tool types (admin) -----------------------------------------------------------------------------

    async def create_tool_type(self, *, key: RequestKey | None = None, **fields: object) -> JsonObject:
        """With `key`, once: a retry answers with the tool type its first request created, as it is now."""
        entry = check_tool_type(_only(fields, TOOL_TYPE_FIELDS))
        async with self.uow() as uow:
            # Claimed before the name is checked: a retry finds its own tool type, not a taken name.
            if key is not None and (earlier := await uow.claim(key)) is not None:
                created = await uow.catalog.tool_type(earlier)
                if created is None:
                    raise CatalogNotFound("the tool type this request created was deleted since")
                return _admin_type_view(created)
            record = await uow.catalog.add_tool_type(str(uuid.uuid4()), entry, self.clock.now())
            if record is None:
                raise CatalogConflict("tool_type_exists", f"a tool type named {entry.name!r} exists already")
            _tool_type_changed(uow, record, "created")
            uow.record(AdminAction("tool_type.created", "tool_type", record.id, dict(fields)))
            if key is not None:
                uow.created(key, record.id)
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
                audited = _sent(changes, changed, record.entry.as_fields())
                record = await uow.catalog.update_tool_type(type_id, entry, self.clock.now())
                _tool_type_changed(uow, record, "updated")
                uow.record(AdminAction("tool_type.updated", "tool_type", type_id, audited))
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
            _tool_type_changed(uow, record, "deleted")
            uow.record(AdminAction("tool_type.deleted", "tool_type", type_id, {"name": record.entry.name}))
        log.info("tool type deleted", extra={"tool_type": record.entry.name})

    async def active_tools_count(self, type_id: str) -> JsonObject:
        """How many live, active tools have the tool type."""
        async with self.uow() as uow:
            record = await uow.catalog.tool_type(type_id)
        if record is None:
            raise CatalogNotFound("no such tool type")
        return {"count": record.active_tools_count}

    # --- tools (admin) ----------------------------------------------------------------------------------

    async def create_tool(
        self, *, admin_id: str | None = None, key: RequestKey | None = None, **fields: object
    ) -> JsonObject:
        """`admin_id`: the admin creating it, whose uploads its images may be (see `_publish`). With `key`,
        once: a retry answers with the tool its first request created, as it is now (`deleted_at` if a
        task ran it and it was deleted since)."""
        entry = check_tool(_only(fields, TOOL_FIELDS))
        # A retry of a creation that committed answers before the checks of providers and images: they may
        # fail now (a provider removed since) though the tool was created.
        if (created := await self._created_before(key, _created_tool)) is not None:
            return created
        await self._check_providers(entry.config)
        image_urls = await self._publish(tool_images(entry), admin_id)
        async with self.uow() as uow:
            # Claimed before the slug is checked: a retry finds its own tool, not a taken slug.
            if key is not None and (earlier := await uow.claim(key)) is not None:
                return await _created_tool(uow.catalog, earlier)
            await _live_type(uow.catalog, entry.tool_type_id)
            record = await uow.catalog.add_tool(str(uuid.uuid4()), entry, self.clock.now(), image_urls)
            if record is None:
                raise CatalogConflict("tool_exists", f"a tool with the slug {entry.slug!r} exists already")
            _tool_changed(uow, record, "created")
            uow.record(AdminAction("tool.created", "tool", record.id, dict(fields)))
            if key is not None:
                uow.created(key, record.id)
        log.info("tool created", extra={"tool": entry.slug})
        return _admin_tool_view(record)

    async def admin_tools(
        self,
        *,
        type: str | None = None,
        q: str | None = None,
        active: bool | None = None,
        featured: bool | None = None,
        deleted: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JsonObject:
        """Tools, inactive ones too unless `active` says otherwise, and deleted ones (tasks ran them) unless
        `deleted` says otherwise."""
        async with self.uow() as uow:
            records, next_cursor = await uow.catalog.tools_page(
                active=active, type_name=type, query=q, featured=featured, deleted=deleted, limit=limit,
                cursor=cursor,
            )  # fmt: skip
        return {"items": [_admin_tool_view(r) for r in records], "next_cursor": next_cursor}

    async def admin_tool(self, tool_id: str) -> JsonObject:
        """A tool, a deleted one too (with `deleted_at`)."""
        async with self.uow() as uow:
            record = await uow.catalog.tool(tool_id, include_deleted=True)
        if record is None:
            raise CatalogNotFound("no such tool")
        return _admin_tool_view(record)

    async def admin_tool_by_slug(self, slug: str) -> JsonObject | None:
        async with self.uow() as uow:
            record = await uow.catalog.tool_record_by_slug(slug)
        return None if record is None else _admin_tool_view(record)

    async def update_tool(
        self, tool_id: str, changes: Mapping[str, object], *, admin_id: str | None = None
    ) -> JsonObject:
        changes = _only(changes, TOOL_FIELDS)
        config = parse_tool_config(changes["config"]) if changes.get("config") is not None else None
        if config is not None:
            # Before the transaction: a call to the providers service holds no lock and no connection.
            await self._check_providers(config)
        published = await self._publish(images_named(changes, config), admin_id)
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
            image_urls = image_urls_of(tool_images(entry), {**record.image_urls, **published})
            if image_urls != record.image_urls:
                changed = sorted({*changed, "image_urls"})
            if changed:
                audited = _sent(changes, changed, record.entry.as_fields())
                record = await uow.catalog.update_tool(tool_id, entry, self.clock.now(), image_urls)
                _tool_changed(uow, record, "updated")
                uow.record(AdminAction("tool.updated", "tool", tool_id, audited))
        log.info("tool updated", extra={"tool": record.entry.slug, "fields": changed})
        return _admin_tool_view(record)

    async def delete_tool(self, tool_id: str) -> None:
        """A tool tasks ran is soft-deleted: those tasks keep their history, users no longer see it, new
        tasks are refused, admins still list it (`deleted_at`). One no task ran is removed. Either way its
        slug is free again."""
        async with self.uow() as uow:
            # Locked first: a task being created on it holds it FOR KEY SHARE, so this sees that task.
            record = await uow.catalog.tool(tool_id, lock="update")
            if record is None:
                raise CatalogNotFound("no such tool")
            kept = await uow.tasks.ran_tool(tool_id)
            if kept:
                await uow.catalog.delete_tool(tool_id, self.clock.now())
            else:
                await uow.catalog.remove_tool(tool_id)
            _tool_changed(uow, record, "deleted")
            change = {"slug": record.entry.slug, "kept_for_tasks": kept}
            uow.record(AdminAction("tool.deleted", "tool", tool_id, change))
        log.info("tool deleted", extra={"tool": record.entry.slug, "kept_for_tasks": kept})

    # --- banners (admin) --------------------------------------------------------------------------------

    async def create_banner(
        self,
        *,
        banner_id: str | None = None,
        admin_id: str | None = None,
        key: RequestKey | None = None,
        **fields: object,
    ) -> JsonObject:
        """`banner_id` is for the seed (a fixed id makes it idempotent); the API leaves it out. `admin_id`:
        as for a tool. With `key`, once: a retry answers with the banner its first request created, as it
        is now."""
        entry = check_banner(_only(fields, BANNER_FIELDS))
        # As for a tool: before the images' checks.
        if (created := await self._created_before(key, _created_banner)) is not None:
            return created
        image_urls = await self._publish(banner_images(entry), admin_id)
        async with self.uow() as uow:
            if key is not None and (earlier := await uow.claim(key)) is not None:
                return await _created_banner(uow.catalog, earlier)
            record = await uow.catalog.add_banner(
                banner_id or str(uuid.uuid4()), entry, self.clock.now(), image_urls
            )
            if record is None:
                raise CatalogConflict("banner_exists", "a banner with that id exists (or existed)")
            uow.publish(BannerChanged(banner_id=record.id, action="created"))
            uow.record(AdminAction("banner.created", "banner", record.id, dict(fields)))
            if key is not None:
                uow.created(key, record.id)
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

    async def update_banner(
        self, banner_id: str, changes: Mapping[str, object], *, admin_id: str | None = None
    ) -> JsonObject:
        changes = _only(changes, BANNER_FIELDS)
        published = await self._publish(images_named(changes, None), admin_id)
        async with self.uow() as uow:
            record = await uow.catalog.banner(banner_id, lock="update")
            if record is None:
                raise CatalogNotFound("no such banner")
            entry = check_banner({**record.entry.as_fields(), **changes})
            image_urls = image_urls_of(banner_images(entry), {**record.image_urls, **published})
            changed = changed_fields(record.entry, entry, changes)
            if image_urls != record.image_urls:
                changed = sorted({*changed, "image_urls"})
            if changed:
                audited = _sent(changes, changed, record.entry.as_fields())
                record = await uow.catalog.update_banner(banner_id, entry, self.clock.now(), image_urls)
                uow.publish(BannerChanged(banner_id=banner_id, action="updated"))
                uow.record(AdminAction("banner.updated", "banner", banner_id, audited))
        return _admin_banner_view(record)

    async def delete_banner(self, banner_id: str) -> None:
        async with self.uow() as uow:
            if not await uow.catalog.delete_banner(banner_id, self.clock.now()):
                raise CatalogNotFound("no such banner")
            uow.publish(BannerChanged(banner_id=banner_id, action="deleted"))
            uow.record(AdminAction("banner.deleted", "banner", banner_id))
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
            public_config(record.entry.config, record.image_urls), record.entry.translations, locale
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

    async def _created_before(
        self, key: RequestKey | None, view: Callable[[CatalogStore, str], Awaitable[JsonObject]]
    ) -> JsonObject | None:
        """What a keyed creation's first request created, once it committed (see `UnitOfWork.answered`),
        as `view` shows it; None: not created yet (or no key)."""
        if key is None:
            return None
        async with self.uow().reading() as uow:
            earlier = await uow.answered(key)
            return None if earlier is None else await view(uow.catalog, earlier)

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
        # A provider a user may choose is checked like the step's own.
        for field, name in choice_fields(config):
            if name not in checked:
                checked[name] = await self.providers.exists(name)
            if not checked[name]:
                raise InvalidCatalogEntry(field, f"no provider named {name!r} is configured")

    async def _publish(self, images: Sequence[CatalogImage], admin_id: str | None) -> dict[str, str]:
        """Each image's CDN URL, storage publishing it (idempotent) before anything is written. An image is
        the editing admin's own upload, or one public already: never another user's private file, which the
        catalog would otherwise put on a public CDN. The seed, acting for no admin, sets no image."""
        urls: dict[str, str] = {}
        for image in images:
            if image.asset_id in urls:
                continue
            if admin_id is None:
                raise InvalidCatalogEntry(image.field, "an image is set by an admin's edit")
            url = await self.images.publish(image.asset_id, admin_id)
            if url is None:
                raise InvalidCatalogEntry(image.field, "no such image in storage: upload it first")
            urls[image.asset_id] = url
        return urls


async def _live_type(catalog: CatalogStore, type_id: str) -> ToolTypeRecord:
    # FOR SHARE: a concurrent delete of the tool type waits for this transaction, then sees the tool.
    record = await catalog.tool_type(type_id, lock="share")
    if record is None:
        raise InvalidCatalogEntry("tool_type_id", "no such tool type")
    return record


async def _created_tool(catalog: CatalogStore, tool_id: str) -> JsonObject:
    """The tool a keyed creation made, as it is now (`deleted_at` if a task ran it and it was deleted)."""
    created = await catalog.tool(tool_id, include_deleted=True)
    if created is None:
        raise CatalogNotFound("the tool this request created was deleted since")
    return _admin_tool_view(created)


async def _created_banner(catalog: CatalogStore, banner_id: str) -> JsonObject:
    created = await catalog.banner(banner_id)
    if created is None:
        raise CatalogNotFound("the banner this request created was deleted since")
    return _admin_banner_view(created)


def _tool_changed(uow: TasksUnitOfWork, record: ToolRecord, action: CatalogAction) -> None:
    uow.publish(ToolChanged(tool_id=record.id, slug=record.entry.slug, action=action))


def _tool_type_changed(uow: TasksUnitOfWork, record: ToolTypeRecord, change: CatalogAction) -> None:
    uow.publish(
        ToolTypeChanged(
            tool_type_id=record.id,
            name=record.entry.name,
            change=change,
            is_active=record.entry.is_active and change != "deleted",
        )
    )


def _only(fields: Mapping[str, object], allowed: Sequence[str]) -> dict[str, object]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise InvalidCatalogEntry(unknown[0], "unknown field")
    return dict(fields)


# --- views ----------------------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _url(image_urls: Mapping[str, str], asset_id: str | None) -> str | None:
    return image_urls.get(asset_id) if asset_id else None


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
        "thumbnail_url": _url(record.image_urls, entry.thumbnail_asset_id),
        "tool_type_id": entry.tool_type_id,
        "config": config_to_json(entry.config),
        "is_active": entry.is_active,
        "is_featured": entry.is_featured,
        "translations": entry.translations,
        "id": record.id,
        "credits_cost": record.credits_cost,
        "tool_type": _tool_type_of(record.tool_type),
        "usage_count": record.usage_count,
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
        "deleted_at": _time(record.deleted_at),
    }


def _public_tool_view(record: ToolRecord, locale: str | None) -> JsonObject:
    entry = record.entry
    base: JsonObject = {
        "id": record.id,
        "slug": entry.slug,
        "title": entry.title,
        "description": entry.description,
        "thumbnail_asset_id": entry.thumbnail_asset_id,
        "thumbnail_url": _url(record.image_urls, entry.thumbnail_asset_id),
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
        "thumbnail_url": _url(record.image_urls, entry.thumbnail_asset_id),
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


def _sent(
    changes: Mapping[str, object], changed: Sequence[str], before: Mapping[str, object]
) -> dict[str, object]:
    """For the audit log: the fields an update changed with the values sent (a derived field, the price or
    the image URLs, only named), and under `before` their values until then."""
    sent: dict[str, object] = {name: changes.get(name, "changed") for name in changed}
    sent["before"] = {name: before[name] for name in changed if name in before}
    return sent
