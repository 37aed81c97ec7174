"""The queue monitor in the admin app, in headless Chromium against the running platform: a poisoned event
shows up among the dead letters with why it failed, and once its handler is fixed one replay processes it
(the user gets their bonus once); a provider's rate limit edited while tasks run shows in the limiter.

The poison is the kit's test hook (the `poison_dir` fixture; see tests/e2e/test_admin_queue.py): while a file
named after an event id is in that folder, every consumer refuses the event for good."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from clients import bearer, call, png, upload
from clients import browser as api_session
from playwright.async_api import Browser, Page, expect
from test_admin_queue import REPLAY, credits_of, registered
from test_backend_parity import new_user

from funmagic_contracts.envelope import encode, kafka_headers
from funmagic_kit.kafka import create_producer
from funmagic_kit.testing import wait_until

from .conftest import new_page, screenshot
from .test_admin_app import sign_in_through_the_form

pytestmark = pytest.mark.usefixtures("seeded_tools")

BONUS = 50


async def admin_page(browser: Browser, admin_email: str) -> Page:
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_test_id("signed-in-as")).to_be_visible()
    return page


async def test_a_poisoned_event_is_found_among_the_dead_letters_and_replayed_once(
    browser: Browser, admin_email: str, admin_token: str, poison_dir: Path, stack_env: dict[str, str]
) -> None:
    user_id = str(uuid.uuid4())
    envelope = registered(user_id)
    (poison_dir / str(envelope.id)).touch()
    producer = await create_producer(stack_env["KAFKA_BOOTSTRAP_SERVERS"], client_id="e2e-web-queue")
    try:
        await producer.send_and_wait(
            "identity.events", encode(envelope), key=user_id.encode(), headers=kafka_headers(envelope)
        )
    finally:
        await producer.stop()

    page = await admin_page(browser, admin_email)
    await page.get_by_role("link", name="Queue", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/admin/queue$"))
    await expect(page.get_by_test_id("lag")).to_contain_text("credits")
    dead_letters = page.get_by_test_id("dlq-identity-events-dlq")
    await page.get_by_role("link", name="identity.events.dlq").click()
    letter = page.get_by_test_id(f"dead-letter-{envelope.id}")
    await expect(letter).to_be_visible(timeout=30_000)
    await expect(letter).to_contain_text("PermanentError: poisoned by a test hook")
    await expect(letter).to_contain_text("UserRegistered")
    await expect(letter).to_contain_text("credits")  # the consumer that gave up
    assert (await credits_of(admin_token, user_id))["balance"] == 0, "no bonus while the handler fails"
    await screenshot(page, "admin-dead-letters")

    (poison_dir / str(envelope.id)).unlink()  # the handler is fixed
    await letter.get_by_role("checkbox").check()
    await page.get_by_test_id("replay").click()
    await expect(letter.get_by_test_id("outcome")).to_have_text("Replayed")
    await expect(page.get_by_test_id("replay-summary")).to_contain_text("1 replayed")

    async def bonus_granted() -> bool:
        return (await credits_of(admin_token, user_id))["balance"] == BONUS

    await wait_until(bonus_granted, timeout=30, what="the replayed event to grant the bonus", interval=0.2)
    # Once: the page shows it replayed and offers no second replay; the API refuses to publish it again.
    await page.reload()
    await expect(letter.get_by_test_id("replayed")).to_be_visible()
    await expect(letter.get_by_role("checkbox")).to_be_disabled()
    async with api_session() as client:
        position = {"partition": int((await letter.get_attribute("data-partition")) or 0),
                    "offset": int((await letter.get_attribute("data-offset")) or 0)}  # fmt: skip
        status, again, _ = await call(
            client, "POST", REPLAY, headers=bearer(admin_token), json={"messages": [position]}
        )
    assert status == 200, again
    assert again["items"][0]["status"] == "already_replayed", again
    history = (await credits_of(admin_token, user_id))["transactions"]["items"]
    assert [item["type"] for item in history].count("bonus") == 1
    assert (await credits_of(admin_token, user_id))["balance"] == BONUS

    await page.get_by_role("link", name="Queue monitor").click()
    await expect(dead_letters).to_be_visible()
    await expect(page.get_by_test_id("lag")).to_be_visible(timeout=30_000)
    await expect(page.get_by_test_id("limiter")).to_be_visible()


async def limited_tool(admin_token: str, provider: str) -> str:
    """A slow one-step tool on `provider` (a local one), so its calls hold the limiter's slots a while."""
    async with api_session() as client:
        headers = bearer(admin_token)
        status, types, _ = await call(client, "GET", "/api/admin/tool-types", headers=headers)
        assert status == 200, types
        slug = f"limited-{uuid.uuid4().hex[:8]}"
        step = {
            "id": "remove-bg", "name": "Remove the background", "type": "remove-bg", "cost": 1,
            "provider": {"name": provider, "model": "local", "options": {"durationMs": 12_000}},
            "input": {"image": "required", "prompt": "none"},
        }  # fmt: skip
        body = {"slug": slug, "title": "Limited Remove", "tool_type_id": types["items"][0]["id"],
                "config": {"steps": [step], "pipeline": True}}  # fmt: skip
        status, created, _ = await call(client, "POST", "/api/admin/tools", headers=headers, json=body)
        assert status == 201, created
    return slug


async def test_a_rate_limit_raised_in_the_provider_editor_shows_in_the_limiter_while_tasks_run(
    browser: Browser, admin_email: str, admin_token: str
) -> None:
    name = f"limited-{uuid.uuid4().hex[:8]}"
    async with api_session() as client:
        status, provider, _ = await call(
            client, "POST", "/api/admin/providers", headers=bearer(admin_token),
            json={"name": name, "type": "local", "config": {"rateLimit": {"maxConcurrency": 1}}},
        )  # fmt: skip
        assert status == 201, provider
    slug = await limited_tool(admin_token, name)
    user = await new_user("limited")  # with the sign-up bonus on the balance
    image = await upload(user["token"], png())
    async with api_session() as client:
        for _ in range(4):
            status, task, _ = await call(
                client, "POST", "/api/tasks", headers=bearer(user["token"]),
                json={"toolSlug": slug, "input": {"imageAssetId": image}},
            )  # fmt: skip
            assert status == 202, task

    page = await admin_page(browser, admin_email)
    await page.goto("/admin/queue")
    in_flight = page.get_by_test_id(f"limiter-web-{name}").get_by_test_id("in-flight")
    await expect(in_flight).to_contain_text("1 / 1", timeout=30_000)  # one call at a time, the rest wait
    # queued: the runner gives a limited provider no more jobs than its free slots (nobody is turned away)
    await expect(page.get_by_test_id("jobs-queued")).not_to_have_text("0")

    await page.goto(f"/admin/providers/{provider['id']}")
    limit = page.get_by_test_id("limit-maxConcurrency").locator("input")
    await limit.fill("3")
    await page.get_by_test_id("save-provider").click()
    await expect(page.get_by_text(f"Provider {name} saved.")).to_be_visible()

    await page.goto("/admin/queue")
    # The new limit is read at once, and the waiting calls take the free slots while the first still runs.
    await expect(in_flight).to_contain_text(re.compile(r"\b[23] / 3"), timeout=30_000)
    await screenshot(page, "admin-queue-monitor")
