"""Account self-service in the web app: rename, upload an avatar (shown in the header), change the password
(other sessions end, this one stays), in English and German, on a desktop and on a 375 px phone; and the
signed-in devices, a page at a time, one of them signed out (offline first: the failure is shown, the device
stays)."""

from __future__ import annotations

import re

import pytest
from clients import GATEWAY_URL, PASSWORD, bearer, call, png, sign_in, sign_up, unique_email
from clients import browser as api_session
from playwright.async_api import Browser, Locator, Page, expect

from .conftest import DESKTOP, PHONE, new_page, page_errors, screenshot

pytestmark = pytest.mark.usefixtures("platform")

NEW_PASSWORD = "a fresh browser passphrase 9"
INITIALS = re.compile(r"^W[0-9A-F]$")
# What each locale says for the messages the test reads (the catalogs in apps/web/src/i18n).
TEXT = {
    "en": {"wrong": "Your current password is not right.", "changed": "Other devices signed out: 1."},
    "de": {"wrong": "Dein aktuelles Passwort stimmt nicht.", "changed": "Andere Geräte abgemeldet: 1."},
}


async def signed_in(browser: Browser, *, viewport: dict[str, int] = DESKTOP) -> tuple[Page, str]:
    """A page whose context holds a fresh user's session cookies (signed up through the API)."""
    email = unique_email("web-account")
    async with api_session() as client:
        await sign_up(client, email)
        cookies = [
            {"name": c.key, "value": c.value, "url": GATEWAY_URL + (c["path"] or "/")}
            for c in client.cookie_jar
        ]
    page = await new_page(browser, viewport=viewport)
    await page.context.add_cookies(cookies)
    return page, email


async def image_loaded(image: Locator) -> bool:
    return await image.evaluate("img => img.complete && img.naturalWidth > 0")


async def horizontal_overflow(page: Page) -> int:
    return await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("locale", ["en", "de"])
async def test_rename_avatar_and_password_change_on_the_profile_page(browser: Browser, locale: str) -> None:
    page, email = await signed_in(browser)
    prefix = "" if locale == "en" else f"/{locale}"
    await page.goto(f"{prefix}/profile")
    header_avatar = page.get_by_test_id("header-avatar")
    # The name is the email's local part, `web-account-<hex>`: its first and last words' letters.
    await expect(header_avatar.get_by_test_id("avatar-initials")).to_have_text(INITIALS)

    # Rename and choose a picture: the preview shows, Save keeps both, the header shows the picture at once.
    name = page.get_by_test_id("profile-name").locator("input")
    await name.fill("Ada Lovelace")
    await page.get_by_test_id("avatar-input").set_input_files(
        {"name": "me.png", "mimeType": "image/png", "buffer": png(96, 96, (40, 90, 200))}
    )
    await expect(page.get_by_test_id("avatar-preview").get_by_test_id("avatar-image")).to_be_visible()
    save = page.get_by_test_id("profile-save")
    await expect(save).to_be_enabled()  # the upload finished
    await screenshot(page, f"account-profile-preview-{locale}")
    await save.click()
    header_image = header_avatar.get_by_test_id("avatar-image")
    await expect(header_image).to_be_visible()
    await expect(header_image).to_have_attribute("src", re.compile(r"^https?://.+avatar.+"))
    assert await image_loaded(header_image)
    await expect(page.get_by_test_id("user-menu")).to_have_accessible_name("Ada Lovelace")
    await expect(save).to_be_disabled()  # nothing left to save

    # A new page load asks the gateway again: the name and the picture were kept.
    await page.reload()
    await expect(header_avatar.get_by_test_id("avatar-image")).to_be_visible()
    assert await image_loaded(header_avatar.get_by_test_id("avatar-image"))
    await expect(page.get_by_test_id("user-menu")).to_contain_text("Ada Lovelace")
    await expect(name).to_have_value("Ada Lovelace")

    # Change the password, by keyboard. Another device is signed in too.
    async with api_session() as client:
        status, elsewhere = await sign_in(client, email, mode="token")
        assert status == 201, elsewhere
    form = page.get_by_test_id("password-change")
    await form.get_by_test_id("current-password").locator("input").fill("not my password at all")
    await form.get_by_test_id("new-password").locator("input").fill(NEW_PASSWORD)
    await form.get_by_test_id("new-password").locator("input").press("Enter")
    await expect(form.get_by_test_id("problem")).to_have_text(TEXT[locale]["wrong"])

    await form.get_by_test_id("current-password").locator("input").fill(PASSWORD)
    await form.get_by_test_id("new-password").locator("input").press("Enter")
    await expect(form.get_by_test_id("password-changed")).to_contain_text(TEXT[locale]["changed"])
    await expect(form.get_by_test_id("current-password").locator("input")).to_have_value("")
    await screenshot(page, f"account-profile-{locale}")

    # The other device is signed out; this page is still signed in, and the new password is the one now.
    async with api_session() as client:
        status, _, _ = await call(client, "GET", "/api/auth/me", headers=bearer(elsewhere["access_token"]))
        assert status == 401
        assert (await sign_in(client, email, mode="token"))[0] == 401
        assert (await sign_in(client, email, NEW_PASSWORD, mode="token"))[0] == 201
    await page.reload()
    await expect(page.get_by_test_id("user-menu")).to_be_visible()
    await expect(page.get_by_test_id("profile-name").locator("input")).to_have_value("Ada Lovelace")
    assert page_errors(page) == []


async def test_the_account_forms_fit_a_phone_and_the_header_shows_initials_without_a_picture(
    browser: Browser,
) -> None:
    page, _ = await signed_in(browser, viewport=PHONE)
    await page.goto("/zh/profile")
    await expect(page.get_by_test_id("profile-editor")).to_be_visible()
    await expect(page.get_by_test_id("header-avatar").get_by_test_id("avatar-initials")).to_have_text(
        INITIALS
    )
    await expect(page.locator(".n-skeleton")).to_have_count(0)
    assert await horizontal_overflow(page) <= 0

    # A file that is not an image is refused before anything goes up, in the page's language.
    await page.get_by_test_id("avatar-input").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}
    )
    await expect(page.get_by_test_id("avatar-error")).to_be_visible()
    await expect(page.get_by_test_id("profile-save")).to_be_disabled()
    await page.get_by_test_id("profile-editor").scroll_into_view_if_needed()
    await screenshot(page, "account-profile-phone-zh")
    await page.get_by_test_id("password-change").scroll_into_view_if_needed()
    await screenshot(page, "account-password-phone-zh")
    assert await horizontal_overflow(page) <= 0
    assert page_errors(page) == []


async def test_the_devices_list_loads_more_and_a_device_signed_out_leaves_it(browser: Browser) -> None:
    page, email = await signed_in(browser)
    # Ten more devices: with this browser, one more than the list's first page (`SESSIONS_PAGE_SIZE`, 10).
    async with api_session() as client:
        others = []
        for _ in range(10):
            status, other = await sign_in(client, email, mode="token")
            assert status == 201, other
            others.append(other)
    await page.goto("/profile")
    devices = page.get_by_test_id("sessions").locator(".n-list-item")
    more = page.get_by_test_id("sessions-more")

    await expect(devices).to_have_count(10)
    await more.scroll_into_view_if_needed()
    await screenshot(page, "web-profile-devices")
    await more.click()
    await expect(devices).to_have_count(11)
    await expect(more).to_have_count(0)
    # This browser signed in first, so it is the oldest: the last row, the one without a button.
    await expect(devices.last.get_by_text("This device")).to_be_visible()
    await expect(devices.get_by_role("button", name="Sign out")).to_have_count(10)

    # Offline, signing a device out fails and says so; the device stays listed (nothing was signed out).
    await page.context.set_offline(True)
    await devices.first.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("Cannot reach FunMagic. Check your connection.")).to_be_visible()
    await page.context.set_offline(False)
    await expect(devices).to_have_count(11)

    # Newest first: the first row is the last device that signed in.
    await devices.first.get_by_role("button", name="Sign out").click()
    await expect(devices).to_have_count(10)
    await expect(more).to_have_count(0)
    async with api_session() as client:
        newest = bearer(others[-1]["access_token"])
        status, _, _ = await call(client, "GET", "/api/auth/session", headers=newest)
        assert status == 401, "the device signed out on the page is signed out"
        oldest = bearer(others[0]["access_token"])
        status, listed, _ = await call(client, "GET", "/api/auth/sessions", headers=oldest)
        assert (status, len(listed["items"])) == (200, 10)
    assert page_errors(page) == []
