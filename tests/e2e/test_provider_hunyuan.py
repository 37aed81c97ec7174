"""Image to 3D on Tencent Hunyuan 3D, end to end through the gateway: an admin registers a `hunyuan` provider
with its SecretId and SecretKey (the secret is never shown again, only its hint), a tool's `3d-gen` step
lets users pick it with Hunyuan's options, and the fake Tencent API (tests/fakes/hunyuan_api.py, which
verifies the TC3-HMAC-SHA256 signature) sees the pick and returns a GLB the user downloads. With a wrong
SecretKey the task fails on Tencent's AuthFailure and the user gets the credits back."""

from __future__ import annotations

import uuid

from clients import bearer, browser, call, download, png, upload
from hunyuan_api import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, FakeHunyuan
from test_tasks import create_tool, new_user, start_task, until_balance, until_task


async def register_hunyuan(
    admin_token: str, base_url: str, secret: str = DEFAULT_SECRET_KEY
) -> tuple[str, dict]:
    name = f"hunyuan-{uuid.uuid4().hex[:10]}"
    body = {"name": name, "type": "hunyuan", "base_url": base_url, "api_key": DEFAULT_SECRET_ID,
            "api_secret": secret, "config": {}}  # fmt: skip
    async with browser() as client:
        status, created, _ = await call(
            client, "POST", "/api/admin/providers", json=body, headers=bearer(admin_token)
        )
    assert status == 201, created
    return name, created


def image_to_3d_step(hunyuan: str) -> dict:
    return {
        "id": "3d-gen", "name": "3D model", "type": "3d-gen", "cost": 30,
        "provider": {"name": "local", "model": "default", "options": {}},
        "input": {"image": "required", "prompt": "none"},
        "choices": [
            {"provider": "local", "label": "Built-in"},
            {"provider": hunyuan, "label": "Hunyuan 3D",
             "options": {"GenerateType": {"type": "enum", "values": ["Normal", "LowPoly", "Geometry"]},
                         "FaceCount": {"type": "integer", "min": 40000, "max": 500000},
                         "EnablePBR": {"type": "boolean", "default": False}}},
        ],
    }  # fmt: skip


async def test_a_user_picks_hunyuan_with_its_options_and_gets_the_glb(
    platform, seeded_tools, admin_token
) -> None:
    async with FakeHunyuan(polls_until_done=2) as fake:
        hunyuan, created = await register_hunyuan(admin_token, fake.origin)
        assert created["has_api_secret"] is True
        assert created["api_secret_hint"] == "••••" + DEFAULT_SECRET_KEY[-4:]
        async with browser() as client:
            _, listed, _ = await call(client, "GET", "/api/admin/providers", headers=bearer(admin_token))
        assert DEFAULT_SECRET_KEY not in str(created) + str(listed), "the secret is never answered"
        slug = await create_tool(admin_token, [image_to_3d_step(hunyuan)])
        user = await new_user(admin_token, extra_credits=100)
        image = await upload(user["token"], png(160, 160))

        pick = {
            "name": hunyuan,
            "options": {"GenerateType": "LowPoly", "FaceCount": 60000, "EnablePBR": True},
        }
        status, task = await start_task(
            user, {"toolSlug": slug, "input": {"imageAssetId": image, "provider": pick}}
        )
        assert status == 202, task
        done = await until_task(user, task["id"])

        assert done["status"] == "completed", done
        (sent,) = fake.submitted
        assert (sent["GenerateType"], sent["FaceCount"], sent["EnablePBR"]) == ("LowPoly", 60000, True)
        assert sent["ImageBase64"] > 0
        model = next(a for a in done["payload"]["output"]["assets"] if a["role"] == "model")
        _, glb = await download(user["token"], model["asset_id"])
        assert glb[:4] == b"glTF"


async def test_a_wrong_secret_fails_the_task_and_gives_the_credits_back(
    platform, seeded_tools, admin_token
) -> None:
    async with FakeHunyuan(polls_until_done=1) as fake:
        hunyuan, _ = await register_hunyuan(admin_token, fake.origin, secret="not-the-secret-key-1234")
        slug = await create_tool(admin_token, [image_to_3d_step(hunyuan)])
        user = await new_user(admin_token, extra_credits=100)
        await until_balance(user, lambda b: b["balance"] == 150)
        image = await upload(user["token"], png(160, 160))

        status, task = await start_task(
            user, {"toolSlug": slug, "input": {"imageAssetId": image, "provider": {"name": hunyuan}}}
        )
        assert status == 202, task
        done = await until_task(user, task["id"])

        assert done["status"] == "failed", done
        assert fake.submitted == []
        await until_balance(user, lambda b: b["balance"] == 150 and b["reserved_balance"] == 0)
