"""The admin app's overview, end to end through the gateway: an admin reads the figures, a new user signs up
(a bonus), runs a task that completes (a charge) and one that fails (not enough credits), buys a package
through the fake Stripe (a purchase and its revenue), a provider is registered and checked, and the
overview moved by exactly that. The e2e databases are the session's, so the test compares the figures
before and after (over a day: nothing the session did falls out of it meanwhile), never absolute counts.
Also: each window's buckets, the three routes agree, and who may read them.
"""

from __future__ import annotations

import uuid
from typing import Any

from clients import GATEWAY_URL, PASSWORD, STRIPE_WEBHOOK_SECRET, bearer, browser, call, png, upload

from funmagic_kit.testing import wait_until

OVERVIEW = "/api/admin/stats/overview"
WEBHOOK_URL = f"{GATEWAY_URL}/api/webhooks/stripe"
TERMINAL = {"completed", "failed", "cancelled"}


async def api(method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    async with browser() as client:
        status, body, _ = await call(client, method, path, headers=headers, **kwargs)
    return status, body


async def overview(admin_token: str, window: str = "24h") -> dict[str, Any]:
    status, body = await api("GET", OVERVIEW, admin_token, params={"window": window})
    assert status == 200, body
    return body


async def new_user() -> dict[str, str]:
    """A signed-up user (token mode) once the sign-up bonus is on their balance."""
    email = f"stats-{uuid.uuid4().hex[:12]}@example.com"
    status, account = await api(
        "POST", "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "mode": "token"}
    )
    assert status == 201, account
    user = {"id": account["user"]["id"], "token": account["access_token"], "email": email}
    await until_balance(user, 50)
    return user


async def until_balance(user: dict[str, str], expected: int) -> None:
    async def there() -> bool:
        status, body = await api("GET", "/api/credits/balance", user["token"])
        assert status == 200, body
        return body["balance"] == expected and body["reserved_balance"] == 0

    await wait_until(there, timeout=30, what=f"a balance of {expected}", interval=0.1)


async def ended_task(user: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    status, task = await api("POST", "/api/tasks", user["token"], json=body)
    assert status == 202, task
    latest: list[dict[str, Any]] = []

    async def ended() -> bool:
        status, read = await api("GET", f"/api/tasks/{task['id']}", user["token"])
        assert status == 200, read
        latest[:] = [read]
        return read["status"] in TERMINAL

    await wait_until(ended, timeout=60, what=f"task {task['id']} to end", interval=0.1)
    return latest[0]


async def expensive_tool(admin_token: str) -> str:
    """A tool whose one step costs more than a new user's bonus."""
    name = f"e2e-stats-{uuid.uuid4().hex[:10]}"
    status, tool_type = await api(
        "POST", "/api/admin/tool-types", admin_token, json={"name": name, "display_name": name.title()}
    )
    assert status == 201, tool_type
    step = {"id": "cut", "name": "Cut", "type": "remove-bg", "cost": 60,
            "provider": {"name": "local", "model": "default", "options": {}},
            "input": {"image": "required", "prompt": "none"}}  # fmt: skip
    body = {"slug": name, "title": name, "tool_type_id": tool_type["id"], "config": {"steps": [step]}}
    status, tool = await api("POST", "/api/admin/tools", admin_token, json=body)
    assert status == 201, tool
    return str(tool["slug"])


async def buy(admin_token: str, stripe_fake: Any, user: dict[str, str]) -> None:
    """The user buys a package of 100 credits for 4.99 USD through the fake Stripe's hosted page."""
    price_id = f"price_{uuid.uuid4().hex[:12]}"
    stripe_fake.fake.register_price(price_id, 499, "usd", "100 credits")
    package = {"name": "100 credits", "credits": 100, "price_minor": 499, "currency": "USD",
               "stripe_price_id": price_id}  # fmt: skip
    status, package = await api("POST", "/api/admin/credit-packages", admin_token, json=package)
    assert status == 201, package
    status, checkout = await api(
        "POST", "/api/credits/checkout", user["token"], json={"package_id": package["id"]}
    )
    assert status == 201, checkout
    event = stripe_fake.fake.complete_session(checkout["session_id"])
    status, receipt = await stripe_fake.fake.deliver(event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET)
    assert status == 200, receipt


def series_sums(tasks: dict[str, Any]) -> dict[str, int]:
    return {k: sum(p[k] for p in tasks["series"]) for k in ("created", "completed", "failed")}


def revenue_of(credits: dict[str, Any], currency: str) -> tuple[int, int]:
    found = [r for r in credits["revenue"] if r["currency"] == currency]
    return (found[0]["amount_minor"], found[0]["purchases"]) if found else (0, 0)


async def test_the_overview_moves_by_exactly_what_was_done(
    platform, seeded_tools, stripe_fake, admin_token: str
) -> None:
    slug = await expensive_tool(admin_token)
    before = await overview(admin_token)

    user = await new_user()  # +50 bonus
    image = await upload(user["token"], png())
    done = await ended_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    assert (done["status"], done["charged_credits"]) == ("completed", 5), done
    refused = await ended_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
    assert (refused["status"], refused["error"]["code"]) == ("failed", "insufficient_credits"), refused
    await buy(admin_token, stripe_fake, user)
    await until_balance(user, 50 - 5 + 100)

    after = await overview(admin_token)

    tasks_before, tasks_after = before["tasks"], after["tasks"]
    assert tasks_after["created"] - tasks_before["created"] == 2
    assert tasks_after["active_users"] - tasks_before["active_users"] == 1
    statuses = tasks_after["by_status"]
    assert {k: statuses[k] - tasks_before["by_status"][k] for k in statuses} == {
        "pending": 0, "running": 0, "completed": 1, "failed": 1, "cancelled": 0,
    }  # fmt: skip
    assert {k: tasks_after["finished"][k] - tasks_before["finished"][k] for k in ("completed", "failed")} == {
        "completed": 1,
        "failed": 1,
    }
    finished = tasks_after["finished"]
    assert tasks_after["success_rate"] == finished["completed"] / (finished["completed"] + finished["failed"])
    sums_before, sums_after = series_sums(tasks_before), series_sums(tasks_after)
    assert {k: sums_after[k] - sums_before[k] for k in sums_after} == {
        "created": 2,
        "completed": 1,
        "failed": 1,
    }
    assert sums_after["created"] == tasks_after["created"]

    credits_before, credits_after = before["credits"], after["credits"]
    moved = {
        k: credits_after[k] - credits_before[k]
        for k in ("credits_sold", "purchases", "credits_spent", "credits_refunded", "bonus_granted",
                  "credits_adjusted")
    }  # fmt: skip
    # The failed task was refused its hold: nothing was held, so nothing comes back.
    assert moved == {
        "credits_sold": 100, "purchases": 1, "credits_spent": 5, "credits_refunded": 0, "bonus_granted": 50,
        "credits_adjusted": 0,
    }  # fmt: skip
    usd_before, usd_after = revenue_of(credits_before, "USD"), revenue_of(credits_after, "USD")
    assert (usd_after[0] - usd_before[0], usd_after[1] - usd_before[1]) == (499, 1)


async def test_the_overview_shows_each_provider_of_user_tools_with_its_last_check(
    platform, admin_token: str
) -> None:
    name = f"local-{uuid.uuid4().hex[:8]}"
    status, created = await api(
        "POST", "/api/admin/providers", admin_token, json={"name": name, "type": "local"}
    )
    assert status == 201, created
    status, checked = await api("POST", f"/api/admin/providers/{created['id']}/health-check", admin_token)
    assert status == 200, checked
    assert checked["health_checked_at"] is not None

    shown = await overview(admin_token, "1h")

    status, registry = await api("GET", "/api/admin/providers", admin_token, params={"limit": "200"})
    assert status == 200, registry
    assert [p["name"] for p in shown["providers"]] == sorted(p["name"] for p in registry["items"])
    (mine,) = [p for p in shown["providers"] if p["name"] == name]
    assert (mine["id"], mine["type"], mine["is_active"]) == (created["id"], "local", True)
    assert mine["is_healthy"] == checked["is_healthy"]
    assert mine["health_checked_at"] is not None
    assert "config" not in mine


async def test_each_window_has_its_buckets_and_the_three_routes_agree(platform, admin_token: str) -> None:
    for window, size, count in (("1h", 60, 60), ("24h", 900, 96), ("7d", 7200, 84), ("30d", 43_200, 60)):
        body = await overview(admin_token, window)
        assert (body["window"], body["tasks"]["bucket_seconds"], len(body["tasks"]["series"])) == (
            window, size, count,
        ), window  # fmt: skip
        assert (body["since"], body["until"]) == (body["credits"]["since"], body["credits"]["until"]), window

    status, tasks = await api("GET", "/api/admin/stats/tasks", admin_token, params={"window": "30d"})
    assert status == 200, tasks
    status, credits = await api("GET", "/api/admin/stats/credits", admin_token, params={"window": "30d"})
    assert status == 200, credits
    whole = await overview(admin_token, "30d")
    # Nothing else runs meanwhile: the parts alone are what the overview shows.
    assert whole["tasks"]["created"] == tasks["created"]
    assert whole["credits"]["credits_sold"] == credits["credits_sold"]
    status, default = await api("GET", OVERVIEW, admin_token)
    assert (status, default["window"], len(default["tasks"]["series"])) == (200, "24h", 96)


async def test_only_admins_and_super_admins_may_read_the_figures(platform, admin_token: str) -> None:
    user, promoted = await new_user(), await new_user()
    status, granted = await api(
        "PUT", f"/api/admin/users/{promoted['id']}/role", admin_token, json={"role": "admin"}
    )
    assert (status, granted["role"]) == (200, "admin"), granted
    status, signed_in = await api(  # a token issued after the promotion carries the role
        "POST", "/api/auth/sign-in/email", json={"email": promoted["email"], "password": PASSWORD,
                                                 "mode": "token"},
    )  # fmt: skip
    assert status in (200, 201), signed_in
    tokens = {"anonymous": None, "user": user["token"], "admin": signed_in["access_token"],
              "super_admin": admin_token}  # fmt: skip

    for path in (OVERVIEW, "/api/admin/stats/tasks", "/api/admin/stats/credits"):
        statuses = {who: (await api("GET", path, token))[0] for who, token in tokens.items()}
        assert statuses == {"anonymous": 401, "user": 403, "admin": 200, "super_admin": 200}, path
        status, problem = await api("GET", path, admin_token, params={"window": "2h"})
        assert status == 422, (path, problem)
