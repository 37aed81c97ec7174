"""Backend parity with the original (issue 17), end to end through the gateway, one test per "done" item:

- deleting a running task stops it, releases its hold, hides it (and its child tasks) from my lists, and
  the ledger keeps it; its outputs go, but for published ones;
- the creations page folds child tasks in, sums their credits and shows a thumbnail (a URL that works),
  and a task's page has a URL on every output of its steps and of its children's;
- my assets by kind, with the counts per kind;
- an admin's view of a user matches what the test made (account and sessions, balance, transactions,
  tasks), and the user search pages by email or name;
- the catalog rules: a tool type with tools cannot be deleted, a tool tasks ran is only hidden,
  `active-tools-count`, and thumbnails and style images are CDN URLs in the public views;
- a user who buys a package gets their higher rate-limit tier within 5 s;
- the rate-limit settings and tiers are unchanged after Redis is SIGKILLed and restarted;
- the OpenAPI document has every new route.

The Redis test runs the gateway on a Redis of its own (started here, killed and restarted here) in place of
the platform's gateway, and puts the platform's gateway back whatever happens.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import run_services
from clients import (
    E2E_PORT_BASE,
    GATEWAY_URL,
    PASSWORD,
    STRIPE_WEBHOOK_SECRET,
    bearer,
    browser,
    call,
    png,
    sign_in,
    upload,
)
from redis.asyncio import Redis

from funmagic_kit.testing import OwnRedisServer, wait_until

TERMINAL = {"completed", "failed", "cancelled"}
SETTINGS = "/api/admin/settings/rate-limit"
WEBHOOK_URL = f"{GATEWAY_URL}/api/webhooks/stripe"


# --- helpers ---------------------------------------------------------------------------------------------


async def api(
    method: str, path: str, token: str | None = None, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    async with browser() as client:
        return await call(client, method, path, headers=headers, **kwargs)


async def new_user(prefix: str, *, name: str = "") -> dict[str, str]:
    """A signed-up user (token mode) once the sign-up bonus is on their balance."""
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    status, account, _ = await api(
        "POST", "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "name": name,
                                                  "mode": "token"},
    )  # fmt: skip
    assert status == 201, account
    user = {"id": account["user"]["id"], "token": account["access_token"], "email": email}
    await until_balance(user, lambda b: b["balance"] == 50)
    return user


async def balance(user: dict[str, str]) -> dict[str, Any]:
    status, body, _ = await api("GET", "/api/credits/balance", user["token"])
    assert status == 200, body
    return body


async def until_balance(
    user: dict[str, str], predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    latest: list[dict[str, Any]] = []

    async def got_there() -> bool:
        latest[:] = [await balance(user)]
        return predicate(latest[0])

    await wait_until(got_there, timeout=timeout, what=f"the balance of {user['id']}", interval=0.1)
    return latest[0]


async def start_task(user: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    status, task, _ = await api("POST", "/api/tasks", user["token"], json=body)
    assert status == 202, task
    return task


async def until_task(user: dict[str, str], task_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The task (my view, with its outputs' URLs) once it has ended."""
    latest: list[dict[str, Any]] = []

    async def ended() -> bool:
        status, task, _ = await api("GET", f"/api/tasks/{task_id}", user["token"])
        assert status == 200, task
        latest[:] = [task]
        return task["status"] in TERMINAL

    await wait_until(ended, timeout=timeout, what=f"task {task_id} to end", interval=0.1)
    return latest[0]


async def completed_task(user: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    task = await until_task(user, (await start_task(user, body))["id"])
    assert task["status"] == "completed", task
    return task


async def fetch(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read()


async def my_tasks(user: dict[str, str], **query: str) -> list[dict[str, Any]]:
    status, page, _ = await api("GET", "/api/tasks", user["token"], params={"limit": "100", **query})
    assert status == 200, page
    return page["items"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def local_step(step_id: str, step_type: str, cost: int, **options: Any) -> dict[str, Any]:
    return {
        "id": step_id, "name": step_id, "type": step_type, "cost": cost,
        "provider": {"name": "local", "model": "default", "options": options},
        "input": {"image": "required", "prompt": "none"},
    }  # fmt: skip


async def create_type(admin_token: str) -> dict[str, Any]:
    name = unique("e2e-parity")
    status, tool_type, _ = await api(
        "POST", "/api/admin/tool-types", admin_token, json={"name": name, "display_name": name.title()}
    )
    assert status == 201, tool_type
    return tool_type


async def create_tool(
    admin_token: str, type_id: str, steps: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """An admin-made tool (not a pipeline: each step is a task of its own, chained by `parentTaskId`)."""
    config = {"steps": steps, "pipeline": False, **fields.pop("config", {})}
    slug = unique("e2e-parity")
    body = {"slug": slug, "title": slug, "tool_type_id": type_id, "config": config, **fields}
    status, tool, _ = await api("POST", "/api/admin/tools", admin_token, json=body)
    assert status == 201, tool
    return tool


async def first_sse_event(token: str, path: str, wanted: set[str], connected: asyncio.Event) -> str | None:
    """Reads a task's SSE stream (setting `connected` once it is open) until one of `wanted` events."""
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(base_url=GATEWAY_URL, timeout=timeout) as http,
        http.get(path, headers=bearer(token)) as response,
    ):
        assert response.status == 200, await response.text()
        connected.set()
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:") and (event := line.partition(":")[2].strip()) in wanted:
                return event
    return None


def outputs(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Every output asset of a task's steps and result (as my task view shows them, with URLs)."""
    payload = task["payload"] or {}
    steps = [asset for step in payload.get("steps", []) for asset in step["assets"]]
    return steps + ((payload.get("output") or {}).get("assets") or [])


# --- deleting a task -------------------------------------------------------------------------------------


async def test_deleting_a_running_task_stops_it_releases_its_hold_hides_it_and_the_ledger_keeps_it(
    platform, seeded_tools, admin_token: str
) -> None:
    tool_type = await create_type(admin_token)
    tool = await create_tool(
        admin_token,
        tool_type["id"],
        [local_step("cut", "remove-bg", 1), local_step("slow", "3d-gen", 2, durationMs=60_000)],
    )
    user = await new_user("delete")
    image = await upload(user["token"], png())
    parent = await completed_task(
        user, {"toolSlug": tool["slug"], "stepId": "cut", "input": {"imageAssetId": image}}
    )
    (cut_output,) = parent["payload"]["output"]["assets"]
    child = await start_task(user, {"toolSlug": tool["slug"], "stepId": "slow", "parentTaskId": parent["id"]})
    stream = f"/api/tasks/{child['id']}/stream"
    started, connected = asyncio.Event(), asyncio.Event()
    assert await first_sse_event(user["token"], stream, {"step_started"}, started) == "step_started"
    ending = asyncio.create_task(first_sse_event(user["token"], stream, TERMINAL, connected))
    await asyncio.wait_for(connected.wait(), 30)
    await until_balance(user, lambda b: b["reserved_balance"] == 2)

    status, _, _ = await api("DELETE", f"/api/tasks/{parent['id']}", user["token"])

    assert status == 204
    # It stops: the running child task is cancelled first.
    assert await asyncio.wait_for(ending, 60) == "cancelled"
    # Its hold is released: only the completed step is paid for.
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 49)
    # Gone from my lists and my reads, the child task with it.
    listed = await my_tasks(user)
    seen = {t["id"] for t in listed} | {c["id"] for t in listed for c in t["children"] or []}
    assert not seen & {parent["id"], child["id"]}
    for task_id in (parent["id"], child["id"]):
        status, _, _ = await api("GET", f"/api/tasks/{task_id}", user["token"])
        assert status == 404
    status, _, _ = await api("DELETE", f"/api/tasks/{parent['id']}", user["token"])
    assert status == 404, "deleting twice"
    # The ledger and the audit keep it.
    status, kept, _ = await api(
        "GET", "/api/admin/tasks", admin_token, params={"user_id": user["id"], "include_deleted": "true"}
    )
    assert status == 200, kept
    by_id = {t["id"]: t for t in kept["items"]}
    assert by_id[parent["id"]]["deleted_at"]
    assert by_id[child["id"]]["deleted_at"]
    assert (by_id[parent["id"]]["status"], by_id[parent["id"]]["charged_credits"]) == ("completed", 1)
    assert (by_id[child["id"]]["status"], by_id[child["id"]]["charged_credits"]) == ("cancelled", 0)
    status, live, _ = await api("GET", "/api/admin/tasks", admin_token, params={"user_id": user["id"]})
    assert not {t["id"] for t in live["items"]} & {parent["id"], child["id"]}
    status, ledger, _ = await api(
        "GET", f"/api/admin/users/{user['id']}/ledger", admin_token, params={"limit": "100"}
    )
    assert status == 200, ledger
    events = {(e["type"], e["data"].get("reservation_id")) for e in ledger["items"]}
    assert {
        ("Reserved", parent["id"]),
        ("Spent", parent["id"]),
        ("Reserved", child["id"]),
        ("Released", child["id"]),
    } <= events
    status, history, _ = await api("GET", "/api/credits/transactions", user["token"])
    assert ("spend", -1, parent["id"]) in {
        (t["type"], t["amount"], t["reference_id"]) for t in history["items"]
    }
    # The outputs go (they were never published); my own upload stays.

    async def output_deleted() -> bool:
        status, _, _ = await api("GET", f"/api/assets/{cut_output['asset_id']}", user["token"])
        return status == 404

    await wait_until(output_deleted, timeout=30, what="the deleted task's output to be deleted", interval=0.2)
    status, _, _ = await api("GET", f"/api/assets/{image}", user["token"])
    assert status == 200


async def test_a_published_output_outlives_its_deleted_task(platform, seeded_tools) -> None:
    user = await new_user("published")
    image = await upload(user["token"], png())
    task = await completed_task(user, {"toolSlug": "image-to-3d", "input": {"imageAssetId": image}})
    by_role = {asset["role"]: asset["asset_id"] for asset in task["payload"]["output"]["assets"]}
    status, published, _ = await api("POST", f"/api/assets/{by_role['preview']}/publish", user["token"])
    assert status == 200, published

    status, _, _ = await api("DELETE", f"/api/tasks/{task['id']}", user["token"])
    assert status == 204

    async def model_deleted() -> bool:
        status, _, _ = await api("GET", f"/api/assets/{by_role['model']}", user["token"])
        return status == 404

    await wait_until(model_deleted, timeout=30, what="the unpublished model to be deleted", interval=0.2)
    status, kept, _ = await api("GET", f"/api/assets/{by_role['preview']}", user["token"])
    assert (status, kept["visibility"]) == (200, "public"), "someone may hold its public link"
    assert (await fetch(published["url"]))[0] == 200


# --- the creations page, a task's page, my assets by kind ----------------------------------------------


async def test_the_creations_page_folds_children_sums_credits_and_shows_thumbnails_and_assets_by_kind(
    platform, seeded_tools, admin_token: str
) -> None:
    tool_type = await create_type(admin_token)
    steps = [
        local_step("cut", "remove-bg", 1),
        local_step("cloud", "point-cloud", 1, maxPoints=500),
        local_step("model", "3d-gen", 1, grid=16),
    ]
    tool = await create_tool(admin_token, tool_type["id"], steps)
    user = await new_user("creations")
    image = await upload(user["token"], png(96, 64))
    category = {"category": tool_type["name"]}

    first = await completed_task(
        user, {"toolSlug": tool["slug"], "stepId": "cut", "input": {"imageAssetId": image}}
    )
    (cut_image,) = first["payload"]["output"]["assets"]
    (waiting,) = await my_tasks(user, **category)
    assert (waiting["id"], waiting["effective_status"], waiting["credits_total"]) == (
        first["id"],
        "action_required",
        1,
    ), "the next step waits for me"
    assert waiting["thumbnail_asset_id"] == cut_image["asset_id"]
    status, thumbnail = await fetch(waiting["thumbnail_url"])
    assert (status, thumbnail[:8]) == (200, b"\x89PNG\r\n\x1a\n")

    second = await completed_task(
        user, {"toolSlug": tool["slug"], "stepId": "cloud", "parentTaskId": first["id"]}
    )
    third = await completed_task(
        user,
        {"toolSlug": tool["slug"], "stepId": "model", "parentTaskId": second["id"],
         "input": {"imageAssetId": cut_image["asset_id"]}},
    )  # fmt: skip
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 47)

    (creation,) = await my_tasks(user, **category)
    assert creation["id"] == first["id"], "top-level tasks only"
    assert [c["id"] for c in creation["children"]] == [second["id"], third["id"]], "folded in, oldest first"
    assert (creation["effective_status"], creation["credits_total"]) == ("completed", 3)
    assert creation["tool_type"] == {"id": tool_type["id"], "name": tool_type["name"]}
    preview = next(a for a in third["payload"]["output"]["assets"] if a["role"] == "preview")
    assert creation["thumbnail_asset_id"] == preview["asset_id"], "the 3D preview of the latest member"
    status, thumbnail = await fetch(creation["thumbnail_url"])
    assert (status, thumbnail[:8]) == (200, b"\x89PNG\r\n\x1a\n")
    assert [t["id"] for t in await my_tasks(user, status="completed", **category)] == [first["id"]]
    assert await my_tasks(user, status="action_required", **category) == []
    assert [t["id"] for t in await my_tasks(user, tool=tool["slug"])] == [first["id"]]

    # A task's page: its child tasks, and a URL on every output of every step, for the owner and for admins.
    for token, path in ((user["token"], "/api/tasks"), (admin_token, "/api/admin/tasks")):
        status, shown, _ = await api("GET", f"{path}/{first['id']}", token)
        assert status == 200, shown
        assert [c["id"] for c in shown["children"]] == [second["id"], third["id"]]
        assets = outputs(shown) + [asset for child in shown["children"] for asset in outputs(child)]
        assert {a["role"] for a in assets} >= {"image", "point_cloud", "model", "preview"}
        for asset in assets:
            status, _ = await fetch(asset["url"])
            assert status == 200, asset
    model = next(a for a in outputs(third) if a["role"] == "model")
    status, glb = await fetch(model["url"])
    assert glb[:4] == b"glTF"

    # My assets by kind, with the counts of every kind in each answer.
    counts = {"image": 3, "model": 1, "pointcloud": 1, "other": 0}  # upload, cut, preview; GLB; PLY
    expected = {
        "model": {model["asset_id"]},
        "pointcloud": {a["asset_id"] for a in outputs(second)},
        "image": {image, cut_image["asset_id"], preview["asset_id"]},
    }
    for kind, ids in expected.items():
        status, page, _ = await api("GET", "/api/assets", user["token"], params={"kind": kind})
        assert status == 200, page
        assert {a["id"] for a in page["items"]} == ids, kind
        assert {a["kind"] for a in page["items"]} == {kind}
        assert page["counts"] == counts
    status, everything, _ = await api("GET", "/api/assets", user["token"])
    assert len(everything["items"]) == 5
    assert everything["counts"] == counts


# --- an admin's view of a user ---------------------------------------------------------------------------


async def test_the_admin_user_detail_matches_what_the_user_did_and_users_are_found_by_name(
    platform, seeded_tools, admin_token: str
) -> None:
    marker = uuid.uuid4().hex[:10]
    user = await new_user("overview", name=f"Ada {marker}")
    async with browser() as client:
        status, _ = await sign_in(client, user["email"], PASSWORD, mode="token")  # a second session
    assert status == 201
    image = await upload(user["token"], png())
    task = await completed_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 45)  # charged
    status, adjusted, _ = await api(
        "POST", f"/api/admin/users/{user['id']}/credits", admin_token, json={"amount": 7, "reason": "thanks"}
    )
    assert status == 201, adjusted
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 52)

    status, overview, _ = await api("GET", f"/api/admin/users/{user['id']}/overview", admin_token)

    assert status == 200, overview
    assert (overview["user"]["id"], overview["user"]["email"], overview["user"]["name"]) == (
        user["id"],
        user["email"],
        f"Ada {marker}",
    )
    assert overview["user"]["session_count"] == 2
    assert (overview["credits"]["balance"], overview["credits"]["reserved_balance"]) == (52, 0)
    assert [(t["type"], t["amount"]) for t in overview["transactions"]] == [
        ("admin_adjust", 7),
        ("spend", -5),
        ("bonus", 50),
    ]
    assert [t["id"] for t in overview["tasks"]] == [task["id"]]
    assert overview["tasks"][0]["charged_credits"] == 5
    status, _, _ = await api("GET", f"/api/admin/users/{user['id']}/overview", user["token"])
    assert status == 403
    status, problem, _ = await api("GET", f"/api/admin/users/{uuid.uuid4()}/overview", admin_token)
    assert status == 404, problem

    # The user search, by name (or email), a page at a time.
    others = [await new_user("found", name=f"Bob {marker} {n}") for n in range(2)]
    found, cursor = [], None
    for _ in range(5):
        params = {"query": marker, "limit": "2", **({"cursor": cursor} if cursor else {})}
        status, page, _ = await api("GET", "/api/admin/users", admin_token, params=params)
        assert status == 200, page
        assert len(page["items"]) <= 2
        found += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert found == [others[1]["id"], others[0]["id"], user["id"]], "newest first, each once"
    status, by_email, _ = await api("GET", "/api/admin/users", admin_token, params={"query": user["email"]})
    assert [u["id"] for u in by_email["items"]] == [user["id"]]


# --- the catalog -----------------------------------------------------------------------------------------


async def admin_upload(admin_token: str, data: bytes, filename: str) -> str:
    """An admin's image in the admin-only bucket (what a tool's or banner's image starts as)."""
    request = {"filename": filename, "content_type": "image/png", "size": len(data), "module": "banners"}
    status, ticket, _ = await api("POST", "/api/admin/assets/uploads", admin_token, json=request)
    assert status == 201, ticket
    async with (
        aiohttp.ClientSession() as http,
        http.put(ticket["url"], data=data, headers=ticket["headers"]) as r,
    ):
        assert r.status == 200
    status, asset, _ = await api("POST", f"/api/assets/uploads/{ticket['upload_id']}/complete", admin_token)
    assert status == 201, asset
    return asset["id"]


async def test_the_catalog_keeps_the_originals_rules_and_shows_images_at_cdn_urls(
    platform, stack_env, admin_token: str
) -> None:
    cdn = stack_env["CDN_URL"].rstrip("/")
    thumbnail, style = png(40, 30, (10, 200, 10)), png(30, 40, (10, 10, 200))
    thumbnail_id = await admin_upload(admin_token, thumbnail, "thumb.png")
    style_id = await admin_upload(admin_token, style, "style.png")
    tool_type = await create_type(admin_token)
    reference = {"id": "style-blue", "name": "Blue", "prompt": "blue", "assetId": style_id}
    tool = await create_tool(
        admin_token,
        tool_type["id"],
        [local_step("cut", "remove-bg", 1)],
        thumbnail_asset_id=thumbnail_id,
        config={"styleReferences": [reference], "pipeline": True},
    )

    # Images an admin gave by asset id are public CDN URLs in the public views.
    status, listed, _ = await api("GET", "/api/tools", params={"type": tool_type["name"]})
    assert status == 200, listed
    (summary,) = listed["items"]
    assert summary["thumbnail_url"].startswith(cdn + "/"), summary
    assert await fetch(summary["thumbnail_url"]) == (200, thumbnail)
    status, detail, _ = await api("GET", f"/api/tools/{tool['slug']}")
    assert detail["thumbnail_url"] == summary["thumbnail_url"]
    (shown_reference,) = detail["config"]["styleReferences"]
    assert shown_reference["image_url"].startswith(cdn + "/")
    assert await fetch(shown_reference["image_url"]) == (200, style)
    banner = {"title": unique("banner"), "thumbnail_asset_id": thumbnail_id, "position": -1_000_000}
    status, created, _ = await api("POST", "/api/admin/banners", admin_token, json=banner)
    assert status == 201, created
    status, banners, _ = await api("GET", "/api/banners", params={"limit": "100"})
    (shown,) = [b for b in banners["items"] if b["title"] == banner["title"]]
    assert shown["thumbnail_url"].startswith(cdn + "/")
    assert await fetch(shown["thumbnail_url"]) == (200, thumbnail)

    # A tool type with tools cannot be deleted; its active tools are counted.
    type_path = f"/api/admin/tool-types/{tool_type['id']}"
    status, problem, _ = await api("DELETE", type_path, admin_token)
    assert (status, problem["code"]) == (409, "tool_type_in_use")
    status, count, _ = await api("GET", f"{type_path}/active-tools-count", admin_token)
    assert (status, count) == (200, {"count": 1})

    # A user's private upload is no admin's to publish: refused as no image, and it stays private.
    user = await new_user("catalog")
    image = await upload(user["token"], png())
    for path, body in (
        (f"/api/admin/tools/{tool['id']}", {"thumbnail_asset_id": image}),
        ("/api/admin/banners", {"title": unique("banner"), "thumbnail_asset_id": image}),
    ):
        status, problem, _ = await api("PATCH" if "tools" in path else "POST", path, admin_token, json=body)
        assert (status, problem["code"]) == (422, "invalid_catalog_entry"), problem
        assert "thumbnail_asset_id" in problem["detail"]
    status, private, _ = await api("GET", f"/api/assets/{image}", user["token"])
    assert (status, private["visibility"]) == (200, "private"), private

    # A tool tasks ran is only hidden: its tasks keep their history.
    task = await completed_task(user, {"toolSlug": tool["slug"], "input": {"imageAssetId": image}})
    status, _, _ = await api("DELETE", f"/api/admin/tools/{tool['id']}", admin_token)
    assert status == 204
    status, _, _ = await api("GET", f"/api/tools/{tool['slug']}")
    assert status == 404
    status, listed, _ = await api("GET", "/api/tools", params={"type": tool_type["name"]})
    assert listed["items"] == []
    status, kept, _ = await api("GET", f"/api/admin/tools/{tool['id']}", admin_token)
    assert (status, bool(kept["deleted_at"])) == (200, True)
    status, ran, _ = await api("GET", f"/api/tasks/{task['id']}", user["token"])
    assert (status, ran["status"]) == (200, "completed")
    assert [t["id"] for t in await my_tasks(user)] == [task["id"]]
    status, count, _ = await api("GET", f"{type_path}/active-tools-count", admin_token)
    assert count == {"count": 0}
    # With no live tool left, the type can go.
    status, _, _ = await api("DELETE", type_path, admin_token)
    assert status == 204


# --- the OpenAPI document -------------------------------------------------------------------------------


async def test_the_openapi_document_has_every_new_route(platform) -> None:
    status, document, _ = await api("GET", "/openapi.json")
    assert status == 200
    routes = {(method, path) for path, item in document["paths"].items() for method in item}
    assert {
        ("delete", "/api/tasks/{task_id}"),
        ("delete", "/api/admin/tasks/{task_id}"),
        ("get", "/api/tasks"),
        ("get", "/api/tasks/{task_id}"),
        ("get", "/api/admin/users/{user_id}/overview"),
        ("get", "/api/admin/tool-types/{type_id}/active-tools-count"),
        ("get", "/api/assets"),
        ("put", SETTINGS),
    } <= routes
    schemas = document["components"]["schemas"]
    assert "tiers" in schemas["RateLimitSettings"]["properties"]
    assert "thumbnail_url" in schemas["Creation"]["properties"]
    assert "counts" in schemas["AssetPage"]["properties"]


# --- rate-limit tiers ------------------------------------------------------------------------------------


@pytest.fixture
async def rate_limits(platform, admin_email: str, admin_token: str) -> AsyncIterator[dict[str, Any]]:
    """The rate-limit settings as they were; put back afterwards, kept by identity and cached by the
    platform's gateway alike (the suite runs with relaxed ones)."""
    status, before, _ = await api("GET", SETTINGS, admin_token)
    assert status == 200, before
    try:
        yield before
    finally:
        # A fresh token: the test may have outlasted the first one.
        async with browser() as client:
            status, signed_in = await sign_in(client, admin_email, PASSWORD, mode="token")
        assert status == 201, signed_in
        status, body, _ = await api("PUT", SETTINGS, signed_in["access_token"], json=before)
        assert status == 200, body


async def test_a_buyer_gets_the_higher_limit_within_five_seconds(
    platform, seeded_tools, stripe_fake, admin_token: str, rate_limits: dict[str, Any]
) -> None:
    tight = {
        **rate_limits,
        "task_creation": {"limit": 10, "window_seconds": 60},
        "user_api": {"limit": 1000, "window_seconds": 60},
        "tiers": [
            {"name": "free", "min_purchased": 0, "multiplier": 1},
            {"name": "basic", "min_purchased": 1, "multiplier": 2},
            {"name": "premium", "min_purchased": 1000, "multiplier": 3},
        ],
    }
    status, body, _ = await api("PUT", SETTINGS, admin_token, json=tight)
    assert status == 200, body
    price_id = f"price_{uuid.uuid4().hex[:12]}"
    stripe_fake.fake.register_price(price_id, 499, "usd", "100 credits")
    package = {"name": "100 credits", "credits": 100, "price_minor": 499, "currency": "USD",
               "stripe_price_id": price_id}  # fmt: skip
    status, package, _ = await api("POST", "/api/admin/credit-packages", admin_token, json=package)
    assert status == 201, package
    user = await new_user("tiers")
    image = await upload(user["token"], png())
    await asyncio.sleep(1.1)  # past every replica's one-second copy of the settings

    status, _, response = await api("GET", "/api/credits/balance", user["token"])
    assert response.headers["X-RateLimit-Limit"] == "1000", "the free tier's per-user limit"
    # Ten task creations in the minute pass the limit (they name no tool: the service refuses them), the
    # eleventh does not.
    attempt = {"toolSlug": "no-such-tool", "input": {}}
    answers = [await api("POST", "/api/tasks", user["token"], json=attempt) for _ in range(11)]
    assert [status for status, _, _ in answers] == [404] * 10 + [429]
    assert answers[-1][1]["category"] == "task_creation"

    status, checkout, _ = await api(
        "POST", "/api/credits/checkout", user["token"], json={"package_id": package["id"]}
    )
    assert status == 201, checkout
    event = stripe_fake.fake.complete_session(checkout["session_id"])
    status, receipt = await stripe_fake.fake.deliver(event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET)
    assert status == 200, receipt

    async def tier_applied() -> bool:
        status, _, response = await api("GET", "/api/credits/balance", user["token"])
        return status == 200 and response.headers.get("X-RateLimit-Limit") == "2000"

    # Within 5 s of the payment: the gateway's view of what the user bought follows CreditsPurchased.
    await wait_until(
        tier_applied, timeout=5.0, what="the basic tier to apply after the purchase", interval=0.1
    )
    status, task, response = await api(
        "POST",
        "/api/tasks",
        user["token"],
        json={"toolSlug": "background-remove", "input": {"imageAssetId": image}},
    )
    assert status == 202, task
    # The same window: the twelfth creation, under twice the limit.
    assert (response.headers["X-RateLimit-Limit"], response.headers["X-RateLimit-Remaining"]) == ("20", "8")
    await until_task(user, task["id"])


# --- the settings survive Redis ------------------------------------------------------------------------


async def _replace_gateway(platform: dict, env: dict[str, str], run_dir: Path) -> None:
    """Stops the running gateway and starts one with `env` on the same port, in its place."""
    await asyncio.to_thread(run_services.stop_service, platform["gateway"])
    started = run_services.start_service("gateway", env, E2E_PORT_BASE, run_dir)
    platform["gateway"] = started
    await asyncio.to_thread(run_services.wait_until_healthy, started, "/health/all", 90.0)


async def test_the_rate_limit_settings_and_tiers_survive_a_redis_sigkill_and_restart(
    platform, platform_env: dict[str, str], admin_token: str, rate_limits: dict[str, Any], tmp_path: Path
) -> None:
    custom = {
        **rate_limits,
        "auth_session": {"limit": 4321, "window_seconds": 60},
        "tiers": [
            {"name": "starter", "min_purchased": 0, "multiplier": 1},
            {"name": "silver", "min_purchased": 10, "multiplier": 4},
            {"name": "gold", "min_purchased": 5000, "multiplier": 9},
        ],
    }
    redis = OwnRedisServer(tmp_path)
    run_dir = platform["gateway"].log_path.parent
    await redis.start()
    try:
        await _replace_gateway(platform, {**platform_env, "REDIS_URL": redis.url}, run_dir)
        status, stored, _ = await api("PUT", SETTINGS, admin_token, json=custom)
        assert (status, stored) == (200, custom)
        cache = Redis.from_url(redis.url)
        try:
            assert await cache.get("ratelimit:settings") is not None, "cached in the gateway's Redis"
        finally:
            await cache.aclose()

        redis.kill()
        await redis.start()  # the same port, empty
        fresh = Redis.from_url(redis.url)
        try:
            assert await fresh.get("ratelimit:settings") is None, "the restart lost the cached settings"
            await asyncio.sleep(1.5)  # past the gateway's one-second copy: it must ask Redis, then identity
            answered: list[Any] = []

            async def read_back() -> bool:
                status, body, _ = await api("GET", SETTINGS, admin_token)
                answered[:] = [(status, body)]
                return status == 200

            # The gateway reconnects to the restarted Redis (a 503 meanwhile).
            await wait_until(read_back, timeout=30, what="the gateway to answer again", interval=0.2)
            assert answered[0][1] == custom, "unchanged: read back from identity, not reset to the defaults"
            assert await fresh.get("ratelimit:settings") is not None, "and cached again"
            status, _, response = await api("GET", "/api/auth/session", admin_token)
            assert status == 200
            assert response.headers["X-RateLimit-Limit"] == "4321", "the kept limits are the ones applied"
        finally:
            await fresh.aclose()
    finally:
        # Whatever happened: the platform's own gateway (on the platform's Redis) is back, and so is the
        # suite's relaxed rate limits (the `rate_limits` fixture puts them back through it).
        try:
            await _replace_gateway(platform, platform_env, run_dir)
        finally:
            redis.stop()
