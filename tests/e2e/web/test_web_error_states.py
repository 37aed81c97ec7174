"""The web app when the network goes away, in headless Chromium against the running platform: a page whose
data cannot load says so in words, with a Retry button, instead of a blank page or its empty state. Retry
asks again (offline, it fails again and says so again, still not the empty state); back online, Retry
brings the data. Offline is Chromium's own (`context.set_offline`: `navigator.onLine` false, the `offline`
and `online` events, every request failing with ERR_INTERNET_DISCONNECTED), not request interception."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Browser, Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from .conftest import page_errors, screenshot
from .test_web_app import a_package, signed_in

pytestmark = pytest.mark.usefixtures("seeded_tools")

NETWORK_ERROR = "Cannot reach FunMagic. Check your connection."
BUSY = re.compile(r"\bn-button--loading\b")


async def on_the_tools_page(page: Page, *, then_opens: str) -> None:
    """The tools page, once the app has fetched the code of the header's pages (it does so when idle): a
    click on one opens it even offline, and the page itself says what it cannot load."""
    await page.goto("/tools")
    await expect(page.get_by_test_id("tool-card-figme")).to_be_visible()
    loaded = (
        "chunk => performance.getEntriesByType('resource').some((e) => e.name.includes(`/assets/${chunk}-`))"
    )
    await page.wait_for_function(loaded, arg=then_opens)


async def go_offline_and_open(page: Page, link: str) -> None:
    """Offline, then a click on the header's link: a client-side navigation, the app already loaded."""
    await page.context.set_offline(True)
    assert await page.evaluate("navigator.onLine") is False
    await page.get_by_role("navigation").get_by_role("link", name=link, exact=True).click()


async def back_online(page: Page, retry: Locator) -> None:
    """Back online, Retry brings the data — unless the app's own refetch on reconnecting got there first and
    the alert (with its button) is gone already; the caller then checks the data either way."""
    await page.context.set_offline(False)
    try:
        await retry.click(timeout=5_000)
    except PlaywrightTimeout:
        await expect(retry).to_have_count(0)  # gone, not stuck


async def retry_fails_again_offline(page: Page, retry: Locator, api_path: str) -> None:
    """Retry asks the server again (a request that fails, offline), then shows the error again."""
    await expect(retry).not_to_have_class(BUSY)
    async with page.expect_event("requestfailed", lambda request: api_path in request.url):
        await retry.click()
    await expect(retry).not_to_have_class(
        BUSY, timeout=15_000
    )  # the query's own retry, a second later, failed too


async def test_pricing_offline_shows_the_error_with_a_retry_that_brings_the_packages(
    browser: Browser, admin_token, stripe_fake
) -> None:
    package = await a_package(
        admin_token, stripe_fake, f"Offline {uuid.uuid4().hex[:4]}", credits=30, price_minor=299
    )
    page, _ = await signed_in(browser)
    await on_the_tools_page(page, then_opens="PricingPage")

    await go_offline_and_open(page, "Pricing")
    await expect(page).to_have_url(re.compile(r"/pricing$"))
    await expect(page.locator("h1")).to_have_text("Credits")
    problem = page.get_by_test_id("query-problem")
    await expect(problem).to_have_text(re.compile(re.escape(NETWORK_ERROR)))
    await expect(problem).to_have_attribute("role", "alert")
    retry = problem.get_by_role("button", name="Try again")
    await expect(retry).to_be_visible()
    # Neither the empty state nor a package: the page does not pretend nothing is on sale.
    await expect(page.get_by_text("No credit packages are on sale right now.")).to_have_count(0)
    await expect(page.get_by_test_id(f"package-{package['id']}")).to_have_count(0)
    await screenshot(page, "web-offline-error")

    await retry_fails_again_offline(page, retry, "/api/credits/packages")
    await expect(problem).to_have_text(re.compile(re.escape(NETWORK_ERROR)))
    await expect(page.get_by_text("No credit packages are on sale right now.")).to_have_count(0)

    await back_online(page, retry)
    await expect(page.get_by_test_id(f"package-{package['id']}")).to_contain_text(package["name"])
    await expect(problem).to_have_count(0)
    assert page_errors(page) == []


async def test_my_creations_offline_shows_the_error_not_the_empty_state(browser: Browser) -> None:
    page, _ = await signed_in(browser)
    await on_the_tools_page(page, then_opens="CreationsPage")

    await go_offline_and_open(page, "My creations")
    await expect(page).to_have_url(re.compile(r"/creations$"))
    await expect(page.locator("h1")).to_have_text("My creations")
    problem = page.get_by_test_id("query-problem")
    await expect(problem).to_have_text(re.compile(re.escape(NETWORK_ERROR)))
    empty = page.get_by_text("Nothing here yet. Run a tool and your results appear here.")
    await expect(empty).to_have_count(0)

    await retry_fails_again_offline(page, problem.get_by_role("button", name="Try again"), "/api/tasks")
    await expect(problem).to_have_text(re.compile(re.escape(NETWORK_ERROR)))
    await expect(empty).to_have_count(0)

    await back_online(page, problem.get_by_role("button", name="Try again"))
    # A new account has made nothing yet: now that the list loaded, the empty state is the truth.
    await expect(empty).to_be_visible()
    await expect(problem).to_have_count(0)
    assert page_errors(page) == []
