"""The admin app's settings pages (`/admin/banners`, `/admin/packages`, `/admin/providers`,
`/admin/admin-providers`, `/admin/settings/rate-limits`), as operators use them, in headless Chromium
against the running platform: what a plain admin may not reach (menu, page and API alike), the studio's
providers with their write-only keys and health history, a scheduled and translated banner the web app then
shows, a credit package the shop then sells changed, and the API rate limits read back."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clients import bearer, call, png, sign_up, unique_email
from clients import browser as api_session
from openai_api import FakeOpenAI
from playwright.async_api import Browser, Page, expect

from .conftest import new_page, page_errors, screenshot
from .test_admin_app import sign_in_through_the_form

pytestmark = pytest.mark.usefixtures("seeded_tools")

# Tall enough that an editor's sections are on one screen for the screenshot.
EDITOR = {"width": 1360, "height": 1400}


async def sign_in(page: Page, email: str) -> None:
    """Signs in through the form and waits until the session is there (the header names the account)."""
    await sign_in_through_the_form(page, email)
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text(email)


async def settled(page: Page) -> None:
    """No toast over the page (each lasts a few seconds): what a screenshot should show."""
    await expect(page.locator(".n-message")).to_have_count(0, timeout=10_000)


async def csrf(page: Page) -> dict[str, str]:
    return {"X-CSRF-Token": next(c["value"] for c in await page.context.cookies() if c["name"] == "fm_csrf")}


async def plain_admin(admin_token: str) -> tuple[str, str]:
    """A new account made an admin (not a super admin) by the session's super admin: (email, user id)."""
    email = unique_email("settings-admin")
    async with api_session() as client:
        account = await sign_up(client, email)
        status, body, _ = await call(
            client, "PUT", f"/api/admin/users/{account['user']['id']}/role",
            json={"role": "admin"}, headers=bearer(admin_token),
        )  # fmt: skip
        assert status == 200, body
    return email, account["user"]["id"]


async def test_a_plain_admin_reaches_neither_the_studio_providers_nor_role_changes(
    browser: Browser, admin_token
) -> None:
    email, _ = await plain_admin(admin_token)
    async with api_session() as client:
        other = await sign_up(client, unique_email("settings-other"))
    page = await new_page(browser)
    await sign_in(page, email)
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text("Admin")

    # The menu offers the web providers only.
    providers = page.get_by_test_id("nav-group-providers")
    await expect(providers.get_by_role("link", name="Providers", exact=True)).to_be_visible()
    await expect(page.get_by_test_id("nav-admin-providers")).to_have_count(0)
    await expect(page.get_by_role("link", name="Studio providers")).to_have_count(0)

    # The page refuses, and so does the API, whatever the browser does.
    await page.goto("/admin/admin-providers")
    await expect(page.get_by_test_id("not-authorised")).to_be_visible()
    await expect(page.get_by_test_id("not-authorised")).to_contain_text("Only a super admin")
    await screenshot(page, "admin-studio-providers-refused")
    refused = await page.request.get("/api/admin/admin-providers")
    assert refused.status == 403
    assert (await refused.json())["status"] == 403
    history = await page.request.get(f"/api/admin/admin-providers/{uuid.uuid4()}/health-history")
    assert history.status == 403
    created = await page.request.post(
        "/api/admin/admin-providers", data={"name": "sneaky", "type": "local"}, headers=await csrf(page)
    )
    assert created.status == 403

    # Roles: the control is there but disabled, and the API refuses the change.
    await page.goto(f"/admin/users/{other['user']['id']}")
    await expect(page.get_by_text("Only a super admin changes roles.")).to_be_visible()
    await expect(page.get_by_test_id("role").locator(".n-base-selection--disabled")).to_have_count(1)
    refused = await page.request.put(
        f"/api/admin/users/{other['user']['id']}/role", data={"role": "admin"}, headers=await csrf(page)
    )
    assert refused.status == 403
    assert page_errors(page) == []


async def test_a_super_admin_keeps_a_studio_provider_key_write_only_and_checks_its_health(
    browser: Browser, admin_email
) -> None:
    tag = uuid.uuid4().hex[:6]
    first_key, second_key = f"sk-studio-first-{tag}-1111", f"sk-studio-second-{tag}-2222"
    name = f"studio-openai-{tag}"
    async with FakeOpenAI(api_key=first_key) as fake:
        page = await new_page(browser, viewport=EDITOR)
        await sign_in(page, admin_email)
        await page.get_by_test_id("nav-group-providers").get_by_role("link", name="Studio providers").click()
        await expect(page).to_have_url(re.compile(r"/admin/admin-providers$"))
        await page.get_by_test_id("new-provider").click()

        # A new provider: the key is typed once, into a password field.
        await page.get_by_test_id("provider-name").locator("input").fill(name)
        key_input = page.get_by_test_id("provider-key-input").locator("input")
        await expect(key_input).to_have_attribute("type", "password")
        await key_input.fill(first_key)
        await page.get_by_test_id("limit-maxConcurrency").locator("input").fill("2")
        # The form's own check (an OpenAI provider needs its address) stops the save.
        await page.get_by_test_id("save-provider").click()
        await expect(page.get_by_test_id("provider-form")).to_contain_text(
            "This provider needs its API base URL."
        )
        await expect(page).to_have_url(re.compile(r"/admin/admin-providers/new$"))
        await page.get_by_test_id("provider-base-url").locator("input").fill(fake.url)
        await page.get_by_test_id("save-provider").click()
        await expect(page).to_have_url(re.compile(r"/admin/admin-providers/[0-9a-f-]{36}$"))
        provider_id = page.url.rsplit("/", 1)[-1]

        # Only the hint is ever shown; the key is in no input and nowhere in the page or the API's answer.
        await expect(page.get_by_test_id("key-hint")).to_have_text("••••1111")
        await expect(page.get_by_test_id("provider-key-input")).to_have_count(0)
        assert first_key not in await page.content()
        served = await (await page.request.get(f"/api/admin/admin-providers/{provider_id}")).json()
        assert served["api_key_hint"] == "••••1111"
        assert served["config"] == {"rateLimit": {"maxConcurrency": 2}}
        assert first_key not in str(served)

        # A check now: healthy, in the history.
        await page.get_by_test_id("check-health").click()
        await expect(page.get_by_test_id("check-result")).to_contain_text("Healthy")
        await expect(page.get_by_test_id("health-state")).to_have_text("Healthy")
        history = page.get_by_test_id("health-history")
        # (The service's own periodic round may add checks of its own; these assertions leave room for it.)
        await expect(history.locator("li").first).to_contain_text("Healthy")

        # Replacing the key: a new, empty input; the old key is not in it.
        await page.get_by_test_id("replace-key").click()
        await expect(page.get_by_test_id("provider-key-input").locator("input")).to_have_value("")
        await page.get_by_test_id("provider-key-input").locator("input").fill(second_key)
        await page.get_by_test_id("save-provider").click()
        await expect(page.get_by_test_id("key-hint")).to_have_text("••••2222")
        assert second_key not in await page.content()

        # The fake knows only the first key: the next check fails, and the history says why.
        await page.get_by_test_id("check-health").click()
        await expect(page.get_by_test_id("check-result")).to_contain_text("Unhealthy")
        newest = history.locator("li").first
        await expect(newest).to_contain_text("Unhealthy")
        await expect(newest).to_contain_text("the API key was refused (HTTP 401)")
        await expect(history.get_by_test_id("health-ok").first).to_be_visible()  # the older check, below
        await settled(page)
        await screenshot(page, "admin-provider-editor")

        served = await (
            await page.request.get(f"/api/admin/admin-providers/{provider_id}/health-history")
        ).json()
        manual = [check["healthy"] for check in served["items"] if check["trigger"] == "manual"]
        assert manual == [False, True]  # newest first
        assert second_key not in str(served)
        assert first_key not in str(served)
        # Each check really asked the provider (the second with the new key, which the fake refused).
        assert [r.endpoint for r in fake.requests].count("models") >= 2

        await page.get_by_role("link", name="Studio providers").first.click()
        await expect(page.get_by_test_id(f"provider-row-{name}")).to_contain_text("••••2222")
        await expect(page.get_by_test_id(f"provider-row-{name}")).to_contain_text("Unhealthy")
        await settled(page)
        await screenshot(page, "admin-providers")

        # Moving the provider to another address (the same fake, by name instead of by number): the stored
        # key would go there, so the form asks for it again and the server refuses the move without it.
        await page.goto(f"/admin/admin-providers/{provider_id}")
        moved = fake.url.replace("127.0.0.1", "localhost")
        await page.get_by_test_id("provider-base-url").locator("input").fill(moved)
        key_input = page.get_by_test_id("provider-key-input").locator("input")
        await expect(key_input).to_have_value("")
        await expect(page.get_by_test_id("keep-key")).to_have_count(0)
        await page.get_by_test_id("save-provider").click()
        await expect(page.get_by_test_id("provider-key")).to_contain_text(
            "A new address needs the API key again"
        )
        refused = await page.request.patch(
            f"/api/admin/admin-providers/{provider_id}", data={"base_url": moved}, headers=await csrf(page),
        )  # fmt: skip
        assert refused.status == 422, await refused.text()
        await key_input.fill(first_key)
        await page.get_by_test_id("save-provider").click()
        await expect(page.get_by_test_id("key-hint")).to_have_text("••••1111")
        await page.get_by_test_id("check-health").click()
        await expect(page.get_by_test_id("check-result")).to_contain_text("Healthy")
        served = await (await page.request.get(f"/api/admin/admin-providers/{provider_id}")).json()
        assert served["base_url"] == moved
        assert page_errors(page) == []


async def pick(page: Page, picker: str, moment: datetime) -> None:
    """Types a moment into a Naive UI date-time picker (as the admin's clock shows it) and closes it."""
    field = page.get_by_test_id(picker).locator("input")
    await field.click()
    await field.fill(moment.strftime("%Y-%m-%d %H:%M"))
    await field.press("Enter")
    await page.keyboard.press("Escape")


async def test_an_admin_schedules_a_translated_banner_with_an_image_that_the_web_app_shows(
    browser: Browser, admin_email
) -> None:
    tag = uuid.uuid4().hex[:6]
    title, german = f"Spring sale {tag}", f"Frühlingsangebot {tag}"
    zone = ZoneInfo("Asia/Shanghai")
    # Whole minutes on the admin's clock (UTC+8): started an hour ago, ends in a day.
    starts = (datetime.now(zone) - timedelta(hours=1)).replace(second=0, microsecond=0)
    ends = starts + timedelta(days=1)
    page = await new_page(browser, viewport=EDITOR, timezone_id="Asia/Shanghai")
    await sign_in(page, admin_email)
    await page.get_by_test_id("nav-group-catalog").get_by_role("link", name="Banners").click()
    await expect(page).to_have_url(re.compile(r"/admin/banners$"))
    await page.get_by_test_id("new-banner").click()
    await expect(page).to_have_url(re.compile(r"/admin/banners/new$"))

    await page.get_by_test_id("banner-title").locator("input").fill(title)
    await page.locator("#banner-description").fill("Every style half price this week.")
    await page.get_by_test_id("image-upload-input").set_input_files(
        {"name": "spring.png", "mimeType": "image/png", "buffer": png(320, 120, background=(255, 214, 170))}
    )
    await expect(page.get_by_test_id("image-upload")).to_have_attribute("data-ready", "true")
    await page.get_by_test_id("banner-link").locator("input").fill("javascript:alert(1)")
    await page.locator("#banner-link-text").fill("Try it")
    await page.locator("#banner-badge").fill("New")
    await page.locator("#banner-badge-color").fill("#e11d48")
    await pick(page, "banner-starts", starts)
    await pick(page, "banner-ends", ends)
    await expect(page.get_by_test_id("banner-preview-state")).to_have_text("Live")
    await page.get_by_test_id("translations").locator(".n-tabs-tab[data-name=de]").click()
    await page.get_by_test_id("translation-de-title").locator("input").fill(german)
    await page.get_by_test_id("translation-de-badge").locator("input").fill("Neu")

    # The form refuses a link the server would refuse, before asking it.
    await page.get_by_test_id("save-banner").click()
    await expect(page.get_by_test_id("banner-form")).to_contain_text("Use an https:// or http:// address")
    await expect(page).to_have_url(re.compile(r"/admin/banners/new$"))
    await page.get_by_test_id("banner-link").locator("input").fill("/tools")
    await expect(page.get_by_test_id("banner-form")).not_to_contain_text("Use an https:// or http:// address")
    await settled(page)
    await screenshot(page, "admin-banner-editor")
    await page.get_by_test_id("save-banner").click()

    await expect(page).to_have_url(re.compile(r"/admin/banners$"))
    row = page.get_by_role("row").filter(has_text=title)
    await expect(row.get_by_test_id("banner-state")).to_have_text("Live")
    # Its image, published by the save, shows in the list.
    await expect(row.locator("img")).to_have_js_property("complete", True)
    assert await row.locator("img").evaluate("image => image.naturalWidth") == 320
    await settled(page)
    await screenshot(page, "admin-banners")

    # The web app's banner API shows it: in German where translated, its image published, its schedule the
    # very moments the admin picked on a UTC+8 clock.
    shown = await (await page.request.get("/api/banners?locale=de&type=main&limit=100")).json()
    banner = next(item for item in shown["items"] if item["title"] == german)
    assert banner["badge"] == "Neu"
    assert banner["description"] == "Every style half price this week."  # English where not translated
    assert banner["link"] == "/tools"
    assert banner["thumbnail_url"]
    assert datetime.fromisoformat(banner["starts_at"]) == starts
    assert datetime.fromisoformat(banner["ends_at"]) == ends
    image = await page.request.get(banner["thumbnail_url"])
    assert image.status == 200
    english = await (await page.request.get("/api/banners?locale=en&limit=100")).json()
    assert any(item["title"] == title for item in english["items"])

    # Deleted after the confirmation: gone from the web app too.
    await row.get_by_role("button", name="Delete").click()
    await page.get_by_role("button", name="Confirm").click()
    await expect(page.get_by_role("row").filter(has_text=title)).to_have_count(0)
    shown = await (await page.request.get("/api/banners?locale=en&limit=100")).json()
    assert all(item["title"] != title for item in shown["items"])
    assert page_errors(page) == []


async def test_an_admin_changes_a_credit_package_and_the_shop_sells_it_changed(
    browser: Browser, admin_email, admin_token
) -> None:
    name = f"Settings pack {uuid.uuid4().hex[:6]}"
    async with api_session() as client:
        status, created, _ = await call(
            client, "POST", "/api/admin/credit-packages", headers=bearer(admin_token),
            json={"name": name, "credits": 300, "price_minor": 499, "currency": "USD", "sort_order": 90},
        )  # fmt: skip
        assert status == 201, created
    page = await new_page(browser)
    await sign_in(page, admin_email)
    await page.get_by_test_id("nav-group-billing").get_by_role("link", name="Credit packages").click()
    await expect(page).to_have_url(re.compile(r"/admin/packages$"))
    row = page.get_by_test_id(f"package-row-{name}")
    await expect(row.get_by_test_id("package-price")).to_have_text("$4.99")

    await page.get_by_test_id(f"edit-package-{name}").click()
    dialog = page.get_by_test_id("package-dialog")
    await dialog.get_by_label("Credits", exact=True).fill("450")
    await dialog.get_by_label("Price (USD)").fill("6.5")
    await screenshot(page, "admin-package-editor")
    await page.get_by_test_id("save-package").click()
    await expect(dialog).to_have_count(0)
    await expect(row.get_by_test_id("package-credits")).to_have_text("450")
    await expect(row.get_by_test_id("package-price")).to_have_text("$6.50")
    await settled(page)
    await screenshot(page, "admin-packages")

    async with api_session() as client:
        status, shop, _ = await call(client, "GET", "/api/credits/packages")
    assert status == 200, shop
    sold = next(item for item in shop["items"] if item["id"] == created["id"])
    assert (sold["credits"], sold["price_minor"], sold["currency"]) == (450, 650, "USD")

    # Taken off sale from the list: the shop no longer offers it.
    await row.get_by_role("switch").click()
    await expect(row.get_by_role("switch")).to_have_attribute("aria-checked", "false")
    async with api_session() as client:
        _, shop, _ = await call(client, "GET", "/api/credits/packages")
    assert all(item["id"] != created["id"] for item in shop["items"])
    assert page_errors(page) == []


async def test_an_admin_edits_the_api_rate_limits_and_reads_them_back(browser: Browser, admin_email) -> None:
    page = await new_page(browser, viewport=EDITOR)
    await sign_in(page, admin_email)
    served = await page.request.get("/api/admin/settings/rate-limit")
    assert served.status == 200, await served.text()
    before = await served.json()
    try:
        await page.get_by_test_id("nav-group-settings").get_by_role("link", name="API rate limits").click()
        await expect(page).to_have_url(re.compile(r"/admin/settings/rate-limits$"))
        upload = before["upload"]["limit"] + 7
        await page.get_by_test_id("limit-upload").locator("input").fill(str(upload))
        await page.get_by_test_id("window-upload").locator("input").fill("120")
        await page.get_by_test_id("window-upload").locator("input").press("Tab")  # a number is taken on blur
        await expect(page.get_by_test_id("category-upload")).to_contain_text("every 2 minutes")

        # A tier repeating another's name and threshold: the form says so, and nothing is sent.
        count = len(before["tiers"])
        await page.get_by_test_id("add-tier").click()
        await page.get_by_test_id(f"tier-name-{count}").locator("input").fill(before["tiers"][0]["name"])
        await (
            page.get_by_test_id(f"tier-min-{count}")
            .locator("input")
            .fill(str(before["tiers"][0]["min_purchased"]))
        )
        await page.get_by_test_id(f"tier-multiplier-{count}").locator("input").fill("4")
        await page.get_by_test_id("save-rate-limits").click()
        tier = page.get_by_test_id(f"tier-{count}")
        await expect(tier).to_contain_text("Another tier has this name.")
        await expect(tier).to_contain_text("Another tier starts at this number.")
        unchanged = await (await page.request.get("/api/admin/settings/rate-limit")).json()
        assert unchanged == before

        await page.get_by_test_id(f"tier-name-{count}").locator("input").fill("gold")
        await page.get_by_test_id(f"tier-min-{count}").locator("input").fill("50000")
        await page.get_by_test_id("save-rate-limits").click()
        await expect(page.get_by_test_id("unsaved")).to_have_count(0)
        await settled(page)
        await screenshot(page, "admin-rate-limits")

        saved = await (await page.request.get("/api/admin/settings/rate-limit")).json()
        assert saved["upload"] == {"limit": upload, "window_seconds": 120}
        assert saved["tiers"][-1] == {"name": "gold", "min_purchased": 50000, "multiplier": 4}
        assert {k: v for k, v in saved.items() if k not in ("upload", "tiers")} == {
            k: v for k, v in before.items() if k not in ("upload", "tiers")
        }
        # A reload reads the stored settings back into the form.
        await page.reload()
        await expect(page.get_by_test_id("limit-upload").locator("input")).to_have_value(str(upload))
        await expect(page.get_by_test_id(f"tier-name-{count}").locator("input")).to_have_value("gold")
        assert page_errors(page) == []
    finally:
        # The e2e session's limits are relaxed on purpose: put them back for the tests after this one.
        restored = await page.request.put(
            "/api/admin/settings/rate-limit", data=before, headers=await csrf(page)
        )
        assert restored.status == 200, await restored.text()


async def test_a_hunyuan_provider_takes_its_secret_key_write_only_and_checks_the_pair(
    browser: Browser, admin_email
) -> None:
    from hunyuan_api import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, FakeHunyuan

    from .test_admin_tools import choose

    name = f"hunyuan-{uuid.uuid4().hex[:6]}"
    async with FakeHunyuan() as fake:
        page = await new_page(browser, viewport=EDITOR)
        await sign_in(page, admin_email)
        await page.goto("/admin/providers/new")
        await page.get_by_test_id("provider-name").locator("input").fill(name)
        await choose(page, page.get_by_test_id("provider-type"), "hunyuan")
        await page.get_by_test_id("provider-base-url").locator("input").fill(fake.origin)
        await page.get_by_test_id("provider-key-input").locator("input").fill(DEFAULT_SECRET_ID)
        secret_input = page.get_by_test_id("provider-secret-input").locator("input")
        await expect(secret_input).to_have_attribute("type", "password")

        # Without its SecretKey the form refuses to save.
        await page.get_by_test_id("save-provider").click()
        await expect(page.get_by_test_id("provider-form")).to_contain_text(
            "Type the secret, or keep the stored one."
        )
        await secret_input.fill(DEFAULT_SECRET_KEY)
        await page.get_by_test_id("save-provider").click()
        await expect(page).to_have_url(re.compile(r"/admin/providers/[0-9a-f-]{36}$"))

        # Both parts are write-only: hints only, in the page and in the API's answer.
        await expect(page.get_by_test_id("key-hint")).to_have_text("••••" + DEFAULT_SECRET_ID[-4:])
        await expect(page.get_by_test_id("secret-hint")).to_have_text("••••" + DEFAULT_SECRET_KEY[-4:])
        await expect(page.get_by_test_id("provider-secret-input")).to_have_count(0)
        assert DEFAULT_SECRET_KEY not in await page.content()
        provider_id = page.url.rsplit("/", 1)[-1]
        served = await (await page.request.get(f"/api/admin/providers/{provider_id}")).json()
        assert DEFAULT_SECRET_KEY not in str(served)

        # The check signs a request with the pair; the fake verifies the signature.
        await page.get_by_test_id("check-health").click()
        await expect(page.get_by_test_id("check-result")).to_contain_text("Healthy")
        assert any(r.endpoint == "api" for r in fake.requests)
        await settled(page)
        await screenshot(page, "admin-provider-hunyuan")
        assert page_errors(page) == []
