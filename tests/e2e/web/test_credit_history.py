"""The profile's credit history by task: a FigMe image and the 3D model made from it (a chained task) are one
group, what they cost together, expandable to their entries; in English and in Japanese, on a phone too."""

from __future__ import annotations

from typing import Any

from clients import GATEWAY_URL, bearer, call, png, sign_in, sign_up, unique_email, upload
from clients import browser as api_session
from playwright.async_api import Browser, Page, expect

from funmagic_kit.testing import wait_until

from .conftest import PHONE, new_page, page_errors, screenshot


async def api(token: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with api_session() as client:
        status, body, _ = await call(client, method, path, headers=bearer(token), **kwargs)
    return status, body


async def finished(token: str, task_id: str) -> None:
    async def done() -> bool:
        status, task = await api(token, "GET", f"/api/tasks/{task_id}")
        assert status == 200, task
        assert task["status"] not in ("failed", "cancelled"), task
        return task["status"] == "completed"

    await wait_until(done, timeout=90, what=f"task {task_id} to complete")


async def user_with_a_chain() -> tuple[str, str, str]:
    """A new user who made a FigMe image, then its 3D model from it: (email, image task, model task)."""
    email = unique_email("history")
    async with api_session() as client:
        token = (await sign_up(client, email, mode="token"))["access_token"]

    async def bonus_arrived() -> bool:
        return (await api(token, "GET", "/api/credits/balance"))[1]["balance"] >= 50

    await wait_until(bonus_arrived, timeout=30, what="the sign-up bonus")
    image = await upload(token, png(64, 64))
    status, first = await api(
        token,
        "POST",
        "/api/tasks",
        json={"toolSlug": "figme", "stepId": "image-gen", "input": {"imageAssetId": image}},
    )
    assert status == 202, first
    await finished(token, first["id"])
    status, second = await api(
        token,
        "POST",
        "/api/tasks",
        json={"toolSlug": "figme", "stepId": "3d-gen", "parentTaskId": first["id"]},
    )
    assert status == 202, second
    await finished(token, second["id"])

    async def settled() -> bool:
        return (await api(token, "GET", "/api/credits/balance"))[1]["reserved_balance"] == 0

    await wait_until(settled, timeout=30, what="the charges to settle")
    return email, first["id"], second["id"]


async def signed_in_page(browser: Browser, email: str, viewport: dict[str, int] | None = None) -> Page:
    async with api_session() as client:
        status, _ = await sign_in(client, email)
        assert status == 201
        cookies = [
            {"name": c.key, "value": c.value, "url": GATEWAY_URL + (c["path"] or "/")}
            for c in client.cookie_jar
        ]
    page = await new_page(browser, **({"viewport": viewport} if viewport else {}))
    await page.context.add_cookies(cookies)
    return page


async def test_a_chain_of_tasks_is_one_group_with_what_it_cost_and_opens_to_its_entries(
    browser: Browser, seeded_tools
) -> None:
    email, _, _ = await user_with_a_chain()
    page = await signed_in_page(browser, email)
    await page.goto("/profile")
    await expect(page.get_by_test_id("transactions").locator("tr")).to_have_count(3)  # bonus, two charges

    await page.get_by_test_id("transactions-by-task").click()

    groups = page.get_by_test_id("transaction-groups").locator("li")
    await expect(groups).to_have_count(2)
    chain = groups.first
    await expect(chain).to_contain_text("FigMe")
    await expect(chain).to_contain_text("-50")
    await expect(groups.nth(1)).to_contain_text("Welcome bonus")
    toggle = chain.get_by_role("button", name="2 entries")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.focus()
    await page.keyboard.press("Enter")  # keyboard works
    await expect(chain.locator("tr")).to_have_count(2)
    await expect(chain.get_by_role("button", name="Hide entries")).to_have_attribute("aria-expanded", "true")
    await expect(chain.locator("tr").first).to_contain_text("Used by a task")
    await page.get_by_test_id("transaction-groups").scroll_into_view_if_needed()
    await screenshot(page, "profile-history-by-task")
    assert page_errors(page) == []


async def test_the_grouped_history_reads_in_japanese_on_a_phone(browser: Browser, seeded_tools) -> None:
    email, _, _ = await user_with_a_chain()
    page = await signed_in_page(browser, email, viewport=PHONE)
    await page.goto("/ja/profile")

    await page.get_by_test_id("transactions-by-task").click()

    groups = page.get_by_test_id("transaction-groups").locator("li")
    await expect(groups).to_have_count(2)
    await expect(page.get_by_text("タスクごと")).to_be_visible()
    await groups.first.get_by_role("button", name="2件の取引").click()
    await expect(groups.first.locator("tr")).to_have_count(2)
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, "profile-history-by-task-ja-phone")
    assert page_errors(page) == []
