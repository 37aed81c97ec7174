"""The admin AI studio (`/admin/studio`), as an admin uses it: in headless Chromium against the running
platform, on the offline `local` provider (its answer repeats the prompt, so what is shown can be checked).

A chat is started from the form, a prompt is answered live on the tab's one stream (`/api/stream`), an image
model draws a batch of variants, one of them is quoted into the next prompt (and an uploaded image into the
one after), and the page is looked at on a desktop and a phone, in English and Chinese."""

from __future__ import annotations

import re
import uuid

from clients import png
from playwright.async_api import Browser, Locator, Page, expect

from .conftest import PHONE, new_page, page_errors, screenshot
from .test_admin_app import sign_in_through_the_form
from .test_admin_tools import choose

# Replies go through Kafka, the providers' limiter and back: generous, never a sleep.
REPLY_TIMEOUT = 60_000


async def studio(page: Page, admin_email: str) -> None:
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_test_id("signed-in-as")).to_be_visible()
    await page.get_by_role("link", name="AI Studio", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/admin/studio"))
    # The tab's stream is open before anything is sent.
    await expect(page.get_by_test_id("stream-state")).to_have_text("Live")


async def send(page: Page, prompt: str) -> None:
    box = page.get_by_test_id("prompt-input").locator("textarea")
    await box.fill(prompt)
    await box.press("Enter")  # Enter sends (Shift+Enter would be a new line)
    await expect(box).to_have_value("")  # the API took it


def last_turn_replies(page: Page) -> Locator:
    return page.get_by_test_id("conversation").locator("section").last.get_by_test_id("reply")


async def test_an_admin_chats_draws_and_quotes_an_image_in_the_studio(browser: Browser, admin_email) -> None:
    title = f"Foxes {uuid.uuid4().hex[:8]}"
    page = await new_page(browser)
    await studio(page, admin_email)

    # A new chat on the local chat model.
    await page.get_by_test_id("new-chat").click()
    dialog = page.get_by_test_id("chat-dialog")
    await dialog.get_by_test_id("chat-title").locator("input").fill(title)
    await expect(dialog.get_by_test_id("chat-provider")).to_contain_text("local")
    await expect(dialog.get_by_test_id("chat-model")).to_contain_text("local-chat")
    await dialog.get_by_test_id("save-chat").click()
    await expect(page).to_have_url(re.compile(r"/admin/studio\?chat="))
    await expect(page.get_by_test_id("chat-title-shown")).to_have_text(title)
    await expect(page.get_by_test_id("chat-item").filter(has_text=title)).to_be_visible()

    # A text prompt, answered live; the stored reply then shows, completed, with its token count.
    await send(page, "Tell me about foxes")
    await expect(page.get_by_test_id("user-message").last).to_contain_text("Tell me about foxes")
    reply = last_turn_replies(page)
    await expect(reply).to_have_count(1)
    await expect(reply).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
    await expect(reply.get_by_test_id("reply-text")).to_contain_text("foxes")
    await expect(reply.get_by_test_id("typing")).to_have_count(0)
    await expect(reply.get_by_test_id("reply-usage")).to_contain_text("tokens")
    await expect(reply.get_by_test_id("cancel-reply")).to_have_count(0)

    # The image model: two variants, shown as a batch that fills as each finishes.
    await choose(page, page.get_by_test_id("prompt-model"), "local-image · image")
    variants = page.get_by_test_id("prompt-variants").locator("input")
    await variants.fill("2")
    await variants.press("Tab")
    await send(page, "a red fox")
    batch = page.get_by_test_id("batch").last
    await expect(batch.get_by_test_id("reply")).to_have_count(2)
    for index in range(2):
        variant = batch.get_by_test_id("reply").nth(index)
        await expect(variant).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
        await expect(variant.get_by_test_id("reply-image").locator("img")).to_be_visible()
    await screenshot(page, "admin-studio")

    # The first variant is quoted into a text prompt; the prompt shows the thumbnail it was sent with.
    await batch.get_by_test_id("reply-image").first.get_by_test_id("quote-image").click()
    await expect(page.get_by_test_id("quoted-chip")).to_have_count(1)
    await choose(page, page.get_by_test_id("prompt-model"), "local-chat · text")
    await expect(page.get_by_test_id("prompt-variants")).to_have_count(0)  # text models draw no batches
    await send(page, "describe this")
    await expect(page.get_by_test_id("quoted-chip")).to_have_count(0)  # the quote went with the prompt
    sent = page.get_by_test_id("user-message").last
    await expect(sent).to_contain_text("describe this")
    await expect(sent.get_by_test_id("quoted-image").locator("img")).to_be_visible()
    described = last_turn_replies(page)
    await expect(described).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
    await expect(described.get_by_test_id("reply-text")).to_contain_text("I can see 1 image")

    # An uploaded image is quoted the same way.
    await page.get_by_test_id("quote-upload-input").set_input_files(
        {"name": "sketch.png", "mimeType": "image/png", "buffer": png(96, 72, background=(240, 200, 120))}
    )
    await expect(page.get_by_test_id("quoted-chip").locator("img")).to_be_visible()
    await send(page, "and this upload?")
    await expect(page.get_by_test_id("user-message").last.get_by_test_id("quoted-image")).to_have_count(1)
    uploaded = last_turn_replies(page)
    await expect(uploaded).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
    await expect(uploaded.get_by_test_id("reply-text")).to_contain_text("I can see 1 image")

    # A chat model draws too, with its image tool, when asked to (Talk / Draw).
    await page.get_by_test_id("prompt-mode-image").click()
    one = page.get_by_test_id("prompt-variants").locator("input")
    await one.fill("1")
    await one.press("Tab")
    await send(page, "a blue fox")
    drawn = last_turn_replies(page)
    await expect(drawn).to_have_attribute("data-status", "completed", timeout=REPLY_TIMEOUT)
    await expect(drawn.get_by_test_id("reply-image").locator("img")).to_be_visible()
    await expect(drawn.get_by_test_id("reply-text")).to_contain_text("picture made on this machine")

    # The same page in Chinese.
    await page.get_by_test_id("locale-menu").click()
    await page.get_by_text("中文", exact=True).click()
    await expect(page.get_by_role("heading", name="AI 工作室")).to_be_visible()
    await expect(page.get_by_test_id("stream-state")).to_have_text("实时")
    await screenshot(page, "admin-studio-zh")
    assert page_errors(page) == []
    chat_url = page.url

    # On a phone the chats are a drawer; the conversation and the prompt bar fit the width.
    phone = await new_page(browser, viewport=PHONE)
    await sign_in_through_the_form(phone, admin_email)
    await expect(phone.get_by_test_id("signed-in-as")).to_be_attached()
    await phone.goto(chat_url)
    await expect(phone.get_by_test_id("chat-title-shown")).to_have_text(title)
    await expect(phone.get_by_test_id("studio-sidebar")).to_have_count(0)
    await expect(phone.get_by_test_id("reply-image").first.locator("img")).to_be_visible()
    overflow = await phone.locator("main").evaluate("(main) => main.scrollWidth - main.clientWidth")
    assert overflow <= 0
    await screenshot(phone, "admin-studio-phone")
    await phone.get_by_test_id("open-chats").click()
    await expect(phone.get_by_test_id("chat-item").filter(has_text=title)).to_be_visible()
    await screenshot(phone, "admin-studio-phone-chats")
    await phone.keyboard.press("Escape")
    await phone.get_by_test_id("locale-menu").click()
    await phone.get_by_text("中文", exact=True).click()
    # The choice is kept once the Chinese messages have loaded (a lazy chunk): wait for them, not for a time.
    await expect(phone.get_by_role("heading", name="AI 工作室")).to_be_visible()
    await phone.reload()  # the language is kept; opened again, the studio fills the screen
    await expect(phone.get_by_role("heading", name="AI 工作室")).to_be_visible()
    await expect(phone.get_by_test_id("reply-image").first.locator("img")).to_be_visible()
    await screenshot(phone, "admin-studio-phone-zh")
    assert page_errors(phone) == []


async def test_a_chat_is_renamed_moved_archived_and_deleted_from_its_menu(
    browser: Browser, admin_email
) -> None:
    tag = uuid.uuid4().hex[:8]
    title, renamed, project = f"Draft {tag}", f"Wolves {tag}", f"Animals {tag}"
    page = await new_page(browser)
    await studio(page, admin_email)
    await page.get_by_test_id("new-chat").click()
    dialog = page.get_by_test_id("chat-dialog")
    await dialog.get_by_test_id("chat-title").locator("input").fill(title)
    await dialog.get_by_test_id("save-chat").click()
    row = page.get_by_test_id("chat-item").filter(has_text=title)
    await expect(row).to_be_visible()
    await page.get_by_test_id("project-none").click()  # in no project yet
    await expect(row).to_be_visible()

    # Renamed and moved into a new project: the project is listed, and lists the chat.
    await row.get_by_test_id("chat-actions").click()
    await page.locator(".n-dropdown-option").filter(has_text="Edit").click()
    await dialog.get_by_test_id("chat-title").locator("input").fill(renamed)
    await dialog.get_by_test_id("chat-project").locator("input").fill(project)
    await dialog.get_by_test_id("save-chat").click()
    await expect(page.get_by_test_id("chat-title-shown")).to_have_text(renamed)
    await page.get_by_test_id("projects").get_by_role("button", name=re.compile(re.escape(project))).click()
    row = page.get_by_test_id("chat-item").filter(has_text=renamed)
    await expect(page.get_by_test_id("chat-item")).to_have_count(1)
    await expect(row).to_contain_text(project)
    await page.get_by_test_id("project-none").click()
    await expect(page.get_by_test_id("chat-item").filter(has_text=renamed)).to_have_count(0)
    await page.get_by_test_id(f"project-project:{project}").click()

    # Archived: gone from the project's list, found among the archived chats.
    await row.get_by_test_id("chat-actions").click()
    await page.locator(".n-dropdown-option").filter(has_text="Archive").click()
    await expect(page.get_by_test_id("chat-item").filter(has_text=renamed)).to_have_count(0)
    await page.get_by_test_id("project-all").click()
    await page.get_by_test_id("show-archived").click()
    row = page.get_by_test_id("chat-item").filter(has_text=renamed)
    await expect(row).to_be_visible()

    # Deleted after the confirmation: gone, and the chat is no longer open.
    await row.get_by_test_id("chat-actions").click()
    await page.locator(".n-dropdown-option").filter(has_text="Delete").click()
    await page.get_by_test_id("delete-chat-dialog").get_by_role("button", name="Delete").click()
    await expect(row).to_have_count(0)
    await expect(page.get_by_test_id("no-chat")).to_be_visible()
    assert page_errors(page) == []


async def test_a_super_admin_reads_another_admins_chat_without_writing_to_it(
    browser: Browser, admin_email
) -> None:
    title = f"Not mine {uuid.uuid4().hex[:8]}"
    await _another_admins_chat(admin_email, title)
    page = await new_page(browser)
    await studio(page, admin_email)

    await expect(page.get_by_test_id("chat-item").filter(has_text=title)).to_have_count(0)  # mine only
    await page.get_by_test_id("show-everyone").click()
    item = page.get_by_test_id("chat-item").filter(has_text=title)
    await expect(item.get_by_test_id("others-chat")).to_be_visible()
    await expect(item.get_by_test_id("chat-actions")).to_have_count(0)
    await item.get_by_role("button").first.click()

    await expect(page.get_by_test_id("chat-title-shown")).to_have_text(title)
    await expect(page.get_by_test_id("user-message").last).to_contain_text("hello from another admin")
    await expect(page.get_by_test_id("read-only")).to_be_visible()
    await expect(page.get_by_test_id("prompt-bar")).to_have_count(0)
    await expect(page.get_by_test_id("edit-chat")).to_have_count(0)
    assert page_errors(page) == []


async def _another_admins_chat(super_admin_email: str, title: str) -> None:
    """A plain admin (made so by the super admin) starts a chat with one message, through the API."""
    from clients import PASSWORD, bearer, call, sign_in, sign_up, unique_email
    from clients import browser as api_client

    async with api_client() as client:
        _, root = await sign_in(client, super_admin_email, PASSWORD, mode="token")
        email = unique_email("studio-other")
        account = await sign_up(client, email, mode="token")
        status, _, _ = await call(
            client, "PUT", f"/api/admin/users/{account['user']['id']}/role", json={"role": "admin"},
            headers=bearer(root["access_token"]),
        )  # fmt: skip
        assert status == 200
        _, other = await sign_in(client, email, PASSWORD, mode="token")
        token = bearer(other["access_token"])
        status, chat, _ = await call(
            client, "POST", "/api/admin/studio/chats", json={"title": title}, headers=token
        )
        assert status == 201, chat
        status, posted, _ = await call(
            client, "POST", f"/api/admin/studio/chats/{chat['id']}/messages",
            json={"content": "hello from another admin"}, headers=token,
        )  # fmt: skip
        assert status == 202, posted
