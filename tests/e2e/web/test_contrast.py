"""Text people can read: every text on the main pages of both apps, in the light and the dark theme, against
the background it is drawn on, meets WCAG's contrast minimum (4.5:1; 3:1 for large text). Checked in headless
Chromium on the running platform, from the colours the browser computed.

What cannot be judged from colours alone is left out: text over a background image or a gradient (the home
page's banners, a tool's cover), and disabled controls (WCAG exempts them).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from .conftest import new_page, page_errors
from .test_admin_app import sign_in_through_the_form

pytestmark = pytest.mark.usefixtures("seeded_tools")

# Each text node's element whose contrast is below the minimum, as "ratio text (colours)". Backgrounds are
# composited from the element up to the first opaque one (a tag's tint over its card); the text's own
# alpha is composited over that.
_LOW_CONTRAST = """() => {
  const rgba = (value) => {
    const m = value.match(/[\\d.]+/g)
    if (!m) return null
    const [r, g, b, a] = m.map(Number)
    return [r, g, b, a === undefined ? 1 : a]
  }
  const over = (top, below) => [0, 1, 2].map((i) => top[i] * top[3] + below[i] * (1 - top[3])).concat(1)
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4 })
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
  }
  // The colour behind `el`, or null when an image or a gradient is part of it.
  const background = (el) => {
    const layers = []
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node)
      if (style.backgroundImage !== 'none') return null
      const colour = rgba(style.backgroundColor)
      if (colour && colour[3] > 0) {
        layers.push(colour)
        if (colour[3] >= 1) break
      }
    }
    return layers.reverse().reduce((below, top) => over(top, below), [255, 255, 255, 1])
  }
  const low = []
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim())) continue
    const box = el.getBoundingClientRect()
    if (box.width === 0 || box.height === 0) continue
    const style = getComputedStyle(el)
    if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue
    // `:disabled`, not `[disabled]`: a Naive button drawn as a link carries disabled="false".
    if (el.closest(':disabled, [aria-disabled="true"], .n-button--disabled, .n-input--disabled, .sr-only')) continue
    const behind = background(el)
    if (behind === null) continue
    const text = over(rgba(style.color), behind)
    const [light, dark] = [luminance(text), luminance(behind)].sort((a, b) => b - a)
    const ratio = (light + 0.05) / (dark + 0.05)
    const size = parseFloat(style.fontSize)
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66)
    if (ratio < (large ? 3 : 4.5) - 0.005) {
      low.push(`${ratio.toFixed(2)} "${el.textContent.trim().slice(0, 40)}" (${style.color} on ${behind.map(Math.round).slice(0, 3)})`)
    }
  }
  return low
}"""

_SETTLED = """() =>
  document.querySelector('main .n-skeleton') === null &&
  document.getAnimations().every((a) => a.playState !== 'running' || a.effect?.getTiming().iterations === Infinity)"""

WEB_PAGES = ["/", "/tools", "/tools/background-remove", "/tools/figme", "/pricing", "/profile", "/creations", "/help", "/de/pricing"]
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


async def test_every_text_of_the_admin_app_reads_against_its_background(browser: Browser, admin_email) -> None:
    page = await new_page(browser)
    await sign_in_through_the_form(page, admin_email)
    await expect(page.get_by_test_id("signed-in-as")).to_be_attached()
    found = [finding for path in ADMIN_PAGES for finding in await low_contrast_on(page, path)]
    assert found == [], "\n".join(found)
    assert page_errors(page) == []
