"""The catalog through the gateway: admins manage tool types, tools and banners; everyone reads them, in
their locale, without provider details; users cannot manage them; invalid configs are refused by field."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from clients import bearer, browser, call, sign_up, unique_email
from test_platform_health import scrape, values

from funmagic_kit.testing import wait_until


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    """Headers of the session's super_admin, with a fresh token."""
    return bearer(admin_token)


@pytest.fixture
async def user() -> dict[str, str]:
    async with browser() as client:
        account = await sign_up(client, unique_email("catalog-user"), mode="token")
    return bearer(account["access_token"])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def a_step(step_id: str = "remove-bg", **overrides: Any) -> dict[str, Any]:
    return {
        "id": step_id, "name": "Background Remove", "type": "remove-bg",
        "provider": {"name": "local", "model": "default", "options": {}}, "cost": 5, "timeoutSeconds": 300,
        "prompt": None, "input": {"image": "required", "prompt": "none"}, **overrides,
    }  # fmt: skip


async def api(method: str, path: str, headers: dict | None = None, **kwargs: Any) -> tuple[int, Any]:
    async with browser() as client:
        status, body, _ = await call(client, method, path, headers=headers, **kwargs)
    return status, body


async def create_type(admin: dict, **fields: Any) -> dict:
    name = unique("e2e")
    status, body = await api("POST", "/api/admin/tool-types", admin,
                             json={"name": name, "display_name": name.title(), **fields})  # fmt: skip
    assert status == 201, body
    return body


async def create_tool(admin: dict, type_id: str, **fields: Any) -> dict:
    slug = unique("e2e-tool")
    body = {"slug": slug, "title": f"Tool {slug}", "tool_type_id": type_id,
            "config": {"steps": [a_step()]}, **fields}  # fmt: skip
    status, created = await api("POST", "/api/admin/tools", admin, json=body)
    assert status == 201, created
    return created


async def test_admins_build_the_catalog_and_everyone_reads_it(platform, admin) -> None:
    tool_type = await create_type(admin, translations={"de": {"display_name": "Bilder"}})
    config = {
        "steps": [
            a_step("image-gen", name="Figurine", type="image-gen", cost=20,
                   provider={"name": "local", "options": {"style": "vintage"}},
                   input={"image": "required", "prompt": "optional"}, prompt="house prompt"),
            a_step("3d-gen", name="Model", type="3d-gen", cost=30,
                   input={"image": "required", "prompt": "none"}),
        ],
        "styleReferences": [{"id": "style-anime", "name": "Anime", "prompt": "Anime style", "assetId": None}],
        "pipeline": True,
    }  # fmt: skip
    tool = await create_tool(
        admin, tool_type["id"], config=config, is_featured=True, description="Make a figurine",
        translations={"de": {"title": "Figur", "steps": {"image-gen": {"name": "Figurenbild"}}}},
    )  # fmt: skip

    status, listed = await api("GET", "/api/tools", params={"type": tool_type["name"], "locale": "de-AT"})
    assert status == 200, listed
    assert [(t["slug"], t["title"]) for t in listed["items"]] == [(tool["slug"], "Figur")]
    assert listed["items"][0]["tool_type"]["display_name"] == "Bilder"
    assert listed["items"][0]["credits_cost"] == 50
    status, detail = await api("GET", f"/api/tools/{tool['slug']}", params={"locale": "de"})
    assert status == 200, detail
    assert [s["name"] for s in detail["config"]["steps"]] == ["Figurenbild", "Model"]  # per-name fallback
    assert "provider" not in detail["config"]["steps"][0]
    assert "house prompt" not in str(detail)
    status, english = await api("GET", f"/api/tools/{tool['slug']}", params={"locale": "fr"})
    assert (english["title"], english["description"]) == (tool["title"], "Make a figurine")
    status, types = await api("GET", "/api/tool-types", params={"locale": "de"})
    assert {"name": tool_type["name"], "display_name": "Bilder"}.items() <= next(
        t for t in types["items"] if t["id"] == tool_type["id"]
    ).items()
    status, full = await api("GET", f"/api/admin/tools/{tool['id']}", admin)
    assert full["config"]["steps"][0]["provider"] == {"name": "local", "model": "default",
                                                      "options": {"style": "vintage"}}  # fmt: skip


async def test_search_is_literal_and_hidden_tools_stay_hidden(platform, admin) -> None:
    tool_type = await create_type(admin)
    marker = uuid.uuid4().hex[:8]
    shown = await create_tool(admin, tool_type["id"], title=f"100% {marker}")
    await create_tool(admin, tool_type["id"], title=f"100x {marker}")
    hidden = await create_tool(admin, tool_type["id"], title=f"100% {marker} off", is_active=False)

    status, found = await api("GET", "/api/tools", params={"q": f"100% {marker}"})

    assert status == 200, found
    assert [t["id"] for t in found["items"]] == [shown["id"]]
    status, _ = await api("GET", f"/api/tools/{hidden['slug']}")
    assert status == 404
    status, _ = await api("DELETE", f"/api/admin/tools/{shown['id']}", admin)
    assert status == 204
    status, _ = await api("GET", f"/api/tools/{shown['slug']}")
    assert status == 404


async def test_banners_show_inside_their_window_main_first(platform, admin) -> None:
    marker = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    bodies = [
        {"title": f"side {marker}", "type": "side", "position": -1_000_000, "link": "/tools/figme"},
        {"title": f"main {marker}", "type": "main", "position": -1_000_000, "link": "https://example.com/x",
         "translations": {"de": {"title": f"Haupt {marker}"}}},
        {"title": f"later {marker}", "type": "main", "position": -1_000_000,
         "starts_at": (now + timedelta(days=1)).isoformat()},
    ]  # fmt: skip
    for body in bodies:
        status, created = await api("POST", "/api/admin/banners", admin, json=body)
        assert status == 201, created

    status, shown = await api("GET", "/api/banners", params={"locale": "de-DE", "limit": 100})

    assert status == 200, shown
    mine = [b["title"] for b in shown["items"] if marker in b["title"]]
    assert mine == [f"Haupt {marker}", f"side {marker}"]
    status, problem = await api("POST", "/api/admin/banners", admin,
                                json={"title": "x", "link": "javascript:alert(1)"})  # fmt: skip
    assert status == 422, problem
    assert problem["field"] == "link"


async def test_a_banner_posted_again_with_its_idempotency_key_exists_once(platform, admin) -> None:
    marker = uuid.uuid4().hex[:8]
    keyed = {**admin, "Idempotency-Key": f"banner-{marker}"}
    body = {"title": f"retried {marker}", "type": "side", "position": -1_000_000}

    first = await api("POST", "/api/admin/banners", keyed, json=body)
    again = await api("POST", "/api/admin/banners", keyed, json=body)  # the admin's retry after a lost answer
    reused = await api("POST", "/api/admin/banners", keyed, json={**body, "title": f"other {marker}"})
    status, shown = await api("GET", "/api/banners", params={"limit": 100})

    assert (first[0], again[0]) == (201, 201), (first, again)
    assert again[1]["id"] == first[1]["id"]
    assert (reused[0], reused[1]["code"]) == (409, "idempotency_key_reused"), reused
    assert status == 200, shown
    assert [b["id"] for b in shown["items"] if marker in b["title"]] == [first[1]["id"]]


async def test_users_cannot_manage_the_catalog(platform, user) -> None:
    admin_routes = (
        ("GET", "/api/admin/tools"),
        ("POST", "/api/admin/tool-types"),
        ("GET", "/api/admin/banners"),
        ("DELETE", f"/api/admin/tools/{uuid.uuid4()}"),
    )
    for method, path in admin_routes:
        status, _ = await api(method, path, user, json={} if method == "POST" else None)
        assert status == 403, (method, path)
        status, _ = await api(method, path, json={} if method == "POST" else None)
        assert status == 401, (method, path)
    status, _ = await api("GET", "/api/tools")
    assert status == 200  # the public catalog needs no sign-in


async def test_invalid_configs_are_refused_naming_the_field(platform, admin) -> None:
    tool_type = await create_type(admin)
    base = {"slug": unique("e2e-bad"), "title": "Bad", "tool_type_id": tool_type["id"]}

    cases = [
        ({"steps": [a_step(provider={"name": "no-such-provider"})]}, "config.steps[0].provider.name"),
        ({"steps": [a_step("same"), a_step("same")]}, "config.steps[1].id"),
        ({"steps": [a_step(input={"image": "none", "prompt": "none"})]}, "config.steps[0].input.image"),
    ]
    for config, field in cases:
        status, problem = await api("POST", "/api/admin/tools", admin, json={**base, "config": config})
        assert status == 422, problem
        assert problem["field"] == field
    status, problem = await api("POST", "/api/admin/tools", admin,
                                json={**base, "config": {"steps": [a_step(type="video-gen")]}})  # fmt: skip
    assert status == 422, problem  # refused at the edge already
    typed_price = {**base, "config": {"steps": [a_step()]}, "credits_cost": 1}
    status, problem = await api("POST", "/api/admin/tools", admin, json=typed_price)
    assert status == 422, problem  # the price is computed, never typed


async def test_a_tool_type_in_use_cannot_be_deleted(platform, admin) -> None:
    tool_type = await create_type(admin)
    tool = await create_tool(admin, tool_type["id"])

    status, problem = await api("DELETE", f"/api/admin/tool-types/{tool_type['id']}", admin)
    assert status == 409, problem
    status, _ = await api("DELETE", f"/api/admin/tools/{tool['id']}", admin)
    assert status == 204
    status, _ = await api("DELETE", f"/api/admin/tool-types/{tool_type['id']}", admin)
    assert status == 204


async def test_the_seed_is_idempotent_and_its_tools_are_public(platform, service_command) -> None:
    first = await asyncio.to_thread(service_command, "tasks", "seed")
    second = await asyncio.to_thread(service_command, "tasks", "seed")

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "created" not in second.stdout
    for slug in ("figme", "background-remove", "crystal-memory", "vintage-trace", "image-to-3d"):
        status, tool = await api("GET", f"/api/tools/{slug}")
        assert status == 200, tool
        assert tool["credits_cost"] == sum(s["cost"] for s in tool["config"]["steps"])


# --- the gateway's short cache of public catalog answers -------------------------------------------


def tasks_requests_of(platform, route: str) -> float:
    """How many requests the tasks service answered on `route` so far (its own Prometheus counter)."""
    return sum(values(scrape(platform["tasks"]), "funmagic_http_requests_total", route=route))


async def test_a_public_catalog_answer_is_reused_without_asking_tasks_again(platform, admin) -> None:
    tool_type = await create_type(admin)
    await create_tool(admin, tool_type["id"])
    query = {"type": tool_type["name"], "limit": "7"}
    answers: list[Any] = []

    # The creation's ToolChanged may still empty the cache once after the first read; after that, the
    # same read is answered by the gateway alone.
    async def answered_by_the_gateway_alone() -> bool:
        asked = await asyncio.to_thread(tasks_requests_of, platform, "/v1/tools")
        status, body = await api("GET", "/api/tools", params=query)
        assert status == 200, body
        answers.append(body)
        return await asyncio.to_thread(tasks_requests_of, platform, "/v1/tools") == asked

    await wait_until(answered_by_the_gateway_alone, timeout=15, what="a read the gateway answers alone")
    assert all(body == answers[0] for body in answers)
    assert [item["tool_type"]["name"] for item in answers[-1]["items"]] == [tool_type["name"]]


async def test_an_admins_change_through_the_gateway_is_public_at_once(platform, admin) -> None:
    tool_type = await create_type(admin)
    tool = await create_tool(admin, tool_type["id"])
    status, _ = await api("GET", f"/api/tools/{tool['slug']}")  # now cached
    assert status == 200

    status, changed = await api("PATCH", f"/api/admin/tools/{tool['id']}", admin, json={"title": "Renamed"})
    assert status == 200, changed
    status, detail = await api("GET", f"/api/tools/{tool['slug']}")

    assert detail["title"] == "Renamed"


async def test_a_change_made_beside_the_gateway_reaches_it_through_the_catalog_events(
    platform, admin, admin_token: str
) -> None:
    tool_type = await create_type(admin)
    tool = await create_tool(admin, tool_type["id"])
    status, _ = await api("GET", f"/api/tools/{tool['slug']}")  # now cached
    assert status == 200

    # Straight to the tasks service (as another gateway replica would): only ToolChanged tells this one.
    async with (
        aiohttp.ClientSession() as client,
        client.patch(
            f"{platform['tasks'].url}/v1/admin/tools/{tool['id']}",
            json={"title": "Renamed elsewhere"},
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()

    async def renamed() -> bool:
        return (await api("GET", f"/api/tools/{tool['slug']}"))[1]["title"] == "Renamed elsewhere"

    await wait_until(renamed, timeout=15, what="the gateway to serve the changed tool")
