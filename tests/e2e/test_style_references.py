"""Style references end to end, through the gateway, on the fake OpenAI server: a FigMe-like tool whose
style reference has an image the admin uploaded. A user's task with `styleReferenceId` reaches OpenAI as
the original's `images.edit` with [style image, user image] — both images, in that order, byte for byte —
and the style's prompt; a step with `useStyleImage: false` sends the user's image alone. The fake refuses
what the real API refuses (a missing image, an unreadable one, several for a model that takes one), so a
completed task means the request was one OpenAI would take.

The style image is the admin's, not the user's: providers reads it as a published catalog image. The user
still cannot hand it in as their own input."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

from clients import download, png, upload
from openai_api import FakeOpenAI
from PIL import Image
from test_backend_parity import admin_upload, api, completed_task, create_type, new_user, unique

OPENAI_KEY = "sk-e2e-styles-" + uuid.uuid4().hex
STYLE_PROMPT = "Transform into a blue clay figurine"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def register_openai(admin_token: str, fake: FakeOpenAI) -> str:
    body = {
        "name": unique("openai-styles"), "type": "openai", "base_url": fake.url, "api_key": OPENAI_KEY,
        "config": {"rateLimit": {"maxRetries": 0}},
    }  # fmt: skip
    status, created, _ = await api("POST", "/api/admin/providers", admin_token, json=body)
    assert status == 201, created
    return created["name"]


async def figme_like_tool(
    admin_token: str, provider: str, style_asset_id: str, *, use_style_image: bool | None = None
) -> dict[str, Any]:
    """One image-gen step on the user's photo, on OpenAI, with one style reference that has an image."""
    step: dict[str, Any] = {
        "id": "figurine", "name": "Figurine", "type": "image-gen", "cost": 2,
        "provider": {"name": provider, "model": "gpt-image-1", "options": {}},
        "input": {"image": "required", "prompt": "optional"},
    }  # fmt: skip
    if use_style_image is not None:
        step["useStyleImage"] = use_style_image
    tool_type = await create_type(admin_token)
    slug = unique("e2e-styles")
    body = {
        "slug": slug, "title": slug, "tool_type_id": tool_type["id"],
        "config": {
            "steps": [step],
            "styleReferences": [
                {"id": "style-blue", "name": "Blue clay", "prompt": STYLE_PROMPT, "assetId": style_asset_id}
            ],
            "pipeline": True,
        },
    }  # fmt: skip
    status, tool, _ = await api("POST", "/api/admin/tools", admin_token, json=body)
    assert status == 201, tool
    return tool


async def styled_task(user: dict[str, str], slug: str, photo_id: str) -> dict[str, Any]:
    body = {"toolSlug": slug, "input": {"imageAssetId": photo_id, "styleReferenceId": "style-blue"}}
    return await completed_task(user, body)


async def test_a_style_edit_sends_the_style_image_then_the_users_photo(platform, admin_token) -> None:
    style, photo = png(30, 40, (10, 10, 200)), png(64, 48, (240, 240, 240))
    style_id = await admin_upload(admin_token, style, "style-blue.png")
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register_openai(admin_token, fake)
        tool = await figme_like_tool(admin_token, provider, style_id)
        (step,) = tool["config"]["steps"]
        assert step["useStyleImage"] is True, "the default"
        user = await new_user("styles")
        photo_id = await upload(user["token"], photo)

        task = await styled_task(user, tool["slug"], photo_id)

        (edit,) = fake.edits
        assert edit.prompt == STYLE_PROMPT
        assert edit.model == "gpt-image-1"
        assert [image.sha256 for image in edit.images] == [sha256(style), sha256(photo)]
        assert [image.field for image in edit.images] == ["image[]", "image[]"]
        assert [r.path for r in fake.requests] == ["/v1/images/edits"]
    (output,) = task["payload"]["output"]["assets"]
    assert output["role"] == "image"
    _, data = await download(user["token"], output["asset_id"])
    assert Image.open(io.BytesIO(data)).format == "PNG"
    (step_result,) = task["payload"]["steps"]
    assert step_result["metadata"]["referenceAssetIds"] == [style_id]


async def test_use_style_image_false_sends_the_users_photo_alone(platform, admin_token) -> None:
    style, photo = png(30, 40, (200, 10, 10)), png(50, 50, (240, 240, 240))
    style_id = await admin_upload(admin_token, style, "style-red.png")
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register_openai(admin_token, fake)
        tool = await figme_like_tool(admin_token, provider, style_id, use_style_image=False)
        (step,) = tool["config"]["steps"]
        assert step["useStyleImage"] is False
        user = await new_user("styles-off")
        photo_id = await upload(user["token"], photo)

        task = await styled_task(user, tool["slug"], photo_id)

        (edit,) = fake.edits
        assert edit.prompt == STYLE_PROMPT, "the style's prompt is used either way"
        assert [(image.field, image.sha256) for image in edit.images] == [("image", sha256(photo))]
    (output,) = task["payload"]["output"]["assets"]
    _, data = await download(user["token"], output["asset_id"])
    assert Image.open(io.BytesIO(data)).format == "PNG"


async def test_a_user_cannot_hand_in_the_style_image_as_their_own(platform, admin_token) -> None:
    style_id = await admin_upload(admin_token, png(20, 20, (10, 200, 10)), "style-green.png")
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register_openai(admin_token, fake)
        tool = await figme_like_tool(admin_token, provider, style_id)
        user = await new_user("styles-thief")

        status, problem, _ = await api(
            "POST", "/api/tasks", user["token"],
            json={"toolSlug": tool["slug"], "input": {"imageAssetId": style_id}},
        )  # fmt: skip

        assert (status, problem["code"]) == (422, "asset_not_found")
        assert fake.edits == []
