"""The audit log in the admin app, in headless Chromium against the running platform: an admin's write
shows up with who did it, why and what changed, found by its subject."""

from __future__ import annotations

import re
import uuid

from clients import PASSWORD, bearer, call
from clients import browser as api_session
from playwright.async_api import Browser, expect

from .conftest import new_page, screenshot
from .test_admin_app import sign_in_through_the_form


async def test_an_adjustment_is_found_in_the_audit_log_with_its_reason(
    browser: Browser, admin_email: str, admin_token: str
) -> None:
    async with api_session() as client:
        status, account, _ = await call(
            client, "POST", "/api/auth/sign-up/email",
            json={"email": f"audit-ui-{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD,
                  "mode": "token"},
        )  # fmt: skip
        assert status == 201, account
        customer = account["user"]["id"]
        status, body, _ = await call(
            client, "POST", f"/api/admin/users/{customer}/credits",
            headers={**bearer(admin_token), "Idempotency-Key": str(uuid.uuid4())},
            json={"amount": 12, "reason": "a refund for a failed render"},
        )  # fmt: skip
        assert status == 201, body

    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await page.get_by_role("link", name="Audit log", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/admin/audit"))
    await page.get_by_test_id("audit-subject").locator("input").fill(customer)
    await page.get_by_test_id("audit-apply").click()
    await expect(page).to_have_url(re.compile(rf"subject={customer}"))
    row = page.get_by_test_id("audit-credits.adjusted")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("a refund for a failed render")
    await row.get_by_text(re.compile(r"fields? changed")).click()
    await expect(row).to_contain_text('"amount": 12')
    await screenshot(page, "admin-audit")
    # The subject links to the user's page.
    await row.get_by_role("link", name=customer).click()
    await expect(page).to_have_url(re.compile(rf"/admin/users/{customer}"))
