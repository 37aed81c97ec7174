"""Browser tests: the built web app, served by the e2e platform's gateway, driven in headless Chromium.

Chromium is Debian's (`make browser` installs it); Playwright drives it through `executable_path`, so no
browser is downloaded. Each test gets a fresh browser context (cookies, storage) and its own user. Pages
are screenshotted into `docs/screenshots/` where the tests say so; those files are what README shows.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from clients import GATEWAY_URL
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Request, async_playwright

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags Chromium needs in a sandbox with no network beyond the machine, as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make browser` (Debian's chromium package)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def new_page(
    browser: Browser,
    *,
    viewport: dict[str, int] = DESKTOP,
    dark: bool = False,
    timezone_id: str | None = None,
    locale: str | None = None,
) -> Page:
    """A fresh context's page; `timezone_id` (e.g. "Asia/Shanghai") sets the browser's time zone, `locale`
    (e.g. "zh-CN") its language."""
    context: BrowserContext = await browser.new_context(
        base_url=GATEWAY_URL,
        viewport=viewport,
        color_scheme="dark" if dark else "light",
        accept_downloads=True,
        timezone_id=timezone_id,
        locale=locale,
    )
    context.set_default_timeout(20_000)
    page = await context.new_page()
    page.on("pageerror", lambda error: page_errors(page).append(str(error)))
    # What the browser saw go wrong, printed with a failing test's output.
    page.on("console", _print_problem_message)
    page.on("requestfailed", _print_failed_request)
    return page


def _print_problem_message(message: ConsoleMessage) -> None:
    if message.type in ("error", "warning"):
        print(f"[console.{message.type}] {message.text}")


def _print_failed_request(request: Request) -> None:
    print(f"[request failed] {request.method} {request.url} {request.failure}")


_ERRORS: dict[int, list[str]] = {}


def page_errors(page: Page) -> list[str]:
    """Uncaught script errors of a page (a test asserts there were none)."""
    return _ERRORS.setdefault(id(page), [])


@pytest.fixture
async def page(browser: Browser) -> Page:
    return await new_page(browser)


# Every image in the viewport has finished (loaded, or failed: `complete` either way). Lazy images below it
# have not started and are not waited for.
_IMAGES_ON_SCREEN_COMPLETE = """() => [...document.images].every((img) => {
  const box = img.getBoundingClientRect()
  const onScreen = box.bottom > 0 && box.right > 0 && box.top < innerHeight && box.left < innerWidth
  return !onScreen || img.complete
})"""


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # A picture still arriving would be half drawn (or blank) in the file the README shows.
    await page.wait_for_function(_IMAGES_ON_SCREEN_COMPLETE)
    # Transitions finished: a screenshot right after a click shows the state it led to.
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False, animations="disabled")
