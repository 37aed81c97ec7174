"""Tests of the fake Gemini API over real HTTP: what it refuses as the real API does (key, model, image
config values, roles that do not alternate), what it answers (text and a PNG whose proportions follow
aspectRatio and whose size follows imageSize) and its faults (429 with Retry-After, 500)."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from faults import Fault
from gemini_api import ASPECT_RATIOS, FakeGemini, image_size_of

KEY = "AIza-test-key-0001"
MODEL = "gemini-2.5-flash-image"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def body(*turns: tuple[str, str], **image_config: str) -> dict[str, Any]:
    config: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    return {
        "contents": [{"role": role, "parts": [{"text": text}]} for role, text in turns],
        "generationConfig": config,
    }


async def generate(
    fake: FakeGemini, http: aiohttp.ClientSession, payload: dict[str, Any], *, model: str = MODEL,
    key: str = KEY,
) -> tuple[int, dict[str, Any], Any]:  # fmt: skip
    url = f"{fake.url}/v1beta/models/{model}:generateContent"
    async with http.post(url, json=payload, headers={"x-goog-api-key": key}) as response:
        return response.status, dict(response.headers), await response.json()


async def test_a_prompt_gets_text_and_a_png_shaped_by_the_image_config(fake, http) -> None:
    payload = body(("user", "a fox"), aspectRatio="16:9", imageSize="2K")
    status, _, answer = await generate(fake, http, payload)
    assert status == 200
    parts = answer["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "Here is a fox"}
    image = Image.open(io.BytesIO(base64.b64decode(parts[1]["inlineData"]["data"])))
    assert (image.format, parts[1]["inlineData"]["mimeType"]) == ("PNG", "image/png")
    assert image.size == (128, 72)  # 2K's 2048 px / 16, at 16:9
    assert answer["usageMetadata"]["totalTokenCount"] > 0
    assert answer["responseId"]


def test_every_ratio_gives_its_proportions_and_sizes_scale() -> None:
    for ratio in ASPECT_RATIOS:
        w, h = (int(n) for n in ratio.split(":"))
        width, height = image_size_of(ratio, "4K")
        assert max(width, height) == 256
        assert abs(width / height - w / h) < 0.03, ratio
    assert image_size_of(None, None) == (64, 64)


async def test_history_must_alternate_and_end_with_the_user(fake, http) -> None:
    ok = body(("user", "a fox"), ("model", "Here is a fox"), ("user", "now in snow"))
    assert (await generate(fake, http, ok))[0] == 200
    assert fake.generated[-1]["contents"][0]["parts"][0]["text"] == "a fox"
    for turns in (
        (("user", "a"), ("user", "b")),
        (("model", "a"), ("user", "b")),
        (("user", "a"), ("model", "b")),
        (("user", "a"), ("assistant", "b"), ("user", "c")),
    ):
        status, _, answer = await generate(fake, http, body(*turns))
        assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT"), turns


@pytest.mark.parametrize(
    ("config", "word"), [({"aspectRatio": "5:3"}, "aspect ratio"), ({"imageSize": "8K"}, "image size")]
)
async def test_image_config_values_outside_the_api_are_refused(fake, http, config, word) -> None:
    status, _, answer = await generate(fake, http, body(("user", "a fox"), **config))
    assert status == 400
    assert word in answer["error"]["message"]
    assert fake.generated == []


async def test_the_key_and_the_model_are_checked(fake, http) -> None:
    status, _, answer = await generate(fake, http, body(("user", "a fox")), key="AIza-wrong")
    assert (status, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert "API key not valid" in answer["error"]["message"]
    status, _, answer = await generate(fake, http, body(("user", "a fox")), model="gemini-9-ultra")
    assert (status, answer["error"]["status"]) == (404, "NOT_FOUND")


async def test_user_images_must_be_real_images(fake, http) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    good = base64.b64encode(buffer.getvalue()).decode()
    payload = body(("user", "make it red"))
    payload["contents"][0]["parts"].append({"inlineData": {"mimeType": "image/png", "data": good}})
    assert (await generate(fake, http, payload))[0] == 200
    payload["contents"][0]["parts"][1]["inlineData"]["data"] = base64.b64encode(b"nope").decode()
    assert (await generate(fake, http, payload))[0] == 400


async def test_faults_answer_429_with_retry_after_and_500_in_googles_shape(fake, http) -> None:
    fake.faults.queue("generate", Fault.rate_limited(retry_after=7), Fault.server_error())
    status, headers, answer = await generate(fake, http, body(("user", "a fox")))
    assert (status, headers["Retry-After"], answer["error"]["status"]) == (429, "7", "RESOURCE_EXHAUSTED")
    status, _, answer = await generate(fake, http, body(("user", "a fox")))
    assert (status, answer["error"]["code"], answer["error"]["status"]) == (500, 500, "INTERNAL")
    assert (await generate(fake, http, body(("user", "a fox"))))[0] == 200


async def test_a_blocked_prompt_has_no_candidates(fake, http) -> None:
    status, _, answer = await generate(fake, http, body(("user", "something blocked")))
    assert status == 200
    assert "candidates" not in answer
    assert answer["promptFeedback"]["blockReason"] == "SAFETY"
