"""Google Gemini in the admin AI studio (`/admin/studio`), as an admin uses it: a `gemini` studio provider
at the fake Gemini API (tests/fakes/gemini_api.py), its image model chosen in the prompt bar with the
options it offers (aspect ratio 16:9, resolution 2K), two prompts in one chat: each reply has Gemini's text
and a 16:9 picture, and the second request carried the first turn. Looked at in English and Chinese."""

from __future__ import annotations

import uuid

from gemini_api import FakeGemini
from playwright.async_api import Browser, expect
from test_studio_gemini import GEMINI_KEY, gemini_provider

from .conftest import new_page, page_errors, screenshot
from .test_admin_studio import REPLY_TIMEOUT, send, studio
from .test_admin_tools import choose

MODEL = "gemini-2.5-flash-image"


async def test_an_admin_draws_with_gemini_choosing_its_ratio_and_resolution(
    browser: Browser, admin_email, admin_token
) -> None:
    title = f"Gemini {uuid.uuid4().hex[:8]}"
    async with FakeGemini(api_key=GEMINI_KEY) as fake:
        provider = await gemini_provider(admin_token, fake)
        page = await new_page(browser)
        await studio(page, admin_email)
        await page.get_by_test_id("new-chat").click()
        dialog = page.get_by_test_id("chat-dialog")
        await dialog.get_by_test_id("chat-title").locator("input").fill(title)
        await dialog.get_by_test_id("save-chat").click()
        await expect(page.get_by_test_id("chat-title-shown")).to_have_text(title)

        await choose(page, page.get_by_test_id("prompt-provider"), provider)
        await choose(page, page.get_by_test_id("prompt-model"), f"{MODEL} · image")
        # Gemini's own options, offered by the prompt bar from the providers' catalogue.
        await expect(page.get_by_test_id("prompt-option-aspectRatio")).to_be_visible()
        await expect(page.get_by_test_id("prompt-option-imageSize")).to_be_visible()
        await expect(page.get_by_test_id("prompt-option-quality")).to_have_count(0)
        await choose(page, page.get_by_test_id("prompt-option-aspectRatio"), "16:9")
        await choose(page, page.get_by_test_id("prompt-option-imageSize"), "2K")
        await send(page, "a fox")

        first = page.get_by_test_id("reply").last
        await expect(first).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
        await expect(first.get_by_test_id("reply-text")).to_have_text("Here is a fox")
        image = first.get_by_test_id("reply-image").locator("img")
        await expect(image).to_have_js_property("naturalWidth", 128)
        await expect(image).to_have_js_property("naturalHeight", 72)

        await send(page, "the fox in snow")
        await expect(page.get_by_test_id("reply")).to_have_count(2)
        second = page.get_by_test_id("reply").last
        await expect(second).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
        await expect(second.get_by_test_id("reply-text")).to_have_text("Here is the fox in snow")
        await expect(second.get_by_test_id("reply-image").locator("img")).to_have_js_property(
            "naturalHeight", 72
        )
        assert len(fake.generated) == 2
        assert [c["role"] for c in fake.generated[1]["contents"]] == ["user", "model", "user"]
        config = fake.generated[1]["generationConfig"]
        assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
        await screenshot(page, "admin-studio-gemini")

        await page.get_by_test_id("locale-menu").click()
        await page.get_by_text("中文", exact=True).click()
        await expect(page.get_by_test_id("prompt-option-aspectRatio")).to_contain_text("16:9")
        await expect(page.get_by_test_id("prompt-option-imageSize")).to_contain_text("2K")
        await screenshot(page, "admin-studio-gemini-zh")
        assert page_errors(page) == []
