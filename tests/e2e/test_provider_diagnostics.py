"""Provider diagnostics end to end, through the gateway, on the fake OpenAI server: after a user's task on
an OpenAI-backed tool finished, an admin reads the calls its step job made (`GET
/api/admin/tasks/{task_id}/provider-calls`) — method, URL, status, duration, the request id — with the
images replaced by markers and no key anywhere; a user who is not an admin is refused (403)."""

from __future__ import annotations

import json

from clients import png, upload
from openai_api import FakeOpenAI
from test_backend_parity import admin_upload, api, new_user
from test_style_references import OPENAI_KEY, figme_like_tool, register_openai, styled_task


async def test_an_admin_reads_a_finished_tasks_provider_calls_redacted_and_a_user_cannot(
    platform, admin_token
) -> None:
    style, photo = png(30, 40, (10, 120, 60)), png(64, 48, (240, 240, 240))
    style_id = await admin_upload(admin_token, style, "style-green.png")
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register_openai(admin_token, fake)
        tool = await figme_like_tool(admin_token, provider, style_id)
        user = await new_user("diagnostics")
        photo_id = await upload(user["token"], photo)
        task = await styled_task(user, tool["slug"], photo_id)
        fake_url = fake.url
    path = f"/api/admin/tasks/{task['id']}/provider-calls"

    status, body, _ = await api("GET", path, admin_token)

    assert status == 200, body
    assert body["task_id"] == task["id"]
    (job,) = body["items"]
    assert (job["step_id"], job["status"], job["provider"], job["model"]) == (
        "figurine", "completed", provider, "gpt-image-1",
    )  # fmt: skip
    (call,) = job["calls"]
    assert (call["method"], call["url"], call["status"], call["error"]) == (
        "POST", f"{fake_url}/images/edits", 200, None,
    )  # fmt: skip
    assert isinstance(call["duration_ms"], int)
    assert call["duration_ms"] >= 0
    assert call["request_ids"]["x-request-id"].startswith("req_")
    # The edit's images went as multipart: named with their size, never kept.
    assert call["request_body"].startswith("<multipart/form-data body")
    (image,) = call["response_body"]["data"]
    assert image["b64_json"].startswith("<redacted base64, ")
    text = json.dumps(body)
    assert OPENAI_KEY not in text
    assert OPENAI_KEY[-12:] not in text
    assert "iVBOR" not in text  # no PNG in base64 anywhere
    assert "authorization" not in text.lower()

    status, problem, _ = await api("GET", path, user["token"])
    assert status == 403, problem
