"""A browser's session outlives its access token, in headless Chromium against the running platform. The
access cookie lives as long as the token (five minutes); here it is taken out of the browser, as its expiry
would, so the next request finds no token and the app renews the session with the refresh cookie.

Tabs of one browser share the cookies: when two find the access token gone together, both refresh with the
same refresh cookie. The refresh requests are held until both have been sent (request routing delays them;
the platform answers them), so the race is there on every run: one rotates the token, the other is
superseded (409) and waits for the first one's cookies — neither tab is signed out, and the session is not
revoked as if its token had leaked."""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, Page, Response, Route, expect

from .conftest import new_page, page_errors
from .test_admin_app import sign_in_through_the_form
from .test_web_app import signed_in

pytestmark = pytest.mark.usefixtures("platform")


async def the_access_token_expires(page: Page) -> None:
    await page.context.clear_cookies(name="fm_access")
    assert {c["name"] for c in await page.context.cookies()} >= {"fm_refresh", "fm_csrf"}


async def shows_the_signed_in_profile(page: Page, email: str) -> None:
    await expect(page.get_by_text(email).first).to_be_visible()
    await expect(page.get_by_role("heading", name="Sign in")).to_have_count(0)


async def test_a_page_opened_after_the_access_token_expired_renews_the_session(browser: Browser) -> None:
    page, email = await signed_in(browser)
    await page.goto("/profile")
    await shows_the_signed_in_profile(page, email)

    await the_access_token_expires(page)
    async with page.expect_response("**/api/auth/refresh") as refreshed:
        await page.reload()
    assert (await refreshed.value).status == 200

    await shows_the_signed_in_profile(page, email)
    assert "fm_access" in {c["name"] for c in await page.context.cookies()}
    assert page_errors(page) == []


async def test_two_tabs_renewing_the_session_at_once_both_stay_signed_in(browser: Browser) -> None:
    first, email = await signed_in(browser)
    second = await first.context.new_page()
    for tab in (first, second):
        await tab.goto("/profile")
        await shows_the_signed_in_profile(tab, email)

    held: list[Route] = []
    both_sent = asyncio.Event()

    async def hold_until_both_are_sent(route: Route) -> None:
        held.append(route)
        if len(held) == 2:
            both_sent.set()
        await both_sent.wait()
        await route.continue_()

    await first.context.route("**/api/auth/refresh", hold_until_both_are_sent)
    await the_access_token_expires(first)
    refresh_statuses: list[int] = []

    def note_refresh(answer: Response) -> None:
        if answer.url.endswith("/api/auth/refresh"):
            refresh_statuses.append(answer.status)

    first.context.on("response", note_refresh)
    await asyncio.gather(first.reload(), second.reload())
    await asyncio.wait_for(both_sent.wait(), timeout=20)

    for tab in (first, second):
        await shows_the_signed_in_profile(tab, email)
    assert sorted(refresh_statuses) == [200, 409], "one renewal, and one superseded by it"
    # The session lives on: both tabs keep working with the renewed cookies.
    for tab in (first, second):
        me = await tab.request.get("/api/auth/me")
        assert me.status == 200, await me.text()
    assert page_errors(first) == []
    assert page_errors(second) == []


async def test_the_admin_app_opened_after_the_access_token_expired_renews_the_session(
    browser: Browser, admin_email: str
) -> None:
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_role("link", name="Users", exact=True)).to_be_visible()

    await the_access_token_expires(page)
    async with page.expect_response("**/api/auth/refresh") as refreshed:
        await page.goto("/admin/users")
    assert (await refreshed.value).status == 200

    await expect(page).to_have_url(re.compile(r"/admin/users"))
    await expect(page.get_by_test_id("user-search")).to_be_visible()
    assert page_errors(page) == []
