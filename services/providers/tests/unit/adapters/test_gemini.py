"""The Gemini adapter against the fake Gemini API (tests/fakes/gemini_api.py, a real HTTP server on
localhost): what it sends (the key header, the history before this turn, the user's images, the image
config), what it makes of the answer (the text, a PNG with the asked proportions) and how Google's errors
become the step policy's."""

from __future__ import annotations

import base64
import json
import random
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from io import BytesIO
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from funmagic_providers.adapters.apis.gemini import Gemini
from funmagic_providers.adapters.apis.recorded_http import ContextCallRecorder, provider_session
from funmagic_providers.domain.errors import (
    BadProviderResponse,
    InvalidStepInput,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    UnsupportedStep,
)
from funmagic_providers.domain.steps import STUDIO_CHAT, InputFile, ProviderAccess, StepCall

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "fakes"))

from faults import Fault
from gemini_api import FakeGemini

KEY = "AIza-test-key-0001"
MODEL = "gemini-2.5-flash-image"


def photo_png() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png() -> bytes:
    """Big enough that its base64 looks like a file (short runs are kept as ids would be)."""
    buffer = BytesIO()
    pixels = random.Random(7).randbytes(32 * 32 * 3)
    Image.frombytes("RGB", (32, 32), pixels).save(buffer, "PNG")
    return buffer.getvalue()


async def no_progress(percent: int, message: str) -> None:
    return None


@pytest.fixture
async def gemini() -> AsyncIterator[tuple[Gemini, FakeGemini]]:
    async with FakeGemini(api_key=KEY) as fake, aiohttp.ClientSession() as http:
        yield Gemini(http), fake


def image_call(
    fake: FakeGemini, prompt: str = "a lighthouse", *, options: dict[str, Any] | None = None,
    image: bool = False, key: str = KEY, step_type: str = "image-gen",
) -> StepCall:  # fmt: skip
    inputs = (InputFile("asset-1", "photo.png", "image/png", photo_png()),) if image else ()
    return StepCall(
        task_id="reply-1", user_id="admin-1", step_id="reply", step_type=step_type, model=MODEL,
        prompt=prompt, options=options or {}, inputs=inputs,
        provider=ProviderAccess("gemini", "gemini", fake.origin, key),
    )  # fmt: skip


async def test_a_reply_has_the_text_and_an_image_of_the_asked_ratio(gemini) -> None:
    adapter, fake = gemini
    result = await adapter.run(
        image_call(fake, options={"aspectRatio": "16:9", "imageSize": "2K"}), no_progress
    )
    sent = fake.generated[-1]
    assert sent["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
    }
    assert sent["contents"] == [{"role": "user", "parts": [{"text": "a lighthouse"}]}]
    assert fake.requests[-1].headers["x-goog-api-key"] == KEY
    assert result.metadata["text"] == "Here is a lighthouse"
    assert result.metadata["usage"]["totalTokens"] == 1302
    assert result.provider_request_id
    (file,) = result.files
    assert (file.role, file.content_type) == ("image", "image/png")
    assert Image.open(BytesIO(file.data)).size == (128, 72)


async def test_the_history_goes_before_this_turn_alternating_and_text_only(gemini) -> None:
    adapter, fake = gemini
    history = [
        {"role": "model", "text": "a model turn first is dropped"},
        {"role": "user", "text": "a fox"},
        {"role": "model", "text": "Here is a fox"},
        {"role": "user", "text": "a prompt whose reply failed"},
        {"role": "user", "text": "a fox in snow"},
        {"role": "model", "text": ""},  # an image-only answer: nothing to send back
        {"role": "model", "text": "Here is a fox in snow"},
        {"role": "user", "text": "a last prompt without answer"},
    ]
    await adapter.run(image_call(fake, "now at night", options={"history": history}, image=True), no_progress)
    contents = fake.generated[-1]["contents"]
    assert [(c["role"], c["parts"][0]["text"]) for c in contents] == [
        ("user", "a fox"),
        ("model", "Here is a fox"),
        ("user", "a fox in snow"),
        ("model", "Here is a fox in snow"),
        ("user", "now at night"),
    ]
    image_part = contents[-1]["parts"][1]["inlineData"]
    assert image_part["mimeType"] == "image/png"
    assert base64.b64decode(image_part["data"]) == photo_png()


async def test_an_earlier_turns_images_go_back_with_its_text_and_unknown_ones_are_left_out(gemini) -> None:
    adapter, fake = gemini
    earlier = InputFile("asset-earlier", "fox.png", "image/png", photo_png())
    history = [
        {"role": "user", "text": "this fox", "images": ["asset-earlier", "asset-not-read"]},
        {"role": "model", "text": "Here is the fox, restyled"},
    ]
    call = image_call(fake, "now at night", options={"history": history})
    call = StepCall(**{**call.__dict__, "history_inputs": (earlier,)})

    await adapter.run(call, no_progress)

    first = fake.generated[-1]["contents"][0]
    assert first["role"] == "user"
    assert [list(part) for part in first["parts"]] == [["text"], ["inlineData"]]
    assert base64.b64decode(first["parts"][1]["inlineData"]["data"]) == photo_png()


async def test_options_outside_the_api_are_refused_before_calling(gemini) -> None:
    adapter, fake = gemini
    with pytest.raises(InvalidStepInput):
        await adapter.run(image_call(fake, options={"aspectRatio": "5:3"}), no_progress)
    with pytest.raises(InvalidStepInput):
        await adapter.run(image_call(fake, options={"imageSize": "8K"}), no_progress)
    with pytest.raises(InvalidStepInput):
        await adapter.run(image_call(fake, prompt=" "), no_progress)
    with pytest.raises(UnsupportedStep):
        await adapter.run(image_call(fake, step_type=STUDIO_CHAT), no_progress)
    assert fake.requests == []


async def test_googles_errors_become_the_policys(gemini) -> None:
    adapter, fake = gemini
    fake.faults.queue("generate", Fault.rate_limited(retry_after=7), Fault.server_error(503))
    with pytest.raises(ProviderRateLimited) as limited:
        await adapter.run(image_call(fake), no_progress)
    assert limited.value.retry_after == 7
    with pytest.raises(ProviderUnavailable):
        await adapter.run(image_call(fake), no_progress)
    with pytest.raises(ProviderRejected) as refused:
        await adapter.run(image_call(fake, key="AIza-wrong-key-9999"), no_progress)
    assert refused.value.code == "provider_auth_failed"
    with pytest.raises(ProviderRejected) as blocked:
        await adapter.run(image_call(fake, "something blocked"), no_progress)
    assert blocked.value.code == "content_policy"


async def test_a_retry_delay_in_the_error_details_is_the_hint(gemini) -> None:
    adapter, fake = gemini
    body = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "31s"},
    ]}}  # fmt: skip
    fake.faults.queue("generate", Fault.error(429, body))
    with pytest.raises(ProviderRateLimited) as limited:
        await adapter.run(image_call(fake), no_progress)
    assert limited.value.retry_after == 31


async def test_an_answer_without_content_is_a_bad_response(gemini) -> None:
    adapter, fake = gemini
    fake.faults.queue("generate", Fault.bad_payload())
    with pytest.raises(BadProviderResponse):
        await adapter.run(image_call(fake), no_progress)


async def test_health_is_the_key_listing_the_models(gemini) -> None:
    adapter, fake = gemini
    assert (await adapter.check_health(ProviderAccess("g", "gemini", fake.origin, KEY))).healthy
    report = await adapter.check_health(ProviderAccess("g", "gemini", fake.origin, "AIza-wrong-key-9999"))
    assert not report.healthy
    assert "refused" in (report.error or "")


async def test_the_call_is_recorded_with_images_redacted_and_no_part_of_the_key() -> None:
    async with FakeGemini(api_key=KEY) as fake, provider_session(10) as http:
        with ContextCallRecorder().record() as calls:
            step = replace(
                image_call(fake, options={"imageSize": "4K"}),
                inputs=(InputFile("asset-1", "noise.png", "image/png", noise_png()),),
            )
            result = await Gemini(http).run(step, no_progress)

    assert result.files[0].data.startswith(b"\x89PNG")
    (recorded,) = calls
    assert (recorded.method, recorded.status) == ("POST", 200)
    assert recorded.url == f"{fake.origin}/v1beta/models/{MODEL}:generateContent"
    sent = recorded.request_body
    assert isinstance(sent, dict)
    assert sent["contents"][0]["parts"][1]["inlineData"]["data"].startswith("<redacted")
    answer = recorded.response_body
    assert isinstance(answer, dict)
    assert answer["candidates"][0]["content"]["parts"][1]["inlineData"]["data"].startswith("<redacted")
    assert KEY not in json.dumps([sent, answer, dict(recorded.request_ids)])
