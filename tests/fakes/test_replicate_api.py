"""Tests of the fake Replicate predictions API (VGGT), over real HTTP."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from faults import Fault
from replicate_api import GRID, VGGT_VERSION, FakeReplicate, vggt_point_map

KEY = "r8_funmagic_test_0001"
OTHER_KEY = "r8_someone_else_0002"


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate(api_key=KEY, extra_keys=[OTHER_KEY], polls_until_done=3) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def image_uri(colour: tuple[int, int, int] = (200, 40, 40)) -> str:
    buffer = io.BytesIO()
    picture = Image.new("RGB", (32, 24), colour)
    picture.paste((20, 20, 20), (0, 0, 16, 12))
    picture.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def body(**input_: Any) -> dict[str, Any]:
    return {"version": VGGT_VERSION, "input": {"images": [image_uri()], "pcd_source": "point_head",
                                               "return_pcd": True, "to_base64": True, **input_}}  # fmt: skip


async def create(http: aiohttp.ClientSession, fake: FakeReplicate, payload: Any, key: str = KEY):
    async with http.post(f"{fake.url}/predictions", json=payload, headers=auth(key)) as response:
        return response.status, await response.json(), response.headers


async def get(http: aiohttp.ClientSession, url: str, key: str = KEY) -> tuple[int, dict[str, Any]]:
    async with http.get(url, headers=auth(key)) as response:
        return response.status, await response.json()


async def test_a_prediction_starts_processes_and_succeeds_with_a_point_map(fake, http) -> None:
    status, prediction, _ = await create(http, fake, body())
    assert status == 201
    assert prediction["status"] == "starting"
    assert prediction["output"] is None
    seen = []
    for _ in range(4):
        status, polled = await get(http, prediction["urls"]["get"])
        assert status == 200
        seen.append(polled["status"])
    assert seen == ["starting", "processing", "processing", "succeeded"]
    assert polled["logs"].count("\n") == 2
    (file_url,) = polled["output"]["data"]
    async with http.get(file_url) as response:  # like replicate.delivery: no auth
        assert response.status == 200
        data = await response.json()
    points = np.frombuffer(base64.b64decode(data["world_points"]["data"]), "<f4")
    conf = np.frombuffer(base64.b64decode(data["world_points_conf"]["data"]), "<f4")
    assert data["world_points"]["shape"] == [*GRID, 3]
    assert data["world_points_conf"]["shape"] == list(GRID)
    uri = image_uri()
    expected_points, expected_conf = vggt_point_map(base64.b64decode(uri.partition(",")[2]))
    assert np.array_equal(points.reshape(*GRID, 3), expected_points)
    assert np.array_equal(conf.reshape(GRID), expected_conf)
    assert conf.min() >= 1.0
    # The dark top-left quarter is nearer (z smaller) and less confident than the bright rest.
    assert expected_points[0, 0, 2] < expected_points[-1, -1, 2]
    assert expected_conf[0, 0] < expected_conf[-1, -1]


async def test_without_to_base64_the_tensors_are_nested_lists(fake, http) -> None:
    fake.polls_until_done = 0
    _, prediction, _ = await create(http, fake, body(to_base64=False))
    assert prediction["status"] == "succeeded"
    async with http.get(prediction["output"]["data"][0]) as response:
        data = await response.json()
    assert np.asarray(data["world_points"]).shape == (*GRID, 3)


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"version": "0" * 64, "input": {"images": [image_uri()]}}, 422),
        ({"version": VGGT_VERSION, "input": {"images": ["https://example.com/a.png"]}}, 422),
        ({"version": VGGT_VERSION, "input": {"images": ["data:image/png;base64,bm90IGFuIGltYWdl"]}}, 422),
        ({"version": VGGT_VERSION, "input": {"image": image_uri()}}, 422),
        ({"version": VGGT_VERSION, "input": {"images": [image_uri()], "return_pcd": "yes"}}, 422),
        ({"version": VGGT_VERSION}, 422),
    ],
)
async def test_bad_inputs_are_refused(fake, http, payload, status) -> None:
    answered, problem, _ = await create(http, fake, payload)
    assert answered == status
    assert problem["status"] == status
    assert problem["detail"]


async def test_the_token_is_checked_and_predictions_belong_to_their_token(fake, http) -> None:
    answered, problem, _ = await create(http, fake, body(), key="r8_wrong")
    assert answered == 401
    assert problem["title"] == "Unauthenticated"
    _, prediction, _ = await create(http, fake, body())
    status, _ = await get(http, prediction["urls"]["get"], key=OTHER_KEY)
    assert status == 404
    async with http.get(f"{fake.url}/account", headers=auth()) as response:
        assert response.status == 200


async def test_a_cancelled_prediction_reports_canceled_and_is_recorded(fake, http) -> None:
    _, prediction, _ = await create(http, fake, body())
    async with http.post(prediction["urls"]["cancel"], headers=auth()) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "canceled"
    assert fake.cancelled == [prediction["id"]]
    _, polled = await get(http, prediction["urls"]["get"])
    assert polled["status"] == "canceled"
    assert polled["output"] is None


async def test_failed_predictions_carry_an_error(fake, http) -> None:
    fake.fail_predictions = True
    fake.polls_until_done = 0
    _, prediction, _ = await create(http, fake, body())
    assert prediction["status"] == "failed"
    assert prediction["error"]


async def test_faults_answer_429_with_retry_after_and_5xx(fake, http) -> None:
    fake.faults.queue("create", Fault.rate_limited(retry_after=3), Fault.server_error(503))
    status, problem, headers = await create(http, fake, body())
    assert (status, headers["Retry-After"], problem["status"]) == (429, "3", 429)
    status, problem, _ = await create(http, fake, body())
    assert (status, problem["status"]) == (503, 503)
    status, _, _ = await create(http, fake, body())
    assert status == 201
