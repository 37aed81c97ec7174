"""Credit packages' content in the apps: an admin writes a package's description, bonus, popular mark and a
Japanese translation in the admin app; the web app's pricing page shows them in Japanese."""

from __future__ import annotations

import uuid

import pytest
from clients import browser as api_session
from clients import call
from playwright.async_api import Browser, expect

from .conftest import PHONE, new_page, page_errors, screenshot
from .test_admin_app import sign_in_through_the_form

pytestmark = pytest.mark.usefixtures("seeded_tools")


async def test_an_admin_writes_a_packages_bonus_and_its_japanese_translation(
    browser: Browser, admin_email
) -> None:
    name = f"Pro {uuid.uuid4().hex[:6]}"
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_test_id("stat-created")).to_be_visible()  # signed in: the overview
    await page.goto("/admin/packages")
    await page.get_by_test_id("new-package").click()
    dialog = page.get_by_test_id("package-dialog")
    await dialog.locator("#package-name").fill(name)
    await dialog.locator("#package-description").fill("For people who create every day")
    await dialog.locator("#package-credits").fill("1000")
    await dialog.locator("#package-bonus").fill("20000")  # over ten times the credits
    await dialog.locator("#package-price").fill("19.99")
    await dialog.get_by_text("Mark as popular").click()
    await dialog.locator(".n-tabs-tab[data-name=ja]").click()
    await dialog.get_by_test_id("translation-ja-name").locator("input").fill("プロ")
    await dialog.get_by_test_id("translation-ja-description").locator("textarea").fill("毎日つくる人に")
    await dialog.get_by_test_id("save-package").click()
    await expect(dialog).to_contain_text("A whole number from 0 to ten times the credits.")

    await dialog.locator("#package-bonus").fill("250")
    await screenshot(page, "admin-package-translations")
    await dialog.get_by_test_id("save-package").click()
    await expect(dialog).to_be_hidden()

    row = page.get_by_test_id(f"package-row-{name}")
    await expect(row.get_by_test_id("package-bonus")).to_have_text("+250")
    await expect(row).to_contain_text("Popular")
    listed = await (await page.request.get("/api/credits/packages?locale=ja")).json()
    (shown,) = [p for p in listed["items"] if p["credits"] == 1000 and p["bonus_credits"] == 250]
    assert (shown["name"], shown["description"], shown["is_popular"]) == ("プロ", "毎日つくる人に", True)

    # Opened again, the editor shows what was stored, the translation included.
    await page.get_by_test_id(f"edit-package-{name}").click()
    await page.get_by_test_id("package-dialog").locator(".n-tabs-tab[data-name=ja]").click()
    await expect(page.locator("#tr-ja-name")).to_have_value("プロ")
    assert page_errors(page) == []


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_the_pricing_page_in_japanese_shows_the_description_bonus_and_popular_badge(
    browser: Browser, admin_token, viewport: str
) -> None:
    async with api_session() as client:
        status, package, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={
                "name": "Creator",
                "description": "For regular creators",
                "credits": 500,
                "bonus_credits": 100,
                "is_popular": True,
                "price_minor": 1999,
                "currency": "USD",
                "sort_order": -10,
                "translations": {"ja": {"name": "クリエイター", "description": "よく使う方におすすめ"}},
            },
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert status == 201, package
    page = await new_page(browser, **({"viewport": PHONE} if viewport == "phone" else {}))
    await page.goto("/ja/pricing")
    card = page.get_by_test_id(f"package-{package['id']}")
    await expect(card.locator("h2")).to_have_text("クリエイター")
    await expect(card.get_by_test_id("description")).to_have_text("よく使う方におすすめ")
    await expect(card.get_by_test_id("bonus")).to_have_text("+100 ボーナス")
    await expect(card.get_by_test_id("popular")).to_have_text("人気")
    await card.scroll_into_view_if_needed()
    await screenshot(page, f"pricing-ja-{viewport}")
    # English where a locale has no translation.
    await page.goto("/fr/pricing")
    await expect(card.locator("h2")).to_have_text("Creator")
    await expect(card.get_by_test_id("popular")).to_have_text("Populaire")
    assert page_errors(page) == []
