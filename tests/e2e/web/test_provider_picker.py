"""The provider picker on a tool page, in headless Chromium against the running platform: an Image to 3D
tool whose 3D step runs on the built-in provider by default and lets users choose Tripo (the fake Tripo
server) with a model version, a face limit and PBR. The user picks them (the model with the keyboard), runs
the tool, and the 3D result arrives; the fake saw what was picked. Screenshots at desktop and phone width."""

from __future__ import annotations

import uuid

import pytest
from clients import browser as api_session
from clients import call
from playwright.async_api import Browser, expect
from tripo_api import FakeTripo

from .conftest import PHONE, page_errors, screenshot
from .test_web_app import choose_photo, horizontal_overflow, signed_in

pytestmark = pytest.mark.usefixtures("seeded_tools")

TRIPO_KEY = "tsk_web_picker_" + uuid.uuid4().hex


async def image_to_3d_tool(admin_token: str, base_url: str) -> str:
    """A provider row for the fake Tripo, and a tool whose 3D step offers it beside the built-in one."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    tripo = f"tripo-{uuid.uuid4().hex[:8]}"
    async with api_session() as client:
        provider = {"name": tripo, "type": "tripo", "base_url": base_url, "api_key": TRIPO_KEY, "config": {}}
        status, created, _ = await call(
            client, "POST", "/api/admin/providers", headers=headers, json=provider
        )
        assert status == 201, created
        status, types, _ = await call(client, "GET", "/api/admin/tool-types", headers=headers)
        assert status == 200, types
        slug = f"image-to-3d-{uuid.uuid4().hex[:8]}"
        step = {
            "id": "3d-gen", "name": "3D model", "type": "3d-gen", "cost": 30,
            "provider": {"name": "local", "model": "default", "options": {}},
            "input": {"image": "required", "prompt": "none"},
            "choices": [
                {"provider": "local", "label": "Built-in"},
                {"provider": tripo, "label": "Tripo", "models": ["v2.5-20250123", "v3.0-20250812"],
                 "options": {"face_limit": {"type": "integer", "min": 1000, "max": 50000},
                             "pbr": {"type": "boolean", "default": True}}},
            ],
        }  # fmt: skip
        body = {"slug": slug, "title": "Image to 3D", "tool_type_id": types["items"][0]["id"],
                "config": {"steps": [step], "pipeline": False}}  # fmt: skip
        status, created, _ = await call(client, "POST", "/api/admin/tools", headers=headers, json=body)
        assert status == 201, created
    return slug


async def test_provider_picker(browser: Browser, admin_token) -> None:
    async with FakeTripo(api_key=TRIPO_KEY, polls_until_done=1) as fake:
        slug = await image_to_3d_tool(admin_token, fake.url)
        page, _ = await signed_in(browser)
        await page.goto(f"/tools/{slug}")
        picker = page.get_by_test_id("provider-picker")
        await expect(picker).to_be_visible()
        # The built-in provider is the default: no model or options to set for it.
        await expect(page.get_by_test_id("picker-provider")).to_contain_text("Built-in")
        await expect(page.get_by_test_id("picker-option-face_limit")).to_have_count(0)

        await page.get_by_test_id("picker-provider").click()
        await page.locator(".n-base-select-option", has_text="Tripo").click()
        await expect(page.get_by_test_id("picker-provider")).to_contain_text("Tripo")
        # The model with the keyboard: Tab to it from the provider, open it, move down one, choose it.
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("picker-model")).to_contain_text("v3.0-20250812")
        faces = page.locator("#picker-option-face_limit")
        await faces.fill("12000")
        await faces.press("Tab")
        pbr = page.get_by_test_id("picker-option-pbr")
        await expect(pbr).to_have_attribute("aria-checked", "true")  # its default
        await pbr.click()
        await expect(pbr).to_have_attribute("aria-checked", "false")
        await choose_photo(page)
        await screenshot(page, "provider-picker-desktop")

        await page.get_by_test_id("run").click()
        await expect(page.get_by_test_id("model-viewer").locator("canvas")).to_be_visible(timeout=60_000)
        await screenshot(page, "provider-picker-result")
        (sent,) = fake.tasks.values()
        assert (sent.input["model_version"], sent.input["face_limit"], sent.input["pbr"]) == (
            "v3.0-20250812", 12000, False,
        )  # fmt: skip
        assert page_errors(page) == []

        phone, _ = await signed_in(browser, viewport=PHONE)
        await phone.goto(f"/tools/{slug}")
        await phone.get_by_test_id("picker-provider").click()
        await phone.locator(".n-base-select-option", has_text="Tripo").click()
        await expect(phone.get_by_test_id("picker-option-pbr")).to_be_visible()
        await screenshot(phone, "provider-picker-phone")
        assert await horizontal_overflow(phone) == 0
