"""The admin app's tools and tool types, as operators use them (`/admin/tools`, `/admin/tool-types`), in
headless Chromium against the running platform — and the web app's user who then finds and runs what the
admin built: the issue's "an admin creates a tool with two steps and a style reference through the form,
translates its title, activates it, and a user of the web app then runs it successfully"."""

from __future__ import annotations

import re
import uuid

import pytest
from clients import bearer, call, png
from clients import browser as api_session
from playwright.async_api import Browser, Locator, Page, expect

from .conftest import DESKTOP, PHONE, new_page, page_errors, screenshot
from .test_admin_app import sign_in_through_the_form
from .test_web_app import choose_photo, signed_in

pytestmark = pytest.mark.usefixtures("seeded_tools")

# Tall enough that the editor's two steps and its preview are on one screen for the screenshot.
EDITOR = {"width": 1440, "height": 1500}


async def choose(page: Page, select: Locator, option: str) -> None:
    """Picks `option` in a Naive UI select (its menu is teleported to the end of the page). The menu is a
    virtual list that renders only what is in view, so a filterable select is narrowed down first."""
    await select.click()
    search = select.locator("input.n-base-selection-input")
    if await search.count():
        await search.fill(option)
    await (
        page.locator(".n-base-select-option")
        .filter(has_text=re.compile(f"^{re.escape(option)}$"))
        .first.click()
    )


async def fill(field: Locator, value: str) -> None:
    await field.locator("input, textarea").first.fill(value)


async def test_an_admin_builds_a_two_step_tool_that_a_user_runs_in_german(
    browser: Browser, admin_email
) -> None:
    tag = uuid.uuid4().hex[:8]
    slug, title, german = f"sketch-cut-{tag}", f"Sketch Cutout {tag}", f"Skizzenschnitt {tag}"
    page = await new_page(browser, viewport=EDITOR)
    await sign_in_through_the_form(page, admin_email)
    await page.get_by_role("link", name="Tools", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/admin/tools$"))
    await page.get_by_test_id("new-tool").click()
    await expect(page).to_have_url(re.compile(r"/admin/tools/new$"))

    # The basics. A new tool starts with one step from the schema: image generation on `local`.
    first = page.get_by_test_id("step-0")
    await expect(first.get_by_test_id("step-provider")).to_contain_text("local")
    await fill(page.get_by_test_id("tool-slug"), slug)
    await choose(page, page.get_by_test_id("tool-type"), "Image")
    await fill(page.get_by_test_id("tool-title"), title)
    await fill(page.get_by_test_id("tool-description"), "Turns a photo into an ink sketch, then cuts it out.")
    await (
        page.get_by_test_id("thumbnail")
        .get_by_test_id("image-upload-input")
        .set_input_files(
            {
                "name": "thumb.png",
                "mimeType": "image/png",
                "buffer": png(160, 100, background=(250, 240, 200)),
            }
        )
    )
    await expect(page.get_by_test_id("thumbnail")).to_have_attribute("data-ready", "true")

    # Step 1: restyle the photo as a sketch (the local provider's `style` option, from the schema).
    await fill(first.get_by_test_id("step-id"), "Not A Slug")
    await fill(first.get_by_test_id("step-name"), "Sketch")
    await fill(first.get_by_test_id("step-cost"), "3")
    await expect(first.get_by_test_id("option-style")).to_contain_text("vintage")  # the schema's default
    await choose(page, first.get_by_test_id("option-style").locator(".n-select"), "sketch")
    # An image-gen step sends the chosen style's image with the photo unless told not to.
    await expect(first.get_by_test_id("step-use-style-image")).to_have_attribute("aria-checked", "true")

    # Step 2: cut the sketch out, on the previous step's output.
    await page.get_by_test_id("add-step").click()
    second = page.get_by_test_id("step-1")
    await choose(page, second.get_by_test_id("step-type"), "Background removal")
    await expect(second.get_by_test_id("option-durationMs")).to_be_visible()
    await expect(second.get_by_test_id("option-style")).to_have_count(0)
    await expect(second.get_by_test_id("step-use-style-image")).to_have_count(0)  # not an image-gen step
    await fill(second.get_by_test_id("step-id"), "cut")
    await fill(second.get_by_test_id("step-name"), "Cut out")
    await fill(second.get_by_test_id("step-cost"), "2")
    await choose(page, second.get_by_test_id("step-prompt-mode"), "None")

    # A style reference with its image, uploaded through the admin upload flow.
    await page.get_by_test_id("add-style").click()
    style = page.get_by_test_id("style-0")
    await fill(style.get_by_test_id("style-id"), "ink")
    await fill(style.get_by_test_id("style-name"), "Ink")
    await fill(style.get_by_test_id("style-prompt"), "as a loose ink sketch")
    await style.get_by_test_id("image-upload-input").set_input_files(
        {"name": "ink.png", "mimeType": "image/png", "buffer": png(120, 90)}
    )
    await expect(style.get_by_test_id("image-upload")).to_have_attribute("data-ready", "true")

    # German texts: the title and the second step's name.
    await page.get_by_test_id("translations").locator(".n-tabs-tab[data-name=de]").click()
    await fill(page.get_by_test_id("translation-de-title"), german)
    await page.get_by_label("Name of step 2").fill("Freistellen")
    await page.get_by_test_id("tool-active").click()
    await expect(page.get_by_test_id("tool-active")).to_have_attribute("aria-checked", "true")

    # The preview: the German texts, English where none was given, the price of both steps.
    preview = page.get_by_test_id("tool-preview")
    await expect(preview.get_by_test_id("preview-price")).to_have_text("From 5 credits")
    await choose(page, preview.get_by_test_id("preview-locale"), "Deutsch")
    await expect(preview.get_by_test_id("preview-title")).to_have_text(german)
    await expect(preview.get_by_test_id("preview-steps")).to_contain_text("Sketch")
    await expect(preview.get_by_test_id("preview-steps")).to_contain_text("Freistellen")

    # The API refuses the step id: the refusal shows beside that field, and nothing is stored.
    await page.get_by_test_id("save-tool").click()
    await expect(first).to_contain_text("should match pattern")
    await expect(page.get_by_test_id("save-problem")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/admin/tools/new$"))
    await fill(first.get_by_test_id("step-id"), "sketch")
    await page.get_by_test_id("save-tool").click()
    await expect(page).to_have_url(re.compile(r"/admin/tools/[0-9a-f-]{36}$"))
    await expect(page.get_by_text(f"{title} saved.")).to_be_visible()
    await expect(page.get_by_test_id("unsaved")).to_have_count(0)
    await expect(page.get_by_test_id("step-1")).to_be_visible()
    # The stored tool, read back: its style image is shown again (storage says where the asset is).
    await expect(page.get_by_test_id("style-0").get_by_role("img", name="Example image")).to_be_visible()
    # The steps at the top of the screen (the preview beside them stays in view), the toasts gone.
    await page.get_by_test_id("steps").evaluate("(steps) => steps.scrollIntoView()")
    await expect(page.locator(".n-message")).to_have_count(0, timeout=10_000)
    await screenshot(page, "admin-tool-editor")

    tool_id = page.url.rsplit("/", 1)[-1]
    stored = await (await page.request.get(f"/api/admin/tools/{tool_id}")).json()
    steps = stored["config"]["steps"]
    assert [(s["id"], s["type"], s["provider"]["name"], s["cost"]) for s in steps] == [
        ("sketch", "image-gen", "local", 3),
        ("cut", "remove-bg", "local", 2),
    ]
    assert steps[0]["provider"]["options"]["style"] == "sketch"
    assert steps[0]["useStyleImage"] is True
    assert steps[1]["input"] == {"image": "optional", "prompt": "none"}  # the previous output
    [ink] = stored["config"]["styleReferences"]
    assert ink["assetId"], "the style reference keeps its image"
    assert stored["thumbnail_asset_id"]
    assert stored["thumbnail_url"]
    assert stored["translations"]["de"]["title"] == german
    assert stored["translations"]["de"]["steps"] == {"cut": {"name": "Freistellen"}}
    assert (stored["is_active"], stored["credits_cost"]) == (True, 5)
    public = await (await page.request.get(f"/api/tools/{slug}?locale=de")).json()
    assert public["config"]["styleReferences"][0]["image_url"], "the style image is published for users"

    # The list shows it, active.
    await page.set_viewport_size(DESKTOP)
    await page.get_by_role("link", name="Tools", exact=True).click()
    await page.get_by_test_id("tool-search").locator("input").fill(tag)
    await expect(page).to_have_url(re.compile(rf"q={tag}"))
    row = page.get_by_test_id(f"tool-row-{slug}")
    await expect(row).to_contain_text(title)
    await expect(row.get_by_test_id("toggle-active")).to_have_attribute("aria-checked", "true")
    await screenshot(page, "admin-tools")
    assert page_errors(page) == []

    # A user of the web app, in German, finds it by its German title and runs it to the end.
    user, _ = await signed_in(browser)
    await user.goto(f"/de/tools?q={tag}")
    card = user.get_by_test_id(f"tool-card-{slug}")
    await expect(card).to_contain_text(german)
    # The thumbnail, from the CDN (decorative: alt="", the card's heading names the tool).
    thumbnail = card.locator("img.cover")
    await expect(thumbnail).to_be_visible()
    await expect(thumbnail).to_have_attribute("alt", "")
    await user.wait_for_function(  # loaded, not only laid out
        "img => img.complete && img.naturalWidth > 0", arg=await thumbnail.element_handle(), timeout=5000
    )
    await card.click()
    await expect(user).to_have_url(re.compile(rf"/de/tools/{slug}$"))
    await expect(user.locator("h1")).to_have_text(german)
    await choose_photo(user)
    await user.get_by_test_id("style-ink").click()
    await user.get_by_test_id("run").click()
    # The cut-out first, the sketch it was made from under it.
    await expect(user.get_by_test_id("result-image").first).to_be_visible(timeout=60_000)
    await expect(user.get_by_test_id("step-output-sketch").get_by_test_id("result-image")).to_be_visible()
    await screenshot(user, "admin-tool-in-the-app")
    task_id = re.search(r"taskId=([0-9a-f-]+)", user.url).group(1)  # type: ignore[union-attr]
    task = await (await user.request.get(f"/api/tasks/{task_id}")).json()
    assert (task["status"], task["charged_credits"]) == ("completed", 5)
    # The local provider got the style's image with the photo (it tints the sketch towards it).
    sketch_step = next(s for s in task["payload"]["steps"] if s["step_id"] == "sketch")
    assert sketch_step["metadata"]["referenceAssetIds"] == [ink["assetId"]]
    assert page_errors(user) == []


async def test_a_tool_type_is_created_and_its_delete_refused_while_a_tool_uses_it(
    browser: Browser, admin_email, admin_token
) -> None:
    tag = uuid.uuid4().hex[:8]
    name, display = f"kind-{tag}", f"Kind {tag}"
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await page.get_by_role("link", name="Tool types", exact=True).click()
    await page.get_by_test_id("new-tool-type").click()
    dialog = page.get_by_test_id("tool-type-dialog")
    await fill(dialog.get_by_test_id("type-name"), name)
    await fill(dialog.get_by_test_id("type-display-name"), display)
    await dialog.get_by_label("Colour").fill("#10b981")
    await dialog.locator(".n-tabs-tab[data-name=de]").click()
    await fill(dialog.get_by_test_id("translation-de-display_name"), f"Art {tag}")
    await dialog.get_by_test_id("save-tool-type").click()
    row = page.get_by_test_id(f"tool-type-row-{name}")
    await expect(row).to_contain_text(display)
    await expect(row.get_by_test_id("tools-count")).to_have_text("0 active of 0")

    # A tool of that type (through the API), then the delete: refused, and the page says why.
    async with api_session() as client:
        admin = bearer(admin_token)
        _, types, _ = await call(client, "GET", "/api/admin/tool-types?limit=200", headers=admin)
        created = next(t for t in types["items"] if t["name"] == name)
        assert created["translations"]["de"]["display_name"] == f"Art {tag}"
        step = {"id": "cut", "name": "Cut", "type": "remove-bg", "cost": 1, "provider": {"name": "local"}}
        status, tool, _ = await call(
            client, "POST", "/api/admin/tools", headers=admin,
            json={"slug": f"uses-{tag}", "title": "Uses it", "tool_type_id": created["id"],
                  "config": {"steps": [step]}},
        )  # fmt: skip
        assert status == 201, tool
    await page.reload()
    await expect(row.get_by_test_id("tools-count")).to_have_text("1 active of 1")
    await row.get_by_test_id("delete-tool-type").click()
    await page.get_by_role("button", name="Confirm").click()
    problem = page.get_by_test_id("delete-problem")
    await expect(problem).to_contain_text(f"{display} still has one tool.")
    await expect(row).to_be_visible()
    await expect(page.locator(".n-popconfirm")).to_have_count(0)
    await screenshot(page, "admin-tool-types")

    # Once no tool uses it, it goes.
    async with api_session() as client:
        status, _, _ = await call(client, "DELETE", f"/api/admin/tools/{tool['id']}", headers=admin)
        assert status == 204
    await row.get_by_test_id("delete-tool-type").click()
    await page.get_by_role("button", name="Confirm").click()
    await expect(row).to_have_count(0)
    assert page_errors(page) == []


async def test_the_tool_editor_fits_a_phone(browser: Browser, admin_email) -> None:
    page = await new_page(browser, viewport=PHONE)
    await sign_in_through_the_form(page, admin_email)
    await expect(page).to_have_url(re.compile(r"/admin/$"))  # signed in
    await page.goto("/admin/tools/new")
    await expect(page.get_by_test_id("step-0")).to_be_visible()
    await page.get_by_test_id("add-style").click()
    await expect(page.get_by_test_id("tool-preview")).to_be_visible()
    # The page's own content never scrolls sideways (the preview goes under the form).
    overflow = await page.locator("main").evaluate("(main) => main.scrollWidth - main.clientWidth")
    assert overflow <= 0
    for path, shown in (("/admin/tools", "tools"), ("/admin/tool-types", "tool-types")):
        await page.goto(path)
        await expect(page.get_by_test_id(shown)).to_be_visible()
        overflow = await page.locator("main").evaluate("(main) => main.scrollWidth - main.clientWidth")
        assert overflow <= 0, path
    assert page_errors(page) == []


async def test_the_tools_list_shows_how_many_tasks_each_tool_started(
    browser: Browser, admin_email, admin_token
) -> None:
    from clients import upload
    from test_tasks import create_tool, local_step, new_user, start_task, until_task

    from funmagic_kit.testing import wait_until

    slug = await create_tool(admin_token, [local_step("first", "remove-bg", 1)])
    user = await new_user(admin_token)
    image = await upload(user["token"], png(32, 32))
    for _ in range(2):
        status, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
        assert status == 202, task
        assert (await until_task(user, task["id"]))["status"] == "completed"

    async def counted_twice() -> bool:
        async with api_session() as client:
            _, page_of_tools, _ = await call(
                client, "GET", "/api/admin/tools", headers=bearer(admin_token), params={"q": slug}
            )
        return [t["usage_count"] for t in page_of_tools["items"] if t["slug"] == slug] == [2]

    await wait_until(counted_twice, timeout=30, what="the tool's two started tasks to be counted")
    page = await new_page(browser, viewport=EDITOR)
    await sign_in_through_the_form(page, admin_email)
    # Signed in (the header names the account) before leaving the page, or the sign-in is cut short.
    await expect(page.get_by_test_id("signed-in-as")).to_contain_text(admin_email)
    await page.goto(f"/admin/tools?q={slug}")

    await expect(page.get_by_test_id(f"tool-row-{slug}").get_by_test_id("tool-uses")).to_have_text("2")
    assert page_errors(page) == []
