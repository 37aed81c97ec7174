"""The admin task page's provider diagnostics in the browser: after a user's task on a fake-OpenAI-backed
tool finished, an admin opens the task, expands the step's "Provider calls" panel and sees the call — its
status, method and URL, duration and request id — and the response body as JSON with the image replaced
by a marker (no base64, no key on the page)."""

from __future__ import annotations

import re

from clients import png, upload
from openai_api import FakeOpenAI
from playwright.async_api import Browser, expect
from test_backend_parity import admin_upload, new_user
from test_style_references import OPENAI_KEY, figme_like_tool, register_openai, styled_task

from .conftest import PHONE, new_page, page_errors, screenshot
from .test_admin_app import sign_in_through_the_form


async def test_an_admin_expands_a_steps_provider_calls_on_the_task_page(
    browser: Browser, admin_email, admin_token
) -> None:
    style_id = await admin_upload(admin_token, png(30, 40, (120, 40, 160)), "style-violet.png")
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register_openai(admin_token, fake)
        tool = await figme_like_tool(admin_token, provider, style_id)
        user = await new_user("diagnostics-web")
        photo_id = await upload(user["token"], png(64, 48, (240, 240, 240)))
        task = await styled_task(user, tool["slug"], photo_id)

    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page).not_to_have_url(re.compile(r"/admin/sign-in"))
    await page.goto(f"/admin/tasks/{task['id']}")
    await expect(page.get_by_test_id("task-status")).to_have_text("Completed")
    toggle = page.get_by_test_id("provider-calls-toggle-figurine")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.click()
    await expect(toggle).to_have_attribute("aria-expanded", "true")

    panel = page.get_by_test_id("provider-calls-panel")
    call = panel.get_by_test_id("provider-call")
    await expect(call).to_have_count(1)
    await expect(call.get_by_test_id("provider-call-status")).to_have_text("200")
    await expect(call).to_contain_text("POST")
    await expect(call).to_contain_text("/v1/images/edits")
    await expect(call.get_by_test_id("provider-call-duration")).to_have_text(re.compile(r"^\d+(\.\d)? m?s$"))
    await expect(call).to_contain_text("x-request-id: req_")
    await expect(toggle).to_contain_text("(1)")
    response = call.get_by_test_id("provider-call-response")
    await response.locator("summary").click()
    body = response.locator("pre")
    await expect(body).to_be_visible()
    await expect(body).to_contain_text('"b64_json": "<redacted base64, ')
    await screenshot(page, "admin-task-provider-calls")
    # On a phone the panel stacks under the step and long URLs and bodies wrap instead of widening the page.
    await page.set_viewport_size(PHONE)
    await call.scroll_into_view_if_needed()
    await screenshot(page, "admin-task-provider-calls-phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    content = await page.content()
    assert OPENAI_KEY not in content
    assert "iVBOR" not in content
    assert page_errors(page) == []
