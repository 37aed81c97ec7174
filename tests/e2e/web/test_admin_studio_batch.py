"""A batch in the admin AI studio (`/admin/studio`), as an admin runs one: three images uploaded at once,
fal's clarity upscaler (a `fal` studio provider at the fake fal.ai queue API, tests/fakes/fal_api.py) with
its upscale option, one prompt → three reply cards, each with the image it worked on and its result really
upscaled; a utility model without an image cannot be sent. Looked at on a desktop, in Chinese and on a
phone."""

from __future__ import annotations

import re
import uuid

from clients import png
from fal_api import FakeFal
from playwright.async_api import Browser, expect
from test_studio_fal import FAL_KEY, fal_provider

from .conftest import PHONE, new_page, page_errors, screenshot
from .test_admin_app import sign_in_through_the_form
from .test_admin_studio import REPLY_TIMEOUT, send, studio
from .test_admin_tools import choose


async def test_an_admin_upscales_a_batch_of_three_uploads_with_fal(
    browser: Browser, admin_email, admin_token
) -> None:
    title = f"Batch {uuid.uuid4().hex[:8]}"
    async with FakeFal(api_key=FAL_KEY, polls_until_done=1) as fake:
        provider = await fal_provider(admin_token, fake)
        page = await new_page(browser)
        await studio(page, admin_email)
        await page.get_by_test_id("new-chat").click()
        dialog = page.get_by_test_id("chat-dialog")
        await dialog.get_by_test_id("chat-title").locator("input").fill(title)
        await dialog.get_by_test_id("save-chat").click()
        await expect(page.get_by_test_id("chat-title-shown")).to_have_text(title)

        # The fal provider's utility models, with the upscaler's options; the bria one needs an image first.
        await choose(page, page.get_by_test_id("prompt-provider"), provider)
        await choose(page, page.get_by_test_id("prompt-model"), "fal-ai/bria/background/remove · utility")
        await page.get_by_test_id("prompt-input").locator("textarea").fill("cut it out")
        await expect(page.get_by_test_id("needs-image")).to_be_visible()
        await expect(page.get_by_test_id("send")).to_be_disabled()
        await choose(page, page.get_by_test_id("prompt-model"), "fal-ai/clarity-upscaler · utility")
        await choose(page, page.get_by_test_id("prompt-option-upscale_factor"), "2")

        # Three uploads at once: three quoted images, one batch of three replies, no variants to choose.
        colours = [(240, 200, 120), (120, 200, 240), (200, 120, 240)]
        await page.get_by_test_id("quote-upload-input").set_input_files([
            {"name": f"sketch-{i}.png", "mimeType": "image/png", "buffer": png(96, 72, background=colour)}
            for i, colour in enumerate(colours)
        ])  # fmt: skip
        await expect(page.get_by_test_id("quoted-chip").locator("img")).to_have_count(3)
        await expect(page.get_by_test_id("batch-hint")).to_contain_text("3 images")
        await expect(page.get_by_test_id("prompt-variants")).to_have_count(0)
        await screenshot(page, "admin-studio-batch-draft")
        await send(page, "crisp details")

        sent = page.get_by_test_id("user-message").last
        await expect(sent.get_by_test_id("quoted-image")).to_have_count(3)
        batch = page.get_by_test_id("batch").last
        await expect(batch.get_by_test_id("reply")).to_have_count(3)
        for index in range(3):
            reply = batch.get_by_test_id("reply").nth(index)
            await expect(reply).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
            await expect(reply.get_by_test_id("reply-source").locator("img")).to_be_visible()
            result = reply.get_by_test_id("reply-image").locator("img")
            await expect(result).to_be_visible()
            await expect(result).to_have_js_property("naturalWidth", 192)  # 96 px upscaled twice
        assert len([r for r in fake.requests if r.endpoint == "submit"]) == 3
        await screenshot(page, "admin-studio-batch")

        await page.get_by_test_id("locale-menu").click()
        await page.get_by_text("中文", exact=True).click()
        await expect(page.get_by_test_id("batch").last.get_by_test_id("reply-source").first).to_contain_text(
            "来自此图片"
        )
        await screenshot(page, "admin-studio-batch-zh")
        assert page_errors(page) == []

        phone = await new_page(browser, viewport=PHONE)
        await sign_in_through_the_form(phone, admin_email)
        await expect(phone.get_by_test_id("signed-in-as")).to_be_attached()
        await phone.goto(page.url)
        await expect(phone).to_have_url(re.compile(r"/admin/studio\?chat="))
        await expect(phone.get_by_test_id("batch").last.get_by_test_id("reply")).to_have_count(3)
        for index in range(3):
            shown = phone.get_by_test_id("batch").last.get_by_test_id("reply-image").nth(index).locator("img")
            await shown.scroll_into_view_if_needed()  # the thumbnails load lazily
            await expect(shown).to_have_js_property("complete", True)
            await expect(shown).to_have_js_property("naturalWidth", 192)
        await phone.get_by_test_id("batch").last.scroll_into_view_if_needed()
        overflow = await phone.locator("main").evaluate("(main) => main.scrollWidth - main.clientWidth")
        assert overflow <= 0
        await screenshot(phone, "admin-studio-batch-phone")
