"""Text people can read: every text on the main pages of both apps, in the light and the dark theme, against
the background it is drawn on, meets WCAG's contrast minimum (4.5:1; 3:1 for large text). Checked in headless
Chromium on the running platform, from the colours the browser computed.

What cannot be judged from colours alone is left out: text over a background image or a gradient (the home
page's banners, a tool's cover), and disabled controls (WCAG exempts them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from .conftest import new_page, page_errors
from .test_admin_app import sign_in_through_the_form

pytestmark = pytest.mark.usefixtures("seeded_tools")

# The function's text without its heading comment (Playwright takes the rest as a function to call).
_LOW_CONTRAST = "\n".join(
    line
    for line in (Path(__file__).parent / "low_contrast.js").read_text().splitlines()
    if not line.startswith("//")
)

_SETTLED = """() =>
  document.querySelector('main .n-skeleton') === null &&
  document.getAnimations().every(
    (a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity
  )"""

WEB_PAGES = [
    "/",
    "/tools",
    "/tools/background-remove",
    "/tools/figme",
    "/pricing",
    "/profile",
    "/creations",
    "/help",
    "/de/pricing",
]
ADMIN_PAGES = [
    "/admin/",
    "/admin/users",
    "/admin/tasks",
    "/admin/tools",
    "/admin/tool-types",
    "/admin/banners",
    "/admin/packages",
    "/admin/providers",
    "/admin/settings/rate-limits",
    "/admin/queue",
    "/admin/audit",
    "/admin/studio",
]


async def low_contrast_on(page: Page, path: str) -> list[str]:
    await page.goto(path)
    await expect(page.locator("main")).not_to_be_empty()
    # The page's data has arrived (no skeleton left) and its transitions ended (Naive fades content in; a
    # pulsing "live" dot never ends). Not "network idle": the studio and the stream keep a request open.
    await page.wait_for_function(_SETTLED)
    return [f"{path}: {finding}" for finding in await page.evaluate(_LOW_CONTRAST)]


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
async def test_every_text_of_the_web_app_reads_against_its_background(
    browser: Browser, admin_email, dark: bool
) -> None:
    page = await new_page(browser, dark=dark)
    # Signed out first: the header's sign-up button, the forms' placeholders and rules.
    found = [finding for path in ("/sign-up", "/sign-in") for finding in await low_contrast_on(page, path)]
    await sign_in_through_the_form(page, admin_email)  # one session for both apps: the profile has data
    await expect(page.get_by_test_id("signed-in-as")).to_be_attached()
    found += [finding for path in WEB_PAGES for finding in await low_contrast_on(page, path)]
    assert found == [], "\n".join(found)
    assert page_errors(page) == []


async def test_every_text_of_the_admin_app_reads_against_its_background(
    browser: Browser, admin_email
) -> None:
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_test_id("signed-in-as")).to_be_attached()
    found = [finding for path in ADMIN_PAGES for finding in await low_contrast_on(page, path)]
    assert found == [], "\n".join(found)
    assert page_errors(page) == []
