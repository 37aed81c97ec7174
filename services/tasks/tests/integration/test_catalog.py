"""The catalog on real Postgres: CRUD, uniqueness among live rows, the tool type guard, deleting a tool that
tasks ran (kept, hidden) or not (removed), keyset pages, literal search, what the public sees, locales,
images published by storage and shown as CDN URLs, outbox events, the seed, the saga's `tool_by_slug`, and
the internal HTTP API (problem+json, roles) in front of it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.api import catalog as api
from funmagic_contracts.api.coverage import assert_reply_covers
from funmagic_contracts.envelope import Envelope
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import wait_until, waiting_for_a_lock
from funmagic_tasks.adapters.unit_of_work import TasksUnitOfWork
from funmagic_tasks.application.catalog import Catalog
from funmagic_tasks.application.tasks import TaskService
from funmagic_tasks.bootstrap import build
from funmagic_tasks.domain.catalog import (
    CatalogConflict,
    CatalogNotFound,
    InvalidCatalogEntry,
    Tool,
    parse_tool_config,
)
from funmagic_tasks.domain.tasks import TaskInput, TaskRequest, ToolNotFound
from funmagic_tasks.entrypoints.catalog_http import CatalogApp
from funmagic_tasks.seed import seed_catalog

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
IMAGE = str(uuid.uuid4())


@dataclass
class World:
    catalog: Catalog
    pool: AsyncConnectionPool
    clock: ManualClock
    providers: Any  # the conftest's FakeProviders
    unit_of_work: Callable[[], TasksUnitOfWork]
    tasks: TaskService
    images: Any  # the conftest's FakeCatalogImages

    async def outbox(self) -> list[Envelope]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
        return [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]

    async def count(self, table: str, where: str = "TRUE") -> int:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {where}")).fetchone()
        return int(row["n"])


@pytest.fixture
def world(settings, pool: AsyncConnectionPool, ports, providers, catalog_images) -> World:
    clock = ManualClock(T0)
    app = build(settings, pool=pool, http=None, clock=clock, **ports)
    return World(app.catalog, pool, clock, providers, app.parts.unit_of_work, app.tasks, catalog_images)


def step(step_id: str = "remove-bg", *, provider: str = "local", cost: int = 5, **overrides: Any) -> dict:
    return {
        "id": step_id, "name": step_id.replace("-", " ").title(), "type": "remove-bg",
        "provider": {"name": provider, "model": "default", "options": {}}, "cost": cost,
        "input": {"image": "required", "prompt": "none"}, **overrides,
    }  # fmt: skip


def tool_config(*steps: dict) -> dict:
    return {
        "steps": list(steps) or [step()],
        "styleReferences": [{"id": "style-anime", "name": "Anime", "prompt": "Anime style", "assetId": None}],
    }


async def a_type(world: World, name: str = "image", **fields: Any) -> dict:
    return await world.catalog.create_tool_type(name=name, display_name=name.title(), **fields)


ADMIN = str(uuid.uuid4())  # the admin whose edits the tests make, as the HTTP routes pass the caller's id


async def a_tool(world: World, type_id: str, slug: str = "background-remove", **fields: Any) -> dict:
    values = {"title": slug.replace("-", " ").title(), "config": tool_config(), **fields}
    return await world.catalog.create_tool(slug=slug, tool_type_id=type_id, admin_id=ADMIN, **values)


async def a_banner(world: World, title: str = "Hello", **fields: Any) -> dict:
    return await world.catalog.create_banner(title=title, admin_id=ADMIN, **fields)


# --- CRUD and uniqueness -------------------------------------------------------------------------------


async def test_tool_types_are_created_read_changed_and_deleted(world: World) -> None:
    created = await a_type(world, "image", color="#123456", translations={"de": {"display_name": "Bild"}})

    assert (await world.catalog.admin_tool_type(created["id"]))["color"] == "#123456"
    changed = await world.catalog.update_tool_type(created["id"], {"display_name": "Images", "sort_order": 3})
    assert (changed["display_name"], changed["sort_order"], changed["name"]) == ("Images", 3, "image")
    assert changed["translations"] == {"de": {"display_name": "Bild"}}
    await world.catalog.delete_tool_type(created["id"])
    with pytest.raises(CatalogNotFound):
        await world.catalog.admin_tool_type(created["id"])
    with pytest.raises(CatalogNotFound):
        await world.catalog.delete_tool_type(created["id"])


async def test_a_name_is_unique_among_live_tool_types_and_free_again_after_a_delete(world: World) -> None:
    first = await a_type(world, "image")
    with pytest.raises(CatalogConflict) as caught:
        await a_type(world, "image")
    assert caught.value.code == "tool_type_exists"
    other = await a_type(world, "video")
    with pytest.raises(CatalogConflict):
        await world.catalog.update_tool_type(other["id"], {"name": "image"})

    await world.catalog.delete_tool_type(first["id"])
    again = await a_type(world, "image")

    assert again["id"] != first["id"]
    assert await world.count("tool_types", "name = 'image'") == 2


async def test_a_slug_is_unique_among_live_tools_and_free_again_after_a_delete(world: World) -> None:
    image = await a_type(world)
    first = await a_tool(world, image["id"], "figme")
    with pytest.raises(CatalogConflict) as caught:
        await a_tool(world, image["id"], "figme")
    assert caught.value.code == "tool_exists"
    other = await a_tool(world, image["id"], "other")
    with pytest.raises(CatalogConflict):
        await world.catalog.update_tool(other["id"], {"slug": "figme"})

    await world.catalog.delete_tool(first["id"])
    again = await a_tool(world, image["id"], "figme")

    assert again["id"] != first["id"]
    with pytest.raises(CatalogNotFound):
        await world.catalog.admin_tool(first["id"])


async def test_a_tool_type_in_use_cannot_be_deleted(world: World) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], is_active=False)  # inactive tools count too

    with pytest.raises(CatalogConflict) as caught:
        await world.catalog.delete_tool_type(image["id"])
    assert caught.value.code == "tool_type_in_use"
    assert (await world.catalog.admin_tool_type(image["id"]))["tools_count"] == 1

    await world.catalog.delete_tool(tool["id"])
    await world.catalog.delete_tool_type(image["id"])
    with pytest.raises(InvalidCatalogEntry) as refused:
        await a_tool(world, image["id"], "late")
    assert refused.value.field == "tool_type_id"


async def a_task_on(world: World, slug: str) -> str:
    view, _ = await world.tasks.create(
        "user-1", TaskRequest(slug, input=TaskInput(image_asset_id=IMAGE)), None
    )
    return str(view["id"])


async def test_a_tool_tasks_ran_is_kept_hidden_and_one_no_task_ran_is_removed(world: World) -> None:
    image = await a_type(world)
    ran = await a_tool(world, image["id"], "ran")
    unused = await a_tool(world, image["id"], "unused")
    task_id = await a_task_on(world, "ran")
    world.clock.advance(minutes=1)

    await world.catalog.delete_tool(ran["id"])
    await world.catalog.delete_tool(unused["id"])

    assert await world.count("tools", f"id = '{unused['id']}'") == 0
    kept = await world.catalog.admin_tool(ran["id"])
    assert_reply_covers(api.AdminToolView, kept)
    assert kept["deleted_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert (kept["is_active"], kept["slug"]) == (False, "ran")
    with pytest.raises(CatalogNotFound):
        await world.catalog.tool("ran")
    assert (await world.catalog.tools())["items"] == []
    assert [t["id"] for t in (await world.catalog.admin_tools())["items"]] == [ran["id"]]
    assert (await world.catalog.admin_tools(deleted=False))["items"] == []
    assert [t["id"] for t in (await world.catalog.admin_tools(deleted=True))["items"]] == [ran["id"]]
    for change in (
        world.catalog.delete_tool(ran["id"]),
        world.catalog.update_tool(ran["id"], {"title": "X"}),
    ):
        with pytest.raises(CatalogNotFound):
            await change
    with pytest.raises(ToolNotFound):
        await a_task_on(world, "ran")
    assert (await world.tasks.get("user-1", task_id))["tool_slug"] == "ran"  # the task keeps its history
    # A deleted tool no longer holds its type back.
    await world.catalog.delete_tool_type(image["id"])


async def test_a_task_being_created_holds_its_tool_and_a_deleted_tool_is_not_held(world: World) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], "held")

    async with world.unit_of_work() as uow:
        held = await uow.catalog.hold_tool(tool["id"])
    await world.catalog.delete_tool(tool["id"])
    async with world.unit_of_work() as uow:
        gone = await uow.catalog.hold_tool(tool["id"])

    assert (held, gone) == (True, False)


async def test_a_task_being_created_holds_its_tool_against_deletion_but_not_against_counting_its_uses(
    world: World,
) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], "busy")

    async with world.unit_of_work() as creating:
        assert await creating.catalog.hold_tool(tool["id"])
        # Another task of the tool starting meanwhile counts its use at once (every start on a popular tool
        # would otherwise queue behind every creation on it); a lock wait would end it here.
        async with world.unit_of_work() as starting:
            await starting.conn.execute("SET LOCAL lock_timeout = '10s'")
            await starting.catalog.count_use(tool["id"])
        deleting = asyncio.create_task(world.catalog.delete_tool(tool["id"]))
        await wait_until(lambda: waiting_for_a_lock(world.pool), timeout=10, what="the delete's lock wait")
        assert not deleting.done()
    await deleting

    assert await world.count("tools", f"id = '{tool['id']}' AND deleted_at IS NULL") == 0


async def test_a_tool_type_counts_its_active_tools_and_announces_its_changes(world: World) -> None:
    image = await a_type(world)
    await a_tool(world, image["id"], "on")
    await a_tool(world, image["id"], "off", is_active=False)
    before = len(await world.outbox())

    count = await world.catalog.active_tools_count(image["id"])
    await world.catalog.update_tool_type(image["id"], {"is_active": False})
    await world.catalog.update_tool_type(image["id"], {"is_active": False})  # no change, no event
    empty = await a_type(world, "empty")
    await world.catalog.delete_tool_type(empty["id"])

    assert count == {"count": 1}
    assert_reply_covers(api.ActiveToolsCount, count)
    assert_reply_covers(api.AdminToolTypeView, await world.catalog.admin_tool_type(image["id"]))
    assert (await world.catalog.admin_tool_type(image["id"]))["active_tools_count"] == 1
    changes = [(e.type, e.subject, e.data) for e in (await world.outbox())[before:]]
    assert changes == [
        ("ToolTypeChanged", image["id"],
         {"tool_type_id": image["id"], "name": "image", "change": "updated", "is_active": False}),
        ("ToolTypeChanged", empty["id"],
         {"tool_type_id": empty["id"], "name": "empty", "change": "created", "is_active": True}),
        ("ToolTypeChanged", empty["id"],
         {"tool_type_id": empty["id"], "name": "empty", "change": "deleted", "is_active": False}),
    ]  # fmt: skip
    with pytest.raises(CatalogNotFound):
        await world.catalog.active_tools_count(empty["id"])


async def test_a_tool_is_priced_by_its_steps_and_repriced_when_they_change(world: World) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], config=tool_config(step("a", cost=20), step("b", cost=30)))
    assert tool["credits_cost"] == 50
    assert tool["config"]["steps"][0]["timeoutSeconds"] == 600  # stored in canonical form

    changed = await world.catalog.update_tool(tool["id"], {"config": tool_config(step("a", cost=7))})
    assert changed["credits_cost"] == 7
    renamed = await world.catalog.update_tool(tool["id"], {"title": "Renamed"})
    assert (renamed["credits_cost"], renamed["title"]) == (7, "Renamed")
    with pytest.raises(InvalidCatalogEntry) as caught:
        await world.catalog.update_tool(tool["id"], {"credits_cost": 1})
    assert caught.value.field == "credits_cost"


async def test_each_provider_of_a_config_must_exist_and_local_always_does(world: World) -> None:
    image = await a_type(world)

    with pytest.raises(InvalidCatalogEntry) as caught:
        await a_tool(
            world, image["id"], config=tool_config(step("a", provider="fal"), step("b", provider="ghost"))
        )
    assert caught.value.field == "config.steps[1].provider.name"
    assert await world.count("tools") == 0

    tool = await a_tool(world, image["id"], config=tool_config(step("a"), step("b", provider="fal")))
    assert world.providers.asked == ["fal", "ghost", "fal"]  # never asked about `local`
    with pytest.raises(InvalidCatalogEntry):
        await world.catalog.update_tool(tool["id"], {"config": tool_config(step(provider="ghost"))})


async def test_an_invalid_config_is_refused_naming_the_field(world: World) -> None:
    image = await a_type(world)

    with pytest.raises(InvalidCatalogEntry) as caught:
        await a_tool(world, image["id"], config=tool_config(step(timeoutSeconds=5)))

    assert caught.value.field == "config.steps[0].timeoutSeconds"


async def test_banners_are_created_changed_and_deleted(world: World) -> None:
    banner = await a_banner(world, link="https://example.com/sale", type="side", position=2)

    changed = await world.catalog.update_banner(banner["id"], {"link": "/tools/figme", "badge": "New"})
    assert (changed["link"], changed["badge"], changed["type"]) == ("/tools/figme", "New", "side")
    with pytest.raises(InvalidCatalogEntry) as caught:
        await world.catalog.update_banner(banner["id"], {"link": "javascript:alert(1)"})
    assert caught.value.field == "link"
    with pytest.raises(InvalidCatalogEntry) as caught:
        await world.catalog.update_banner(banner["id"], {"starts_at": world.clock.now(),
                                                         "ends_at": world.clock.now()})  # fmt: skip
    assert caught.value.field == "ends_at"

    await world.catalog.delete_banner(banner["id"])
    with pytest.raises(CatalogNotFound):
        await world.catalog.admin_banner(banner["id"])


# --- lists ---------------------------------------------------------------------------------------------


async def test_tools_come_in_keyset_pages_featured_first(world: World) -> None:
    image = await a_type(world)
    for slug in ("e-tool", "b-tool", "d-tool", "a-tool", "c-tool"):
        await a_tool(world, image["id"], slug, is_featured=slug == "d-tool")

    seen, cursor, pages = [], None, 0
    while True:
        page = await world.catalog.tools(limit=2, cursor=cursor)
        pages += 1
        assert len(page["items"]) <= 2
        seen += [t["slug"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == ["d-tool", "a-tool", "b-tool", "c-tool", "e-tool"]
    assert pages == 3
    with pytest.raises(InvalidCatalogEntry) as caught:
        await world.catalog.tools(cursor="bm90IGEgY3Vyc29y")
    assert caught.value.field == "cursor"


async def test_tool_types_and_banners_come_in_keyset_pages(world: World) -> None:
    for index, name in enumerate(("c", "a", "b")):
        await a_type(world, name, sort_order=index % 2)
    for position, banner_type in ((5, "side"), (1, "main"), (0, "side"), (3, "main")):
        await a_banner(world, f"{banner_type}-{position}", type=banner_type, position=position)

    types = await world.catalog.admin_tool_types(limit=2)
    more = await world.catalog.admin_tool_types(limit=2, cursor=types["next_cursor"])
    banners = await world.catalog.banners(limit=3)
    rest = await world.catalog.banners(limit=3, cursor=banners["next_cursor"])

    assert [t["name"] for t in types["items"] + more["items"]] == ["b", "c", "a"]
    assert more["next_cursor"] is None
    assert [b["title"] for b in banners["items"] + rest["items"]] == ["main-1", "main-3", "side-0", "side-5"]
    assert rest["next_cursor"] is None


async def test_search_treats_wildcards_literally(world: World) -> None:
    image = await a_type(world)
    for slug, title in (("full", "100% Magic"), ("plain", "100 Magic"), ("snake", "snake_case"),
                        ("camel", "snakeXcase"), ("slash", "back\\slash")):  # fmt: skip
        await a_tool(world, image["id"], slug, title=title)

    async def found(q: str) -> set[str]:
        return {t["slug"] for t in (await world.catalog.tools(q=q))["items"]}

    assert await found("100%") == {"full"}
    assert await found("e_c") == {"snake"}
    assert await found("%") == {"full"}
    assert await found("_") == {"snake"}
    assert await found("k\\s") == {"slash"}
    assert await found("MAGIC") == {"full", "plain"}


async def test_search_and_type_filter_also_look_at_the_locale_and_the_tool_type(world: World) -> None:
    image, three_d = await a_type(world, "image"), await a_type(world, "3d")
    await a_tool(world, image["id"], "background-remove",
                 translations={"de": {"title": "Hintergrund entfernen"}})  # fmt: skip
    await a_tool(world, three_d["id"], "image-to-3d")

    assert [t["slug"] for t in (await world.catalog.tools(q="hintergrund", locale="de-AT"))["items"]] == [
        "background-remove"
    ]
    assert (await world.catalog.tools(q="hintergrund"))["items"] == []
    assert [t["slug"] for t in (await world.catalog.tools(type="3d"))["items"]] == ["image-to-3d"]
    assert [t["slug"] for t in (await world.catalog.tools(featured=True))["items"]] == []


# --- what the public sees -------------------------------------------------------------------------------


async def test_the_public_sees_active_live_tools_without_provider_details(world: World) -> None:
    image = await a_type(world)
    secret_step = step(provider="openai", prompt="house prompt")
    shown = await a_tool(world, image["id"], "shown", config=tool_config(secret_step))
    hidden = await a_tool(world, image["id"], "hidden", is_active=False)
    gone = await a_tool(world, image["id"], "gone")
    await world.catalog.delete_tool(gone["id"])

    listed = await world.catalog.tools()
    detail = await world.catalog.tool("shown")

    assert [t["slug"] for t in listed["items"]] == ["shown"]
    assert detail["id"] == shown["id"]
    assert detail["config"]["steps"] == [
        {"id": "remove-bg", "name": "Remove Bg", "type": "remove-bg", "cost": 5,
         "input": {"image": "required", "prompt": "none"}, "choices": []}
    ]  # fmt: skip
    assert "openai" not in repr(detail)
    assert "house prompt" not in repr(detail)
    for slug in ("hidden", "gone", "missing", "NOT A SLUG"):
        with pytest.raises(CatalogNotFound):
            await world.catalog.tool(slug)
    admin = await world.catalog.admin_tools()
    assert {t["slug"] for t in admin["items"]} == {"shown", "hidden"}
    assert {t["slug"] for t in (await world.catalog.admin_tools(active=False))["items"]} == {"hidden"}
    assert (await world.catalog.admin_tool(hidden["id"]))["config"]["steps"][0]["provider"]["name"] == "local"


# --- images ----------------------------------------------------------------------------------------------


THUMBNAIL, NEW_THUMBNAIL, STYLE_IMAGE = (str(uuid.uuid4()) for _ in range(3))


def styled_config(asset_id: str | None) -> dict:
    config = tool_config()
    config["styleReferences"][0]["assetId"] = asset_id
    return config


async def test_images_are_published_when_saved_and_shown_as_cdn_urls(world: World) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], "figme", thumbnail_asset_id=THUMBNAIL,
                        config=styled_config(STYLE_IMAGE))  # fmt: skip
    banner = await a_banner(world, thumbnail_asset_id=THUMBNAIL)

    listed = (await world.catalog.tools())["items"][0]
    detail = await world.catalog.tool("figme", locale="de")
    shown_banner = (await world.catalog.banners())["items"][0]
    assert_reply_covers(api.ToolPage, await world.catalog.tools())
    assert_reply_covers(api.ToolDetail, detail)
    assert_reply_covers(api.BannerPage, await world.catalog.banners())
    assert_reply_covers(api.AdminToolView, tool)
    assert_reply_covers(api.AdminBannerView, banner)

    assert world.images.published == [THUMBNAIL, STYLE_IMAGE, THUMBNAIL]
    assert world.images.on_behalf_of == [ADMIN] * 3
    assert (tool["thumbnail_url"], listed["thumbnail_url"], detail["thumbnail_url"]) == (
        world.images.url(THUMBNAIL),
    ) * 3
    assert detail["config"]["styleReferences"][0]["image_url"] == world.images.url(STYLE_IMAGE)
    assert detail["config"]["styleReferences"][0]["assetId"] == STYLE_IMAGE
    assert (banner["thumbnail_url"], shown_banner["thumbnail_url"]) == (world.images.url(THUMBNAIL),) * 2
    assert "image_url" not in repr(tool["config"])  # the admin's config stays as the admin writes it


async def test_a_changed_image_is_published_and_the_old_url_dropped(world: World) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], "figme", thumbnail_asset_id=THUMBNAIL,
                        config=styled_config(STYLE_IMAGE))  # fmt: skip
    banner = await a_banner(world)
    world.images.published.clear()

    retitled = await world.catalog.update_tool(tool["id"], {"title": "New"})
    changed = await world.catalog.update_tool(
        tool["id"], {"thumbnail_asset_id": NEW_THUMBNAIL, "config": styled_config(None)}, admin_id=ADMIN
    )
    cleared = await world.catalog.update_tool(tool["id"], {"thumbnail_asset_id": None})
    pictured = await world.catalog.update_banner(
        banner["id"], {"thumbnail_asset_id": NEW_THUMBNAIL}, admin_id=ADMIN
    )

    assert world.images.published == [NEW_THUMBNAIL, NEW_THUMBNAIL]
    assert retitled["thumbnail_url"] == world.images.url(THUMBNAIL)
    assert changed["thumbnail_url"] == world.images.url(NEW_THUMBNAIL)
    assert (await world.catalog.tool("figme"))["config"]["styleReferences"][0]["image_url"] is None
    assert cleared["thumbnail_url"] is None
    assert pictured["thumbnail_url"] == world.images.url(NEW_THUMBNAIL)
    async with world.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT image_urls FROM tools WHERE id = %s", (tool["id"],))
        ).fetchone()
    assert row["image_urls"] == {}


async def test_an_image_storage_does_not_have_is_refused_naming_its_field(world: World) -> None:
    image = await a_type(world)
    world.images.missing = {STYLE_IMAGE}
    tool = await a_tool(world, image["id"], "figme")

    with pytest.raises(InvalidCatalogEntry) as on_create:
        await a_tool(world, image["id"], "other", config=styled_config(STYLE_IMAGE))
    with pytest.raises(InvalidCatalogEntry) as on_update:
        await world.catalog.update_tool(tool["id"], {"thumbnail_asset_id": STYLE_IMAGE}, admin_id=ADMIN)
    with pytest.raises(InvalidCatalogEntry) as on_banner:
        await a_banner(world, thumbnail_asset_id=STYLE_IMAGE)

    assert on_create.value.field == "config.styleReferences[0].assetId"
    assert (on_update.value.field, on_banner.value.field) == ("thumbnail_asset_id", "thumbnail_asset_id")
    assert await world.count("tools") == 1


async def test_an_image_needs_an_admins_edit_to_be_published(world: World) -> None:
    # Storage publishes only the admin's own upload (or an image public already); an edit made for no
    # admin (the seed's) could not say whose, so it sets no image — and storage is not asked.
    image = await a_type(world)

    with pytest.raises(InvalidCatalogEntry) as refused:
        await world.catalog.create_tool(slug="figme", tool_type_id=image["id"], title="Figme",
                                        config=tool_config(), thumbnail_asset_id=THUMBNAIL)  # fmt: skip

    assert refused.value.field == "thumbnail_asset_id"
    assert (world.images.published, await world.count("tools")) == ([], 0)


async def test_the_public_sees_active_tool_types_only(world: World) -> None:
    await a_type(world, "image")
    await a_type(world, "video", is_active=False)

    assert [t["name"] for t in (await world.catalog.tool_types())["items"]] == ["image"]
    assert {t["name"] for t in (await world.catalog.admin_tool_types())["items"]} == {"image", "video"}


async def test_the_public_sees_active_banners_inside_their_window_main_first(world: World) -> None:
    now = world.clock.now()
    hour = timedelta(hours=1)
    await a_banner(world, "side-open", type="side", position=0)
    await a_banner(world, "main-second", position=2, starts_at=now - hour, ends_at=now + hour)
    await a_banner(world, "main-first", position=1, starts_at=now)  # starts exactly now: shown
    await a_banner(world, "ended", ends_at=now)  # ends exactly now: gone
    await a_banner(world, "future", starts_at=now + hour)
    await a_banner(world, "off", is_active=False)
    deleted = await a_banner(world, "deleted")
    await world.catalog.delete_banner(deleted["id"])

    shown = await world.catalog.banners()
    side = await world.catalog.banners(type="side")

    assert [b["title"] for b in shown["items"]] == ["main-first", "main-second", "side-open"]
    assert [b["title"] for b in side["items"]] == ["side-open"]
    world.clock.set(now + 2 * hour)
    assert [b["title"] for b in (await world.catalog.banners())["items"]] == [
        "future",
        "main-first",
        "side-open",
    ]
    assert len((await world.catalog.admin_banners())["items"]) == 6


async def test_texts_come_in_the_locale_with_english_fallback_per_field(world: World) -> None:
    image = await a_type(world, "image", translations={"de": {"display_name": "Bild"}})
    translations = {
        "de": {
            "title": "Hintergrund entfernen",
            "steps": {"remove-bg": {"name": "Freistellen"}},
            "styleReferences": {"style-anime": {"name": "Manga"}},
        },
        "de-AT": {"description": "Freistellen, bitte"},
    }
    await a_tool(
        world, image["id"], "background-remove", title="Background Remove", description="Cut it out",
        translations=translations,
    )  # fmt: skip
    await a_banner(world, "Sale", link_text="Shop now", translations={"fr": {"title": "Soldes"}})

    de_at = await world.catalog.tool("background-remove", locale="de-AT")
    de = (await world.catalog.tools(locale="de"))["items"][0]
    fr = await world.catalog.tool("background-remove", locale="fr")
    banner = (await world.catalog.banners(locale="fr-CA"))["items"][0]
    tool_types = await world.catalog.tool_types(locale="de")

    assert (de_at["title"], de_at["description"]) == ("Hintergrund entfernen", "Freistellen, bitte")
    assert de_at["config"]["steps"][0]["name"] == "Freistellen"
    assert de_at["config"]["styleReferences"][0]["name"] == "Manga"
    assert de_at["tool_type"]["display_name"] == "Bild"
    assert (de["title"], de["description"]) == ("Hintergrund entfernen", "Cut it out")
    assert (fr["title"], fr["config"]["steps"][0]["name"]) == ("Background Remove", "Remove Bg")
    assert (banner["title"], banner["link_text"]) == ("Soldes", "Shop now")
    assert tool_types["items"][0]["display_name"] == "Bild"
    with pytest.raises(InvalidCatalogEntry):
        await world.catalog.tools(locale="german")


# --- events --------------------------------------------------------------------------------------------


async def test_changes_are_announced_in_the_outbox(world: World) -> None:
    image = await a_type(world)
    tool = await a_tool(world, image["id"], "figme")
    await world.catalog.update_tool(tool["id"], {"title": "FigMe!"})
    await world.catalog.update_tool(tool["id"], {"title": "FigMe!"})  # no change, no event
    await world.catalog.delete_tool(tool["id"])
    banner = await a_banner(world)
    await world.catalog.update_banner(banner["id"], {"position": 4})
    await world.catalog.delete_banner(banner["id"])

    envelopes = await world.outbox()

    assert [(e.type, e.subject, e.data.get("action", e.data.get("change"))) for e in envelopes] == [
        ("ToolTypeChanged", image["id"], "created"),
        ("ToolChanged", tool["id"], "created"),
        ("ToolChanged", tool["id"], "updated"),
        ("ToolChanged", tool["id"], "deleted"),
        ("BannerChanged", banner["id"], "created"),
        ("BannerChanged", banner["id"], "updated"),
        ("BannerChanged", banner["id"], "deleted"),
    ]
    assert envelopes[0].data == {
        "tool_type_id": image["id"], "name": "image", "change": "created", "is_active": True}  # fmt: skip
    assert envelopes[1].data["slug"] == "figme"


async def test_a_refused_change_leaves_no_event(world: World) -> None:
    image = await a_type(world)
    await a_tool(world, image["id"], "figme")
    before = len(await world.outbox())

    with pytest.raises(CatalogConflict):
        await a_tool(world, image["id"], "figme")

    assert len(await world.outbox()) == before


# --- the saga's view -----------------------------------------------------------------------------------


async def test_tool_by_slug_returns_the_parsed_domain_tool(world: World) -> None:
    image = await a_type(world)
    config = tool_config(step("a", cost=20, provider="openai"), step("b", cost=30))
    created = await a_tool(world, image["id"], "figme", config=config)
    off = await a_tool(world, image["id"], "off", is_active=False)
    gone = await a_tool(world, image["id"], "gone")
    await world.catalog.delete_tool(gone["id"])

    uow: TasksUnitOfWork
    async with world.unit_of_work() as uow:
        tool = await uow.catalog.tool_by_slug("figme")
        inactive = await uow.catalog.tool_by_slug("off")
        deleted = await uow.catalog.tool_by_slug("gone")

    assert tool == Tool(
        id=created["id"], slug="figme", title="Figme", is_active=True, credits_cost=50,
        config=parse_tool_config(config),
    )  # fmt: skip
    assert tool.config.step("a").provider.name == "openai"
    assert inactive is not None
    assert inactive.id == off["id"]
    assert inactive.is_active is False
    assert deleted is None
    assert await world.catalog.tool_by_slug("figme") == tool


# --- the seed ------------------------------------------------------------------------------------------


async def snapshot(world: World) -> dict[str, list[tuple]]:
    async with world.pool.connection() as conn:
        result = {}
        for table, key in (("tool_types", "name"), ("tools", "slug"), ("banners", "id::text")):
            rows = await (
                await conn.execute(f"SELECT {key} AS key, id::text, updated_at FROM {table} ORDER BY 1")
            ).fetchall()
            result[table] = [(r["key"], r["id"], r["updated_at"]) for r in rows]
    return result


async def test_the_seed_creates_the_catalog_once(world: World) -> None:
    first = await seed_catalog(world.catalog)
    after_first = await snapshot(world)
    events = len(await world.outbox())
    world.clock.advance(minutes=1)

    second = await seed_catalog(world.catalog)

    assert set(first["tools"]) == {
        "figme",
        "background-remove",
        "crystal-memory",
        "vintage-trace",
        "image-to-3d",
    }
    assert set(first["tools"].values()) == {"created"}
    assert set(first["tool_types"]) == {"image", "3d"}
    assert len(first["banners"]) == 2
    assert all(action == "unchanged" for group in second.values() for action in group.values())
    assert await snapshot(world) == after_first
    assert len(await world.outbox()) == events
    assert world.providers.asked == []  # the seed's tools run on `local`
    figme = await world.catalog.tool("figme")
    assert [s["id"] for s in figme["config"]["steps"]] == ["image-gen", "3d-gen"]
    assert (figme["credits_cost"], len(figme["config"]["styleReferences"])) == (50, 3)
    crystal = await world.catalog.tool_by_slug("crystal-memory")
    assert [(s.type, s.cost) for s in crystal.config.steps] == [("remove-bg", 5), ("point-cloud", 15)]
    assert len((await world.catalog.banners())["items"]) == 2


async def test_the_seed_can_switch_to_real_providers_and_keeps_admin_deletions(world: World) -> None:
    first = await seed_catalog(world.catalog)
    banner_id = next(iter(first["banners"]))
    await world.catalog.delete_banner(banner_id)
    world.clock.advance(minutes=1)

    report = await seed_catalog(world.catalog, image_provider="openai", background_provider="fal",
                                model_provider="tripo", point_cloud_provider="replicate",
                                update_existing=True)  # fmt: skip

    assert report["banners"][banner_id] == "skipped"
    assert report["tools"]["figme"] == "updated"
    assert report["tool_types"] == {"image": "unchanged", "3d": "unchanged"}
    figme = await world.catalog.tool_by_slug("figme")
    assert [(s.provider.name, s.provider.model) for s in figme.config.steps] == [
        ("openai", "gpt-image-1"), ("tripo", "v2.5-20250123")]  # fmt: skip
    background = await world.catalog.tool_by_slug("background-remove")
    assert background.config.steps[0].provider.model == "fal-ai/imageutils/rembg"
    crystal = await world.catalog.tool_by_slug("crystal-memory")
    assert [(s.provider.name, s.provider.model) for s in crystal.config.steps] == [
        ("fal", "fal-ai/imageutils/rembg"), ("replicate", "default")]  # fmt: skip
    assert await world.count("tools") == 5
    assert await world.count("banners", "deleted_at IS NULL") == 1


async def test_the_seed_lets_image_to_3d_users_pick_tripo_or_hunyuan_when_named(world: World) -> None:
    await seed_catalog(world.catalog)
    plain = await world.catalog.tool_by_slug("image-to-3d")
    assert plain.config.steps[0].choices in (None, ())
    world.providers.known.add("hunyuan")  # an admin configured one
    world.clock.advance(minutes=1)

    report = await seed_catalog(
        world.catalog, tripo_choice="tripo", hunyuan_choice="hunyuan", update_existing=True
    )

    assert report["tools"]["image-to-3d"] == "updated"
    tool = await world.catalog.tool("image-to-3d")
    choices = tool["config"]["steps"][0]["choices"]
    assert [(c["provider"], c["label"], c["default"]) for c in choices] == [
        ("local", "Built-in", True), ("tripo", "Tripo", False), ("hunyuan", "Hunyuan 3D", False),
    ]  # fmt: skip
    assert set(choices[1]["options"]) == {"face_limit", "pbr"}
    assert choices[1]["models"][0] == "v2.5-20250123"
    assert set(choices[2]["options"]) == {"GenerateType", "FaceCount", "EnablePBR"}


# --- the internal HTTP API -----------------------------------------------------------------------------


@pytest.fixture
async def http(world: World, serve) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve(CatalogApp(world.catalog).routes()) as session:
        yield session


ADMIN = {"X-Test-Role": "admin", "X-Test-User": str(uuid.uuid4())}
NOT_ADMIN = {"X-Test-Role": "user", "X-Test-User": str(uuid.uuid4())}


async def test_the_http_api_creates_and_reads_the_catalog(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/admin/tool-types", json={"name": "image", "display_name": "Image"},
                         headers=ADMIN) as response:  # fmt: skip
        assert response.status == 201
        image = await response.json()
    body = {"slug": "figme", "title": "FigMe", "tool_type_id": image["id"], "config": tool_config(),
            "translations": {"de": {"title": "FigMich"}}}  # fmt: skip
    async with http.post("/v1/admin/tools", json=body, headers=ADMIN) as response:
        assert response.status == 201
        tool = await response.json()
    async with http.get("/v1/tools/figme", params={"locale": "de-AT"}) as response:
        assert response.status == 200
        shown = await response.json()
    async with http.get("/v1/tools", params={"type": "image", "q": "fig"}) as response:
        listed = await response.json()
    async with http.patch(
        f"/v1/admin/tools/{tool['id']}", json={"is_featured": True}, headers=ADMIN
    ) as response:
        assert (await response.json())["is_featured"] is True

    assert shown["title"] == "FigMich"
    assert "provider" not in shown["config"]["steps"][0]
    assert [t["slug"] for t in listed["items"]] == ["figme"]
    assert tool["config"]["steps"][0]["provider"]["name"] == "local"


async def test_the_http_api_answers_problems(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/admin/tool-types", json={"name": "image", "display_name": "Image"},
                         headers=ADMIN) as response:  # fmt: skip
        image = await response.json()
    bad_config = tool_config(step(type="video"))
    body = {"slug": "figme", "title": "FigMe", "tool_type_id": image["id"], "config": bad_config}

    async with http.post("/v1/admin/tools", json=body, headers=ADMIN) as response:
        assert response.status == 422
        assert response.content_type == "application/problem+json"
        assert (await response.json())["field"] == "config.steps[0].type"
    async with http.post("/v1/admin/tools", json={**body, "credits_cost": 3}, headers=ADMIN) as response:
        assert response.status == 422
    async with http.post("/v1/admin/tools", json=body, headers=NOT_ADMIN) as response:
        assert response.status == 403
    async with http.get("/v1/admin/banners") as response:
        assert response.status == 401
    async with http.post("/v1/admin/tool-types", json={"name": "image", "display_name": "Again"},
                         headers=ADMIN) as response:  # fmt: skip
        assert response.status == 409
    async with http.delete(f"/v1/admin/tool-types/{uuid.uuid4()}", headers=ADMIN) as response:
        assert response.status == 404
    async with http.get(f"/v1/admin/tool-types/{image['id']}/active-tools-count", headers=ADMIN) as response:
        assert (response.status, await response.json()) == (200, {"count": 0})
    async with http.get(f"/v1/admin/tool-types/{uuid.uuid4()}/active-tools-count", headers=ADMIN) as response:
        assert response.status == 404
    async with http.get(f"/v1/admin/tool-types/{image['id']}/active-tools-count") as response:
        assert response.status == 401
    async with http.get("/v1/admin/tools/not-a-uuid", headers=ADMIN) as response:
        assert response.status == 404
    async with http.get("/v1/tools", params={"q": "a\x00b"}) as response:
        assert response.status == 422
    async with http.get("/v1/banners", params={"locale": "xx_YY"}) as response:
        assert response.status == 422
    async with http.get("/v1/tools", params={"cursor": "forged"}) as response:
        assert response.status == 422
        assert (await response.json())["field"] == "cursor"
    async with http.post("/v1/admin/banners", json={"title": "T", "link": "javascript:alert(1)"},
                         headers=ADMIN) as response:  # fmt: skip
        assert response.status == 422
        assert (await response.json())["field"] == "link"
    async with http.post("/v1/admin/banners", json={"title": "T\u0000"}, headers=ADMIN) as response:
        assert response.status == 422


async def post(http: aiohttp.ClientSession, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    async with http.post(path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def test_a_banner_posted_again_with_its_idempotency_key_is_created_once(
    http: aiohttp.ClientSession, world: World
) -> None:
    keyed = {**ADMIN, "Idempotency-Key": "banner-1"}  # keys are the caller's: one admin throughout
    body = {"title": "Spring sale", "link": "https://example.com/sale"}

    first = await post(http, "/v1/admin/banners", body, keyed)
    again = await post(http, "/v1/admin/banners", body, keyed)  # the admin's retry after a lost answer
    reused = await post(http, "/v1/admin/banners", {**body, "title": "Summer sale"}, keyed)
    banners_after_the_retry = await world.count("banners")
    unkeyed = [await post(http, "/v1/admin/banners", body, ADMIN) for _ in range(2)]

    assert (first[0], again[0]) == (201, 201)
    assert again[1] == first[1]
    assert (reused[0], reused[1]["code"]) == (409, "idempotency_key_reused"), "another body is not a retry"
    assert reused[1]["field"] == "Idempotency-Key"
    assert banners_after_the_retry == 1
    assert [status for status, _ in unkeyed] == [201, 201], "without a key, every request creates"
    assert len({banner["id"] for _, banner in [first, *unkeyed]}) == 3
    async with http.get("/v1/admin/banners", headers=ADMIN) as response:
        assert len((await response.json())["items"]) == 3


async def test_a_tools_retry_answers_with_it_even_after_its_provider_was_removed(
    http: aiohttp.ClientSession, world: World
) -> None:
    admin = {**ADMIN, "Idempotency-Key": "tool-1"}
    tool_type = await post(http, "/v1/admin/tool-types", {"name": "image", "display_name": "Image"}, admin)
    body = {
        "slug": "cut-fal",
        "title": "Cut",
        "tool_type_id": tool_type[1]["id"],
        "config": tool_config(step(provider="fal")),
    }
    first = await post(http, "/v1/admin/tools", body, admin)
    world.providers.known.discard("fal")  # an admin removed the provider since the first request

    again = await post(http, "/v1/admin/tools", body, admin)
    fresh = await post(
        http, "/v1/admin/tools", {**body, "slug": "cut-fal-2"}, {**admin, "Idempotency-Key": "t2"}
    )

    assert (first[0], again[0]) == (201, 201)
    assert again[1] == first[1], "the retry is answered with the tool created, as it is"
    assert world.providers.asked == ["fal", "fal"], "the retry asked nothing; the new request did"
    assert (fresh[0], fresh[1]["field"]) == (422, "config.steps[0].provider.name")
    assert await world.count("tools") == 1


async def test_a_tool_type_and_a_tool_posted_again_with_their_keys_answer_with_the_ones_created(
    http: aiohttp.ClientSession, world: World
) -> None:
    # One key for two kinds of request: each kind keys its own creations.
    keyed = {**ADMIN, "Idempotency-Key": "create-1"}
    type_body = {"name": "image", "display_name": "Image"}

    types = [await post(http, "/v1/admin/tool-types", type_body, keyed) for _ in range(2)]
    tool_body = {
        "slug": "figme",
        "title": "FigMe",
        "tool_type_id": types[0][1]["id"],
        "config": tool_config(),
    }
    tools = [await post(http, "/v1/admin/tools", tool_body, keyed) for _ in range(2)]
    reused = await post(http, "/v1/admin/tools", {**tool_body, "slug": "figme-2"}, keyed)
    unkeyed = await post(http, "/v1/admin/tool-types", type_body, ADMIN)

    assert [status for status, _ in types] == [201, 201]
    assert types[1][1]["id"] == types[0][1]["id"], "the retry is answered with it, not a taken name"
    assert [status for status, _ in tools] == [201, 201]
    assert tools[1][1]["id"] == tools[0][1]["id"], "the retry is answered with it, not a taken slug"
    assert (reused[0], reused[1]["code"]) == (409, "idempotency_key_reused")
    assert (unkeyed[0], unkeyed[1]["code"]) == (409, "tool_type_exists"), "without a key: a new tool type"
    assert (await world.count("tool_types"), await world.count("tools")) == (1, 1)
