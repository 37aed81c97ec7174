"""Crystal Memory's point cloud on Replicate (VGGT), end to end through the gateway: a two-step tool
(background removal on the built-in provider, then `point-cloud` on a `replicate` provider row pointing at
the fake Replicate API of tests/fakes). The user gets a PLY whose confidences are the ones the fake sent
(as `1 - 1/conf`, see adapters/vggt_points.py); cancelling the task mid-prediction cancels it at Replicate.
"""

from __future__ import annotations

import uuid

import numpy as np
from clients import bearer, browser, call, download, png, upload
from replicate_api import GRID, VGGT_VERSION, FakeReplicate, vggt_point_map
from test_tasks import create_tool, new_user, start_task, until_task

from funmagic_kit.testing import wait_until

REPLICATE_KEY = "r8_e2e_" + uuid.uuid4().hex
PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
     ("confidence", "<f4")]
)  # fmt: skip


async def register_replicate(admin_token: str, base_url: str) -> str:
    name = f"replicate-{uuid.uuid4().hex[:10]}"
    body = {"name": name, "type": "replicate", "base_url": base_url, "api_key": REPLICATE_KEY, "config": {}}
    async with browser() as client:
        status, created, _ = await call(
            client, "POST", "/api/admin/providers", json=body, headers=bearer(admin_token)
        )
    assert status == 201, created
    return name


def crystal_memory_steps(replicate: str) -> list[dict]:
    return [
        {"id": "background-remove", "name": "Remove background", "type": "remove-bg", "cost": 5,
         "provider": {"name": "local", "model": "default", "options": {}},
         "input": {"image": "required", "prompt": "none"}},
        {"id": "vggt", "name": "Point cloud", "type": "point-cloud", "cost": 15,
         "provider": {"name": replicate, "model": VGGT_VERSION, "options": {"pcd_source": "point_head"}},
         "input": {"image": "optional", "prompt": "none"}},
    ]  # fmt: skip


def ply_vertices(data: bytes) -> tuple[bytes, np.ndarray]:
    header, _, body = data.partition(b"end_header\n")
    return header, np.frombuffer(body, dtype=PLY_VERTEX)


async def test_the_point_cloud_step_runs_on_replicate_and_keeps_vggts_confidences(
    platform, seeded_tools, admin_token
) -> None:
    async with FakeReplicate(api_key=REPLICATE_KEY, polls_until_done=2) as fake:
        replicate = await register_replicate(admin_token, fake.url)
        slug = await create_tool(admin_token, crystal_memory_steps(replicate))
        user = await new_user(admin_token, extra_credits=100)
        image = await upload(user["token"], png(64, 48))
        status, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
        assert status == 202, task
        done = await until_task(user, task["id"])
        assert done["status"] == "completed", done

        (prediction,) = fake.predictions.values()
        assert prediction.input["pcd_source"] == "point_head"
        assert prediction.input["return_pcd"] is True
        cloud = next(a for a in done["payload"]["output"]["assets"] if a["role"] == "point_cloud")
        asset, data = await download(user["token"], cloud["asset_id"])
        assert asset["mime_type"] == "application/x-ply"
        header, vertices = ply_vertices(data)
        height, width = GRID
        assert f"element vertex {height * width}".encode() in header
        assert b"property float confidence" in header
        # The fake computed its map from the image it was sent (the cut-out of step one).
        _, sent_conf = vggt_point_map(prediction.image)
        np.testing.assert_allclose(vertices["confidence"], 1 - 1 / sent_conf.reshape(-1), atol=1e-6)
        assert float(np.abs(np.stack([vertices["x"], vertices["y"], vertices["z"]])).max()) <= 10.0 + 1e-4


async def test_cancelling_the_task_cancels_the_prediction_at_replicate(
    platform, seeded_tools, admin_token
) -> None:
    async with FakeReplicate(api_key=REPLICATE_KEY, polls_until_done=100_000) as fake:
        replicate = await register_replicate(admin_token, fake.url)
        slug = await create_tool(admin_token, [{**crystal_memory_steps(replicate)[1], "input": {
            "image": "required", "prompt": "none"}}])  # fmt: skip
        user = await new_user(admin_token, extra_credits=100)
        image = await upload(user["token"], png(64, 48))
        status, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
        assert status == 202, task

        async def polled() -> bool:
            return any(r.endpoint == "get" for r in fake.requests)

        await wait_until(polled, timeout=60, what="a poll of the prediction", interval=0.05)
        async with browser() as client:
            status, cancelled, _ = await call(
                client, "POST", f"/api/tasks/{task['id']}/cancel", headers=bearer(user["token"])
            )
        assert status == 200, cancelled

        async def cancelled_upstream() -> bool:
            return fake.cancelled == list(fake.predictions)

        await wait_until(cancelled_upstream, timeout=30, what="the prediction's cancel", interval=0.05)
        done = await until_task(user, task["id"])
        assert done["status"] == "cancelled", done
