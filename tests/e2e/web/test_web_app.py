"""The web app, as people use it: in headless Chromium against the running platform (all services, Kafka,
Postgres, Redis, S3), through the gateway that serves the built app on its own origin."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import aiohttp
import numpy as np
import pytest
from clients import GATEWAY_URL, PASSWORD, call, mailbox, png, sign_up, unique_email
from clients import browser as api_session
from PIL import Image, ImageDraw
from playwright.async_api import Browser, Page, expect

from funmagic_kit.testing import wait_until

from .conftest import DESKTOP, PHONE, new_page, page_errors, screenshot

pytestmark = pytest.mark.usefixtures("seeded_tools")


# --- helpers -------------------------------------------------------------------------------------


async def signed_in(
    browser: Browser, *, viewport: dict[str, int] = DESKTOP, dark: bool = False
) -> tuple[Page, str]:
    """A page whose context holds a fresh user's session cookies (signed up through the API)."""
    email = unique_email("web")
    async with api_session() as client:
        await sign_up(client, email)
        cookies = [
            {"name": c.key, "value": c.value, "url": GATEWAY_URL + (c["path"] or "/")}
            for c in client.cookie_jar
        ]
    page = await new_page(browser, viewport=viewport, dark=dark)
    await page.context.add_cookies(cookies)
    return page, email


async def balance_of(page: Page) -> int:
    response = await page.request.get("/api/credits/balance")
    assert response.ok, await response.text()
    return (await response.json())["balance"]


async def choose_photo(page: Page, data: bytes | None = None, name: str = "photo.png") -> None:
    await page.get_by_test_id("file-input").set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": data if data is not None else png(96, 72)}
    )
    await expect(page.get_by_alt_text(re.compile(".+"), exact=False).first).to_be_visible()
    # The preview shows at once; the photo is the form's only once its upload has finished.
    await expect(page.get_by_test_id("dropzone")).to_have_attribute("data-ready", "true")


async def slow_tool(admin_token: str, *, duration_ms: int = 6000) -> str:
    """A copy of Background Remove on the local provider that takes a while, so progress can be watched."""
    async with api_session() as client:
        headers = {"Authorization": f"Bearer {admin_token}"}
        status, types, _ = await call(client, "GET", "/api/admin/tool-types", headers=headers)
        assert status == 200, types
        slug = f"slow-remove-{uuid.uuid4().hex[:8]}"
        step = {
            "id": "remove-bg", "name": "Remove the background", "type": "remove-bg", "cost": 2,
            "provider": {"name": "local", "model": "local", "options": {"durationMs": duration_ms}},
            "input": {"image": "required", "prompt": "none"},
        }  # fmt: skip
        body = {"slug": slug, "title": "Slow Remove", "tool_type_id": types["items"][0]["id"],
                "config": {"steps": [step], "pipeline": True}}  # fmt: skip
        status, created, _ = await call(client, "POST", "/api/admin/tools", headers=headers, json=body)
        assert status == 201, created
    return slug


async def horizontal_overflow(page: Page) -> int:
    return await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


# --- accounts ------------------------------------------------------------------------------------


async def test_sign_up_verify_the_mail_sign_out_and_sign_in_again(browser: Browser, platform_env) -> None:
    page = await new_page(browser)
    email = unique_email("web-signup")
    await page.goto("/sign-up")
    await page.get_by_label("Name").fill("Ada")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_test_id("sign-up").click()
    await expect(page.get_by_test_id("credit-badge")).to_contain_text("50")  # the sign-up bonus

    mails = await mailbox(email, platform_env["INTERNAL_API_TOKEN"].split(",")[0])
    link = next(m for m in mails if m["purpose"] == "email-verification")["body"]
    token = parse_qs(urlsplit(re.search(r"https?://\S+", link).group(0)).query)["token"][0]  # type: ignore[union-attr]
    await page.goto(f"/verify-email?token={token}")
    await expect(page.get_by_test_id("verified")).to_be_visible()

    await page.get_by_test_id("user-menu").click()
    await page.get_by_text("Sign out").click()
    await expect(page.get_by_test_id("user-menu")).to_have_count(0)  # signed out: the header says so
    await page.goto("/profile")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next=(%2F|/)profile$"))

    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_test_id("sign-in").click()
    await expect(page).to_have_url(re.compile(r"/profile$"))
    await expect(page.get_by_test_id("balance-card")).to_contain_text("50")
    assert page_errors(page) == []


# --- running a tool ------------------------------------------------------------------------------


async def test_background_remove_shows_progress_then_a_downloadable_result(
    browser: Browser, admin_token
) -> None:
    slug = await slow_tool(admin_token, duration_ms=4000)
    page, _ = await signed_in(browser)
    await page.goto(f"/tools/{slug}")
    await choose_photo(page)
    await page.get_by_test_id("run").click()

    progress = page.get_by_test_id("progress")
    await expect(progress).to_be_visible()
    seen: set[str] = set()

    async def advanced() -> bool:
        if await progress.count():
            seen.add(await progress.locator(".n-progress-graph-line-fill").get_attribute("style") or "")
        return len(seen) >= 2

    await wait_until(advanced, timeout=15, what="the progress bar to move")
    await screenshot(page, "tool-mid-task")
    await expect(page.get_by_test_id("result-image")).to_be_visible(timeout=30_000)
    await screenshot(page, "result")

    async with page.expect_download() as download_info:
        await page.get_by_test_id("download").first.click()
    download = await download_info.value
    downloaded = (await download.path()).read_bytes()  # type: ignore[union-attr]
    task_id = parse_qs(urlsplit(page.url).query)["taskId"][0]
    task = await (await page.request.get(f"/api/tasks/{task_id}")).json()
    output_id = task["payload"]["output"]["assets"][0]["asset_id"]
    asset = await (await page.request.get(f"/api/assets/{output_id}")).json()
    async with aiohttp.ClientSession() as http, http.get(asset["url"]) as response:
        stored = await response.read()
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(stored).hexdigest()
    assert Image.open(io.BytesIO(downloaded)).mode == "RGBA"  # a real cut-out, transparent background
    assert page_errors(page) == []


async def test_a_reload_mid_task_picks_the_progress_up_again(browser: Browser, admin_token) -> None:
    slug = await slow_tool(admin_token, duration_ms=6000)
    page, _ = await signed_in(browser)
    await page.goto(f"/tools/{slug}")
    await choose_photo(page)
    await page.get_by_test_id("run").click()
    await expect(page.get_by_test_id("progress")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"taskId="))

    await page.reload()
    await expect(page.get_by_test_id("progress")).to_be_visible()
    await expect(page.get_by_test_id("result-image")).to_be_visible(timeout=30_000)


async def test_figme_runs_both_steps_to_a_rendered_3d_model(browser: Browser) -> None:
    page, _ = await signed_in(browser)
    await page.goto("/tools/figme")
    await choose_photo(page, png(80, 80))
    await page.get_by_test_id("style-style-clay").click()
    await page.get_by_test_id("run").click()
    # FigMe runs as a pipeline: the figurine image, then the 3D model made from it.
    figurine = page.get_by_test_id("step-output-image-gen").get_by_test_id("result-image")
    await expect(figurine).to_be_visible(timeout=60_000)
    canvas = page.get_by_test_id("model-viewer").locator("canvas")
    await expect(canvas).to_be_visible(timeout=60_000)

    async def drawn() -> bool:
        # Pixels that are not the viewer's dark background: the model is on screen.
        return await canvas.evaluate(
            """(c) => { const g = document.createElement('canvas'); g.width = c.width; g.height = c.height;
                 const x = g.getContext('2d'); x.drawImage(c, 0, 0);
                 const d = x.getImageData(0, 0, c.width, c.height).data; let lit = 0;
                 for (let i = 0; i < d.length; i += 16) if (d[i] + d[i+1] + d[i+2] > 200) lit++;
                 return lit > 50 }"""
        )

    await wait_until(drawn, timeout=20, what="the 3D model to be drawn")
    await screenshot(page, "figme-3d")
    assert page_errors(page) == []


def memory_photo() -> bytes:
    """A subject on a white background: a brightness ramp (a spread of depths), its right half striped
    (texture: confident points) and its left half flat (unsure points)."""
    image = Image.new("RGB", (240, 180), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for x in range(40, 200):
        shade = 30 + (x - 40)  # 30..189: never the white of the background
        stripe = x >= 120 and (x // 3) % 2 == 0
        draw.line(
            [(x, 30), (x, 150)], fill=(shade // 3, shade // 2, shade) if stripe else (shade, shade // 2, 40)
        )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def ply_vertices(data: bytes) -> np.ndarray:
    """The vertices of the local provider's binary PLY (x y z r g b confidence)."""
    header, _, body = data.partition(b"end_header\n")
    assert b"property float confidence" in header
    dtype = np.dtype(
        [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1"), ("c", "<f4")]
    )
    return np.frombuffer(body, dtype=dtype)


async def test_crystal_memory_point_cloud_filters_by_confidence_and_depth_and_exports_txt(
    browser: Browser,
) -> None:
    page, _ = await signed_in(browser)
    await page.goto("/tools/crystal-memory")
    await choose_photo(page, memory_photo())
    await page.get_by_test_id("run").click()
    viewer = page.get_by_test_id("pointcloud-viewer")
    count = page.get_by_test_id("points-shown")
    await expect(count).to_be_visible(timeout=60_000)

    # What the viewer should show is computed here from the stored PLY itself.
    task_id = parse_qs(urlsplit(page.url).query)["taskId"][0]
    task = await (await page.request.get(f"/api/tasks/{task_id}")).json()
    cloud_id = next(a["asset_id"] for a in task["payload"]["output"]["assets"] if a["role"] == "point_cloud")
    asset = await (await page.request.get(f"/api/assets/{cloud_id}")).json()
    async with aiohttp.ClientSession() as http, http.get(asset["url"]) as response:
        vertices = ply_vertices(await response.read())
    total = len(vertices)
    assert total > 1000
    await expect(count).to_contain_text(f"of {total:,} points shown")

    async def shown() -> int:
        return int(await count.get_attribute("data-shown") or "-1")

    # The z-crop is on at first: the stray ends of the depth range are hidden, the bulk is kept.
    cropped = await shown()
    assert 0.9 * total <= cropped < total
    await screenshot(page, "pointcloud")

    # The threshold, set from the keyboard: 39 % then one step right.
    slider = page.get_by_label(re.compile("^Confidence threshold"))
    await slider.fill("39")
    await slider.press("ArrowRight")
    await expect(slider).to_have_value("40")
    await expect(page.get_by_text("40 %", exact=True)).to_be_visible()
    await expect(count).not_to_have_attribute("data-shown", str(cropped))
    # The z-crop off: only the threshold counts, exactly as the stored confidences say.
    z_crop = page.get_by_role("switch", name="Z-crop")
    await expect(z_crop).to_have_attribute("aria-checked", "true")
    await z_crop.focus()
    await page.keyboard.press("Space")
    await expect(z_crop).to_have_attribute("aria-checked", "false")
    confident = vertices[vertices["c"].astype(np.float64) >= 0.40]
    assert 0 < len(confident) < total  # the flat half is below 40 %, the striped half above
    await expect(count).to_have_attribute("data-shown", str(len(confident)))
    await expect(count).to_contain_text(f"{len(confident):,} of {total:,} points shown")

    # The tooltip says what the z-crop does.
    await page.get_by_role("button", name="What z-crop does").hover()
    tooltip = page.locator(".n-popover")
    await expect(tooltip.get_by_text("keeps only the depth (z) range")).to_be_visible()
    await expect(tooltip).not_to_have_class(re.compile("transition-enter"))  # faded in
    await screenshot(page, "pointcloud-filtered")

    # TXT holds the points shown: "x y z r g b confidence", in the PLY's order and coordinates.
    await expect(viewer.locator("..").get_by_text("TXT holds the points shown")).to_contain_text(
        "x y z r g b confidence"
    )
    async with page.expect_download() as download_info:
        await page.get_by_test_id("download-txt").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".txt")
    lines = (await download.path()).read_text().splitlines()  # type: ignore[union-attr]
    assert len(lines) == len(confident)
    rows = np.array([[float(v) for v in line.split(" ")] for line in lines])
    assert rows.shape == (len(confident), 7)
    for column, name in enumerate(["x", "y", "z"]):
        assert np.allclose(rows[:, column], confident[name], atol=1e-5)
    for column, name in enumerate(["r", "g", "b"], start=3):
        assert np.array_equal(rows[:, column], confident[name])
    assert np.allclose(rows[:, 6], confident["c"], atol=1e-4)
    assert (rows[:, 6] >= 0.40 - 1e-4).all()
    assert page_errors(page) == []

    # The same result in Japanese on a phone: the controls fit, nothing scrolls sideways.
    await page.set_viewport_size(PHONE)
    await page.goto(f"/ja/tools/crystal-memory?taskId={task_id}")
    await expect(count).to_contain_text(f"{total:,} 点中")
    await expect(page.get_by_role("switch", name="Z クロップ")).to_be_visible()
    await expect(page.get_by_test_id("download-txt")).to_have_text("TXT をダウンロード")
    await page.get_by_test_id("download-txt").scroll_into_view_if_needed()
    assert await horizontal_overflow(page) <= 0
    await screenshot(page, "phone-pointcloud-ja")
    assert page_errors(page) == []


async def test_not_enough_credits_says_so_and_links_to_pricing(browser: Browser, admin_token) -> None:
    page, _ = await signed_in(browser)
    me = await (await page.request.get("/api/auth/me")).json()
    async with api_session() as client:  # an admin takes the sign-up bonus back
        status, body, _ = await call(
            client,
            "POST",
            f"/api/admin/users/{me['id']}/credits",
            json={"amount": -50, "reason": "web test"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert status in (200, 201), body
    await page.goto("/tools/background-remove")
    await choose_photo(page)
    await page.get_by_test_id("run").click()
    problem = page.get_by_test_id("problem")
    await expect(problem).to_contain_text("enough credits", timeout=30_000)
    await problem.get_by_role("link").click()
    await expect(page).to_have_url(re.compile(r"/pricing$"))


async def csrf(page: Page) -> str:
    cookies = await page.context.cookies()
    return next(c["value"] for c in cookies if c["name"] == "fm_csrf")


async def test_another_users_task_link_shows_not_found(browser: Browser, admin_token) -> None:
    owner, _ = await signed_in(browser)
    slug = await slow_tool(admin_token, duration_ms=500)
    await owner.goto(f"/tools/{slug}")
    await choose_photo(owner)
    await owner.get_by_test_id("run").click()
    await expect(owner).to_have_url(re.compile(r"taskId="))
    task_id = parse_qs(urlsplit(owner.url).query)["taskId"][0]

    stranger, _ = await signed_in(browser)
    await stranger.goto(f"/tools/{slug}?taskId={task_id}")
    await expect(stranger.get_by_test_id("problem")).to_contain_text("could not find")
    await expect(stranger.get_by_test_id("result")).to_have_count(0)


# --- buying credits ------------------------------------------------------------------------------


async def a_package(admin_token: str, stripe_fake, name: str, credits: int, price_minor: int) -> dict:
    """A credit package on sale (first on the pricing page), its price known to the fake Stripe."""
    price_id = f"price_{uuid.uuid4().hex[:12]}"
    stripe_fake.fake.register_price(price_id, price_minor, "usd", f"{credits} credits")
    async with api_session() as client:
        status, package, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={"name": name, "credits": credits, "price_minor": price_minor, "currency": "USD",
                  "stripe_price_id": price_id, "sort_order": -1},
            headers={"Authorization": f"Bearer {admin_token}"},
        )  # fmt: skip
        assert status == 201, package
    return package


async def test_buying_a_package_through_stripe_raises_the_badge_once(
    browser: Browser, stripe_fake, admin_token
) -> None:
    package = await a_package(admin_token, stripe_fake, "Web 100", credits=100, price_minor=499)
    page, _ = await signed_in(browser)
    before = await balance_of(page)
    await page.goto("/pricing")
    card = page.get_by_test_id(f"package-{package['id']}")
    await expect(card).to_contain_text("Web 100")
    await expect(page.get_by_test_id("payments-test-mode")).to_be_visible()  # sk_test_: no money moves
    await screenshot(page, "pricing")
    await card.get_by_test_id("buy").click()
    # The fake Stripe's hosted checkout page: pay.
    await page.get_by_role("button", name=re.compile("pay", re.IGNORECASE)).click()
    await expect(page).to_have_url(re.compile(r"/pricing/success"))
    await expect(page.get_by_test_id("credited")).to_be_visible(timeout=30_000)
    after = await balance_of(page)
    assert after == before + 100
    await expect(page.get_by_test_id("credit-badge")).to_contain_text(str(after))
    await page.reload()
    await expect(page.get_by_test_id("credit-badge")).to_contain_text(str(after))
    assert await balance_of(page) == after  # credited once, not again on a reload


# --- locales, theme, phones ----------------------------------------------------------------------


async def test_japanese_and_german_translate_the_ui_and_the_tools(browser: Browser) -> None:
    page = await new_page(browser)
    await page.goto("/ja/tools")
    await expect(page.locator("h1")).to_have_text("ツール")
    await expect(page).to_have_url(re.compile(r"/ja/tools$"))
    await page.goto("/de/tools")
    await expect(page.get_by_test_id("tool-card-figme")).to_be_visible()
    await expect(page.get_by_test_id("tool-card-background-remove")).to_contain_text("Hintergrund entfernen")
    await page.get_by_test_id("tool-card-background-remove").click()
    await expect(page).to_have_url(re.compile(r"/de/tools/background-remove$"))
    assert await page.evaluate("document.documentElement.lang") == "de"


async def test_the_dark_theme_is_remembered(browser: Browser) -> None:
    page = await new_page(browser)
    await page.goto("/")
    await page.get_by_test_id("theme-toggle").click()
    theme = await page.evaluate("document.documentElement.dataset.theme")
    await page.reload()
    assert await page.evaluate("document.documentElement.dataset.theme") == theme
    await screenshot(page, f"home-{theme}")


@pytest.mark.parametrize(
    "path", ["/", "/tools", "/tools/figme", "/pricing", "/profile", "/creations", "/sign-in"]
)
async def test_a_375px_phone_never_scrolls_sideways(browser: Browser, path: str) -> None:
    page, _ = await signed_in(browser, viewport=PHONE)
    await page.goto(path)
    # Every page's own content has rendered (an open task stream means the network is never idle).
    await expect(page.locator("main h1").first).to_be_visible()
    await expect(page.locator(".n-skeleton")).to_have_count(0)
    assert await horizontal_overflow(page) <= 0
    if path in ("/", "/tools/figme", "/pricing", "/profile"):
        await screenshot(page, "phone-" + (path.strip("/").replace("/", "-") or "home"))


async def test_desktop_screenshots_of_home_and_profile(browser: Browser) -> None:
    page, _ = await signed_in(browser)
    await page.goto("/")
    await expect(page.get_by_test_id("tool-card-figme")).to_be_visible()
    await expect(page.locator(".n-skeleton")).to_have_count(0)
    # The banners' arrows are buttons with names (Naive's own are unnamed divs).
    await expect(page.get_by_role("button", name="Previous banner")).to_be_visible()
    await expect(page.get_by_role("button", name="Next banner")).to_be_visible()
    await screenshot(page, "home")
    await page.goto("/profile")
    await expect(page.get_by_test_id("balance-card")).to_contain_text("50")
    await screenshot(page, "profile")


async def test_the_credit_history_shows_one_kind_of_entry_when_asked(browser: Browser) -> None:
    from .test_admin_tools import choose

    page, _ = await signed_in(browser)
    await page.goto("/profile")
    history = page.get_by_test_id("transactions")
    await expect(history.locator("tr")).to_have_count(1)
    await expect(history).to_contain_text("Welcome bonus")

    await choose(page, page.get_by_test_id("transaction-kind"), "Purchase")
    await expect(history).to_have_count(0)  # no purchase yet: the empty state
    await choose(page, page.get_by_test_id("transaction-kind"), "Welcome bonus")
    await expect(page.get_by_test_id("transactions").locator("tr")).to_have_count(1)
    assert page_errors(page) == []


async def test_signing_out_sends_protected_pages_to_sign_in(browser: Browser) -> None:
    page, _ = await signed_in(browser)
    await page.goto("/creations")
    await expect(page.locator("h1")).to_have_text("My creations")
    await page.get_by_test_id("user-menu").click()
    await page.get_by_text("Sign out").click()
    await expect(page.get_by_test_id("user-menu")).to_have_count(0)  # signed out: the header says so
    await page.goto("/creations")
    await expect(page).to_have_url(re.compile(r"/sign-in\?next="))


async def test_an_unknown_page_is_a_404_page(browser: Browser) -> None:
    page = await new_page(browser)
    response = await page.goto("/no/such/page")
    assert response is not None
    assert response.status == 200  # the app answers deep links itself; it shows its 404 page
    await expect(page.get_by_test_id("not-found")).to_be_visible()
