"""The Replicate adapter running VGGT (`point-cloud` steps) against the fake Replicate API
(tests/fakes/replicate_api.py, a real HTTP server on localhost): what it sends, the PLY it makes from what
comes back, progress, cancelling, and Replicate's errors mapped to the step policy's."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image

from funmagic_kit.testing import wait_until
from funmagic_providers.adapters.apis.recorded_http import ContextCallRecorder, provider_session
from funmagic_providers.adapters.apis.replicate import VGGT_VERSION, Replicate
from funmagic_providers.adapters.vggt_points import confidence_of
from funmagic_providers.domain.errors import (
    BadProviderResponse,
    InvalidStepInput,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    UnsupportedStep,
)
from funmagic_providers.domain.steps import InputFile, ProviderAccess, StepCall

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "fakes"))

from faults import Fault
from replicate_api import GRID, FakeReplicate, vggt_point_map

KEY = "r8_unit_test_token_0001"
PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
     ("confidence", "<f4")]
)  # fmt: skip


def subject_png() -> bytes:
    image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    image.paste((200, 20, 20, 255), (10, 5, 30, 25))
    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class Progress:
    def __init__(self) -> None:
        self.reported: list[tuple[int, str]] = []

    async def __call__(self, percent: int, message: str) -> None:
        self.reported.append((percent, message))


@pytest.fixture
async def replicate() -> AsyncIterator[tuple[Replicate, FakeReplicate]]:
    async with FakeReplicate(api_key=KEY, polls_until_done=3) as fake, provider_session(10) as http:
        yield Replicate(http, poll_interval_seconds=0.01), fake


def point_cloud_call(fake: FakeReplicate, *, options: dict | None = None, key: str = KEY,
                     step_type: str = "point-cloud", image: bytes | None = None) -> StepCall:  # fmt: skip
    inputs = (InputFile("asset-1", "cutout.png", "image/png", image or subject_png()),)
    return StepCall(
        task_id="task-1", user_id="user-1", step_id="vggt", step_type=step_type, model=VGGT_VERSION,
        prompt=None, options=options or {}, inputs=inputs,
        provider=ProviderAccess("replicate", "replicate", fake.url, key),
    )  # fmt: skip


def created(fake: FakeReplicate) -> list[dict]:
    return [r.json for r in fake.requests if r.endpoint == "create"]


async def test_vggt_runs_and_the_ply_carries_its_points_and_confidences(replicate) -> None:
    adapter, fake = replicate
    progress = Progress()
    result = await adapter.run(point_cloud_call(fake, options={"sampling_rate": 2}), progress)
    (body,) = created(fake)
    assert body["version"] == VGGT_VERSION
    inputs = body["input"]
    assert inputs["pcd_source"] == "point_head"
    assert (inputs["return_pcd"], inputs["to_base64"], inputs["sampling_rate"]) == (True, True, 2)
    assert base64.b64decode(inputs["images"][0].partition(",")[2]) == subject_png()
    (file,) = result.files
    assert (file.role, file.content_type) == ("point_cloud", "application/x-ply")
    header, _, data = file.data.partition(b"end_header\n")
    vertices = np.frombuffer(data, dtype=PLY_VERTEX)
    height, width = GRID
    assert result.metadata == {"pointCount": height * width, "dimensions": {"height": height, "width": width}}
    assert f"element vertex {height * width}".encode() in header
    _, sent_conf = vggt_point_map(subject_png())
    np.testing.assert_allclose(vertices["confidence"], confidence_of(sent_conf).reshape(-1), atol=1e-6)
    assert result.provider_request_id in fake.predictions
    percents = [p for p, _ in progress.reported]
    assert percents == sorted(percents)
    assert (percents[0], percents[-1]) == (15, 85)
    assert any(30 <= p <= 80 for p in percents)  # a step from the processing polls' logs


async def test_the_calls_are_recorded_with_the_token_redacted(replicate) -> None:
    adapter, fake = replicate
    with ContextCallRecorder().record() as calls:
        await adapter.run(point_cloud_call(fake), Progress())
    methods = [(call.method, call.url.rsplit("/", 1)[-1]) for call in calls]
    assert methods[0] == ("POST", "predictions")
    assert sum(1 for method, _ in methods if method == "GET") >= 4  # polls and the point map file
    assert all(KEY not in str(call) for call in calls)


async def test_cancelling_the_step_cancels_the_prediction(replicate) -> None:
    adapter, fake = replicate
    fake.polls_until_done = 100_000
    running = asyncio.create_task(adapter.run(point_cloud_call(fake), Progress()))

    async def polled() -> bool:
        return any(r.endpoint == "get" for r in fake.requests)

    await wait_until(polled, timeout=10, what="a poll of the prediction", interval=0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert fake.cancelled == list(fake.predictions)


async def test_a_model_named_owner_name_version_runs_that_version(replicate) -> None:
    adapter, fake = replicate
    fake.polls_until_done = 0
    named = replace(point_cloud_call(fake), model=f"vufinder/vggt-1b:{VGGT_VERSION}")
    await adapter.run(named, Progress())
    assert [body["version"] for body in created(fake)] == [VGGT_VERSION]


async def test_a_429_is_rate_limited_with_its_retry_after(replicate) -> None:
    adapter, fake = replicate
    fake.faults.queue("create", Fault.rate_limited(retry_after=7))
    with pytest.raises(ProviderRateLimited) as raised:
        await adapter.run(point_cloud_call(fake), Progress())
    assert raised.value.retry_after == 7


async def test_a_5xx_while_polling_is_unavailable(replicate) -> None:
    adapter, fake = replicate
    fake.faults.queue("get", Fault.server_error(503))
    with pytest.raises(ProviderUnavailable):
        await adapter.run(point_cloud_call(fake), Progress())


async def test_a_failed_prediction_is_rejected_with_its_error(replicate) -> None:
    adapter, fake = replicate
    fake.fail_predictions = True
    with pytest.raises(ProviderRejected, match="CUDA out of memory"):
        await adapter.run(point_cloud_call(fake), Progress())


async def test_a_refused_token_is_an_auth_failure(replicate) -> None:
    adapter, fake = replicate
    with pytest.raises(ProviderRejected) as raised:
        await adapter.run(point_cloud_call(fake, key="r8_wrong"), Progress())
    assert raised.value.code == "provider_auth_failed"


async def test_an_unusable_point_map_is_a_bad_response(replicate) -> None:
    adapter, fake = replicate
    fake.faults.queue("file", Fault.bad_payload())
    with pytest.raises(BadProviderResponse):
        await adapter.run(point_cloud_call(fake), Progress())


async def test_other_steps_and_missing_or_odd_inputs_are_refused(replicate) -> None:
    adapter, fake = replicate
    with pytest.raises(UnsupportedStep):
        await adapter.run(point_cloud_call(fake, step_type="3d-gen"), Progress())
    odd = StepCall(
        task_id="t", user_id="u", step_id="s", step_type="point-cloud", model="default", prompt=None,
        options={}, inputs=(InputFile("a", "x.gif", "image/gif", b"GIF89a"),),
        provider=ProviderAccess("replicate", "replicate", fake.url, KEY),
    )  # fmt: skip
    with pytest.raises(InvalidStepInput):
        await adapter.run(odd, Progress())
    assert not created(fake)


async def test_the_health_check_asks_for_the_account(replicate) -> None:
    adapter, fake = replicate
    assert (await adapter.check_health(ProviderAccess("r", "replicate", fake.url, KEY))).healthy
    assert not (await adapter.check_health(ProviderAccess("r", "replicate", fake.url, "r8_bad"))).healthy


async def test_an_unreachable_replicate_is_unavailable() -> None:
    async with aiohttp.ClientSession() as http:
        adapter = Replicate(http, poll_interval_seconds=0.01)
        call = StepCall(
            task_id="t", user_id="u", step_id="s", step_type="point-cloud", model="default", prompt=None,
            options={}, inputs=(InputFile("a", "x.png", "image/png", subject_png()),),
            provider=ProviderAccess("replicate", "replicate", "http://127.0.0.1:9/v1", KEY),
        )  # fmt: skip
        with pytest.raises(ProviderUnavailable):
            await adapter.run(call, Progress())
