"""The fal adapter running the studio's utility models (`studio-utility` steps) against the fake fal.ai queue
API (tests/fakes/fal_api.py, a real HTTP server on localhost): what it sends (the one image, the prompt only
where the model takes it, the upscaler's numbers) and what comes back (an image really upscaled, a cut-out
really transparent)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from funmagic_providers.adapters.apis.fal_queue import FalQueue
from funmagic_providers.domain.errors import InvalidStepInput, UnsupportedStep
from funmagic_providers.domain.steps import STUDIO_UTILITY, InputFile, ProviderAccess, StepCall

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "fakes"))

from fal_api import FakeFal

KEY = "fal-key-id:fal-key-secret"


def subject_png() -> bytes:
    image = Image.new("RGB", (40, 30), (255, 255, 255))
    image.paste((200, 20, 20), (10, 10, 30, 20))
    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


async def no_progress(percent: int, message: str) -> None:
    return None


@pytest.fixture
async def fal() -> AsyncIterator[tuple[FalQueue, FakeFal]]:
    async with FakeFal(api_key=KEY, polls_until_done=1) as fake, aiohttp.ClientSession() as http:
        yield FalQueue(http, poll_interval_seconds=0.01), fake


def utility_call(fake: FakeFal, model: str, *, options: dict | None = None, image: bool = True) -> StepCall:
    inputs = (InputFile("asset-1", "photo.png", "image/png", subject_png()),) if image else ()
    return StepCall(
        task_id="reply-1", user_id="admin-1", step_id="reply", step_type=STUDIO_UTILITY, model=model,
        prompt="crisp details", options=options or {}, inputs=inputs,
        provider=ProviderAccess("fal", "fal", fake.url, KEY),
    )  # fmt: skip


def submitted(fake: FakeFal) -> list[dict]:
    return [r.json for r in fake.requests if r.endpoint == "submit"]


async def test_the_upscaler_gets_the_image_the_prompt_and_its_numbers_and_answers_larger(fal) -> None:
    adapter, fake = fal
    step = utility_call(fake, "fal-ai/clarity-upscaler", options={"upscale_factor": 3.0, "creativity": 0.5})

    result = await adapter.run(step, no_progress)

    (body,) = submitted(fake)
    assert body["image_url"].startswith("data:image/png;base64,")
    assert (body["prompt"], body["upscale_factor"], body["creativity"]) == ("crisp details", 3.0, 0.5)
    (file,) = result.files
    assert (file.role, file.filename, file.content_type) == ("image", "upscaled.png", "image/png")
    assert Image.open(BytesIO(file.data)).size == (120, 90)


async def test_bria_gets_the_image_alone_and_answers_a_transparent_cut_out(fal) -> None:
    adapter, fake = fal

    result = await adapter.run(utility_call(fake, "fal-ai/bria/background/remove"), no_progress)

    assert submitted(fake) == [{"image_url": submitted(fake)[0]["image_url"]}]  # no prompt, no options
    cut_out = Image.open(BytesIO(result.files[0].data))
    assert cut_out.mode == "RGBA"
    assert cut_out.getpixel((0, 0))[3] == 0
    assert cut_out.getpixel((20, 15)) == (200, 20, 20, 255)


async def test_what_the_studio_utility_refuses_never_reaches_fal(fal) -> None:
    adapter, fake = fal

    with pytest.raises(InvalidStepInput):
        await adapter.run(utility_call(fake, "fal-ai/clarity-upscaler", image=False), no_progress)
    with pytest.raises(InvalidStepInput):
        await adapter.run(
            utility_call(fake, "fal-ai/clarity-upscaler", options={"upscale_factor": 9}), no_progress
        )
    with pytest.raises(UnsupportedStep):
        await adapter.run(utility_call(fake, "fal-ai/flux/dev"), no_progress)
    assert submitted(fake) == []
