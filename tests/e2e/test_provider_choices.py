"""The provider picker end to end, through the gateway only: an Image to 3D tool whose `3d-gen` step runs on
the built-in provider by default and lets users choose a Tripo provider (at the fake Tripo server) with a
model version, a face limit and PBR. A choice runs on the chosen provider with the chosen options (the fake
sees them); a choice the step does not allow is refused with its name (422); no choice runs the default."""

from __future__ import annotations

import uuid

from clients import bearer, browser, call, png, upload
from test_tasks import create_tool, get_task, new_user, start_task, until_task
from tripo_api import FakeTripo

TRIPO_KEY = "tsk_e2e_choice_" + uuid.uuid4().hex


async def register_tripo(admin_token: str, base_url: str) -> str:
    name = f"tripo-{uuid.uuid4().hex[:10]}"
    body = {"name": name, "type": "tripo", "base_url": base_url, "api_key": TRIPO_KEY, "config": {}}
    async with browser() as client:
        status, created, _ = await call(
            client, "POST", "/api/admin/providers", json=body, headers=bearer(admin_token)
        )
    assert status == 201, created
    return name


def image_to_3d_step(tripo: str) -> dict:
    return {
        "id": "3d-gen", "name": "3D model", "type": "3d-gen", "cost": 30,
        "provider": {"name": "local", "model": "default", "options": {}},
        "input": {"image": "required", "prompt": "none"},
        "choices": [
            {"provider": "local", "label": "Built-in"},
            {"provider": tripo, "label": "Tripo", "models": ["v2.5-20250123", "v3.0-20250812"],
             "options": {"face_limit": {"type": "integer", "min": 1000, "max": 50000},
                         "pbr": {"type": "boolean", "default": True}}},
        ],
    }  # fmt: skip


async def test_a_user_chooses_the_provider_and_its_options_per_request(
    platform, seeded_tools, admin_token
) -> None:
    async with FakeTripo(api_key=TRIPO_KEY, polls_until_done=1) as fake:
        tripo = await register_tripo(admin_token, fake.url)
        slug = await create_tool(admin_token, [image_to_3d_step(tripo)], pipeline=False)
        async with browser() as client:
            status, tool, _ = await call(client, "GET", f"/api/tools/{slug}")
        assert status == 200, tool
        shown = tool["config"]["steps"][0]["choices"]
        assert [(c["provider"], c["label"], c["default"]) for c in shown] == [
            ("local", "Built-in", True), (tripo, "Tripo", False),
        ]  # fmt: skip
        face_limit = {k: v for k, v in shown[1]["options"]["face_limit"].items() if v is not None}
        assert face_limit == {"type": "integer", "min": 1000, "max": 50000}

        user = await new_user(admin_token, extra_credits=100)
        image = await upload(user["token"], png(64, 64))

        # Tripo, chosen with a model version, a face limit and no PBR: the fake Tripo gets them.
        pick = {"name": tripo, "model": "v3.0-20250812", "options": {"face_limit": 12000, "pbr": False}}
        status, task = await start_task(
            user, {"toolSlug": slug, "input": {"imageAssetId": image, "provider": pick}}
        )
        assert status == 202, task
        done = await until_task(user, task["id"])
        assert done["status"] == "completed", done
        (sent,) = fake.tasks.values()
        assert (sent.input["model_version"], sent.input["face_limit"], sent.input["pbr"]) == (
            "v3.0-20250812", 12000, False,
        )  # fmt: skip
        assert done["payload"]["input"]["provider"] == pick  # stored with the task, shown in its detail
        assert {a["role"] for a in done["payload"]["output"]["assets"]} >= {"model"}

        # Not allowed: a provider the step does not offer, an option out of range, one it does not offer.
        refusals = [
            ({"name": "openai"}, "provider_not_allowed", "input.provider.name"),
            ({"name": tripo, "model": "v1"}, "model_not_allowed", "input.provider.model"),
            (
                {"name": tripo, "options": {"face_limit": 10}},
                "option_out_of_range",
                "input.provider.options.face_limit",
            ),
            ({"name": "local", "options": {"pbr": True}}, "option_not_allowed", "input.provider.options.pbr"),
        ]
        for refused, code, field in refusals:
            body = {"toolSlug": slug, "input": {"imageAssetId": image, "provider": refused}}
            status, problem = await start_task(user, body)
            assert status == 422, problem
            assert (problem["code"], problem.get("field")) == (code, field), problem

        # No choice: the step's own provider (the built-in one) runs it; Tripo sees nothing new.
        status, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
        assert status == 202, task
        done = await until_task(user, task["id"])
        assert done["status"] == "completed", done
        assert len(fake.tasks) == 1
        status, detail = await get_task(user, task["id"])
        assert "provider" not in detail["payload"]["input"]
