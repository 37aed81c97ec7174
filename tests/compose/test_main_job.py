"""The main job on the composed platform: the images built by `make images`, started by compose.

A user signs up, uploads a picture straight to S3, runs a tool, follows it live, downloads the output,
and is charged exactly the price — every part in its own container, reached only through the ports
compose publishes on the host's loopback.
"""

from __future__ import annotations

import io

import aiohttp
from clients import GATEWAY_URL, download, png, read_sse, upload
from PIL import Image
from test_tasks import balance, get_task, new_user, start_task, until_balance


async def test_a_user_signs_up_uploads_runs_a_tool_and_gets_the_output(seeded_tools, s3_origin) -> None:
    await main_job(s3_origin)


async def main_job(s3_origin: str) -> None:
    """Sign up, upload, run background removal, follow it live, download the cut-out, pay exactly 5."""
    user = await new_user()
    assert (await balance(user))["balance"] == 50, "the sign-up bonus"
    image = await upload(user["token"], png(80, 60))

    status, task = await start_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    assert status == 202, task
    status, events, _ = await read_sse(user["token"], f"/api/tasks/{task['id']}/stream")
    assert status == 200
    kinds = [e.event for e in events]
    assert kinds[0] == "connected", kinds
    assert kinds[-2:] == ["step_completed", "completed"], kinds

    (output,) = events[-1].data["output"]["assets"]
    asset, data = await download(user["token"], output["assetId"])
    assert asset["url"].startswith(f"{s3_origin}/"), "presigned for the published S3 port"
    cutout = Image.open(io.BytesIO(data))
    assert cutout.mode == "RGBA"
    assert cutout.getpixel((0, 0))[3] == 0, "the plain background is gone"

    spent = await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 45)
    assert spent["lifetime_spent"] == 5
    _, finished = await get_task(user, task["id"])
    assert (finished["status"], finished["charged_credits"]) == ("completed", 5)


async def test_the_web_edge_serves_both_apps_and_passes_the_api_to_the_gateway(s3_origin) -> None:
    async with aiohttp.ClientSession(base_url=GATEWAY_URL) as http:
        async with http.get("/") as page:
            assert page.status == 200
            assert "text/html" in page.headers["Content-Type"]
            assert s3_origin in page.headers["Content-Security-Policy"]
        async with http.get("/admin/") as admin:
            assert admin.status == 200
            assert '<div id="app">' in await admin.text()
        async with http.get("/health/all") as health:
            body = await health.json()
            assert health.status == 200, body
            assert {"identity", "tasks", "credits", "storage", "providers", "kafka", "redis"} <= body[
                "checks"
            ].keys()
            assert all(check["ok"] for check in body["checks"].values()), body


async def test_every_service_runs_from_the_one_image_as_an_unprivileged_user(compose) -> None:
    for service in ("gateway", "identity", "tasks", "credits", "storage", "providers"):
        result = compose(
            "exec",
            "-T",
            service,
            "python",
            "-c",
            "import os; print(os.getuid(), os.environ['FUNMAGIC_SERVICE'])",
        )
        assert result.stdout.split() == ["10001", service]
