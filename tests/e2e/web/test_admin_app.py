"""The admin app (`/admin/`), as operators use it: in headless Chromium against the running platform. The
server decides who is an admin; the app only follows (a plain user who opens it is refused by the API)."""

from __future__ import annotations

import re
import uuid

import pytest
from clients import GATEWAY_URL, PASSWORD, bearer, call, png, sign_up, unique_email, upload
from clients import browser as api_session
from playwright.async_api import Browser, Page, expect

from funmagic_kit.testing import wait_until

from .conftest import DESKTOP, PHONE, new_page, page_errors, screenshot
from .test_web_app import slow_tool

pytestmark = pytest.mark.usefixtures("seeded_tools")


async def signed_in_user(browser: Browser) -> tuple[Page, dict]:
    async with api_session() as client:
        account = await sign_up(client, unique_email("admin-app-user"))
        cookies = [
            {"name": c.key, "value": c.value, "url": GATEWAY_URL + (c["path"] or "/")}
            for c in client.cookie_jar
        ]
    page = await new_page(browser)
    await page.context.add_cookies(cookies)
    return page, account


async def sign_in_through_the_form(page: Page, email: str) -> None:
    await page.goto("/admin/")
    await expect(page).to_have_url(re.compile(r"/admin/sign-in"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_test_id("sign-in").click()


async def test_a_plain_user_is_refused_by_the_server_not_only_the_menu(browser: Browser) -> None:
    page, _ = await signed_in_user(browser)
    await page.goto("/admin/users")
    await expect(page.get_by_test_id("not-authorised")).to_be_visible()
    refused = await page.request.get("/api/admin/users")
    assert refused.status == 403
    assert (await refused.json())["status"] == 403


async def test_an_admin_finds_a_user_and_adjusts_credits_once_per_key(browser: Browser, admin_email) -> None:
    customer_email = unique_email("admin-app-customer")
    async with api_session() as client:
        customer = await sign_up(client, customer_email)
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await page.get_by_role("link", name="Users", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/admin/users"))

    await page.get_by_test_id("user-search").locator("input").fill(customer_email)
    await expect(page).to_have_url(re.compile(r"\?q="))  # the search has run
    await page.get_by_role("link", name=customer_email).click()
    await expect(page.get_by_test_id("user-balance")).to_have_text("50")
    await page.get_by_label("Amount").fill("7")
    await page.get_by_label("Reason", exact=True).fill("goodwill")
    await page.get_by_test_id("adjust").click()
    await expect(page.get_by_test_id("user-balance")).to_have_text("57")
    # The history says the adjustment's reason, and no server wording such as "Bonus: signup_bonus".
    await expect(page.get_by_role("cell", name="goodwill")).to_be_visible()
    await expect(page.get_by_text("signup_bonus")).to_have_count(0)
    await screenshot(page, "admin-user")
    # On a phone the history's amounts stay whole ("+57", not "+5" over "7": a card breaks words anywhere).
    await page.set_viewport_size(PHONE)
    one_line = """() => [...document.querySelectorAll('td.amount')].map((cell) => {
      const range = document.createRange()
      range.selectNodeContents(cell)
      return range.getClientRects().length
    })"""
    lines = await page.evaluate(one_line)
    assert lines, "the history shows no amounts"
    assert set(lines) == {1}, lines
    await page.set_viewport_size(DESKTOP)

    # A client retrying one adjustment with the same key: applied once.
    key = str(uuid.uuid4())
    path = f"/api/admin/users/{customer['user']['id']}/credits"
    csrf = next(c["value"] for c in await page.context.cookies() if c["name"] == "fm_csrf")
    for _ in range(2):
        response = await page.request.post(
            path,
            data={"amount": 3, "reason": "retried"},
            headers={"Idempotency-Key": key, "X-CSRF-Token": csrf},
        )
        assert response.status in (200, 201), await response.text()
    balance = await (await page.request.get(path)).json()
    assert balance["balance"] == 60
    assert page_errors(page) == []


async def test_the_overview_shows_the_platforms_numbers_for_the_chosen_window(
    browser: Browser, admin_email
) -> None:
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_test_id("stat-created")).to_be_visible()
    await page.get_by_text("Last 7 days").click()
    await expect(page.get_by_test_id("window-7d")).to_have_attribute("aria-pressed", "true")

    async def shown_and_served() -> tuple[str, int, int]:
        served = await (await page.request.get("/api/admin/stats/overview?window=7d")).json()
        return (
            await page.get_by_test_id("stat-created").inner_text(),
            served["tasks"]["created"],
            served["credits"]["credits_spent"],
        )

    # The page and the API agree (read back to back: nothing runs between them in this test's session).
    shown, created, spent = await shown_and_served()
    assert shown.replace(",", "") == str(created)
    await expect(page.get_by_test_id("stat-spent")).to_have_text(f"{spent:,}")
    # The chart says what its bars add up to, or that the window had no tasks, never an empty box.
    served = await (await page.request.get("/api/admin/stats/overview?window=7d")).json()
    charted = sum(point["created"] for point in served["tasks"]["series"])
    if charted:
        await expect(page.get_by_test_id("chart-created")).to_have_text(f"{charted:,} created")
        await expect(page.get_by_test_id("tasks-chart")).to_be_visible()
    else:
        await expect(page.get_by_test_id("tasks-chart-empty")).to_have_text(
            "No tasks were created in this window."
        )
        await expect(page.get_by_test_id("tasks-chart")).to_have_count(0)
    await screenshot(page, "admin-overview")
    assert page_errors(page) == []


async def test_on_a_phone_in_chinese_the_admin_app_speaks_the_browsers_language_and_fits_the_screen(
    browser: Browser, admin_email, admin_token
) -> None:
    # A package off sale (the pricing page other tests look at does not list it), so the table has a row.
    async with api_session() as client:
        status, body, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={
                "name": f"Phone {uuid.uuid4().hex[:6]}",
                "credits": 100,
                "price_minor": 499,
                "currency": "USD",
                "is_active": False,
            },
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert status == 201, body
    page = await new_page(browser, viewport=PHONE, locale="zh-CN")
    await page.goto("/admin/")
    # A first visit follows the browser's language: nothing was chosen in this browser yet.
    await page.get_by_label("邮箱").fill(admin_email)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_test_id("sign-in").click()
    await expect(page.get_by_role("heading", name="概览")).to_be_visible()
    # Four window buttons do not fit 375 px: the choice is a select there, and nothing runs off the screen.
    await expect(page.get_by_test_id("window-7d")).to_be_hidden()
    await page.get_by_test_id("window-select").click()
    await page.locator(".n-base-select-option", has_text="最近 7 天").click()
    await expect(page.get_by_test_id("window-select")).to_contain_text("最近 7 天")
    served = await (await page.request.get("/api/admin/stats/overview?window=7d")).json()
    await expect(page.get_by_test_id("stat-created")).to_have_text(f"{served['tasks']['created']:,}")
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the phone"
    await screenshot(page, "admin-overview-phone-zh")

    # The menu folds behind one button on a phone; a page opened from it folds it again.
    await expect(page.get_by_test_id("nav-sections")).to_be_hidden()
    await page.get_by_test_id("menu-toggle").click()
    await expect(page.get_by_test_id("menu-toggle")).to_have_attribute("aria-expanded", "true")
    await page.get_by_test_id("nav-packages").click()
    await expect(page.get_by_role("heading", name="积分套餐")).to_be_visible()
    await expect(page.get_by_test_id("nav-sections")).to_be_hidden()
    # A table wider than the phone scrolls in its own box: its edge is on the screen, not cut off.
    table = page.get_by_test_id("packages")
    await expect(table).to_be_visible()
    right = await table.evaluate("(table) => table.getBoundingClientRect().right")
    assert right <= PHONE["width"], f"the table's edge is at {right} px on a {PHONE['width']} px screen"
    assert page_errors(page) == []


async def test_a_plain_admin_cannot_change_roles_in_the_app_or_the_api(browser: Browser, admin_token) -> None:
    email = unique_email("admin-app-admin")
    async with api_session() as client:
        account = await sign_up(client, email)
        status, body, _ = await call(
            client,
            "PUT",
            f"/api/admin/users/{account['user']['id']}/role",
            json={"role": "admin"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert status == 200, body
    page = await new_page(browser)
    await sign_in_through_the_form(page, email)
    await page.get_by_role("link", name="Users", exact=True).click()
    await page.get_by_test_id("user-search").locator("input").fill(email)
    await expect(page).to_have_url(re.compile(r"\?q="))  # the search has run
    await page.get_by_role("link", name=email).click()
    await expect(page.get_by_text("Only a super admin changes roles.")).to_be_visible()
    csrf = next(c["value"] for c in await page.context.cookies() if c["name"] == "fm_csrf")
    refused = await page.request.put(
        f"/api/admin/users/{account['user']['id']}/role",
        data={"role": "super_admin"},
        headers={"X-CSRF-Token": csrf},
    )
    assert refused.status == 403


async def test_an_admin_cancels_a_running_task_and_its_user_gets_the_hold_back(
    browser: Browser, admin_email, admin_token
) -> None:
    slug = await slow_tool(admin_token, duration_ms=30_000)
    async with api_session() as client:
        account = await sign_up(client, unique_email("admin-app-runner"), mode="token")
        token = account["access_token"]
        image = await upload(token, png(64, 48))
        status, task, _ = await call(
            client, "POST", "/api/tasks", headers=bearer(token),
            json={"toolSlug": slug, "input": {"imageAssetId": image}},
        )  # fmt: skip
        assert status == 202, task
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await page.get_by_role("link", name="Tasks", exact=True).click()
    await page.get_by_test_id("filter-user").locator("input").fill(account["user"]["id"])
    await page.get_by_test_id("apply-filters").click()
    await page.get_by_role("link", name=slug).click()
    await expect(page.get_by_test_id("task-status")).to_have_text(re.compile("Pending|Running"))
    await screenshot(page, "admin-task")
    await page.get_by_test_id("cancel-task").click()
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_test_id("task-status")).to_have_text("Cancelled", timeout=30_000)

    async def hold_released() -> bool:
        async with api_session() as client:
            _, balance, _ = await call(client, "GET", "/api/credits/balance", headers=bearer(token))
            _, ended, _ = await call(client, "GET", f"/api/tasks/{task['id']}", headers=bearer(token))
        # Only what the task used is kept (a cancel mid-step may charge the part that ran); the rest is back.
        charged = ended["charged_credits"] or 0
        return balance["reserved_balance"] == 0 and balance["balance"] == 50 - charged

    await wait_until(hold_released, timeout=30, what="the cancelled task's hold to come back")
