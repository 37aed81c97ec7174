"""The Images adapter against the fake OpenAI server (in-process, no stack): a styled edit sends the style
reference's image and then the user's, as repeated `image[]` parts in that order (the original's
`images.edit` with [style image, user image]); without a style, the user's image alone; without an input,
a generation. The fake refuses what the real API refuses, and the adapter says so in the step policy's
terms."""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from funmagic_providers.adapters.apis.openai_images import OpenAIImages
from funmagic_providers.domain.errors import ProviderRejected
from funmagic_providers.domain.steps import InputFile, ProviderAccess, StepCall

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "fakes"))

from openai_api import FakeOpenAI

KEY = "sk-test-images-adapter-0001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


def png(colour: tuple[int, int, int], size: tuple[int, int] = (16, 12)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


STYLE = InputFile("style-asset", "style.png", "image/png", png((0, 0, 200)))
PHOTO = InputFile("photo-asset", "photo.png", "image/png", png((200, 0, 0), (20, 20)))


def image_call(
    fake: FakeOpenAI,
    *,
    inputs: tuple[InputFile, ...] = (),
    references: tuple[InputFile, ...] = (),
    model: str = "gpt-image-1",
) -> StepCall:
    return StepCall(
        task_id="task-1", user_id="user-1", step_id="gen", step_type="image-gen", model=model,
        prompt="Transform into anime style", options={}, inputs=inputs,
        provider=ProviderAccess("openai", "openai", fake.url, KEY), references=references,
    )  # fmt: skip


async def no_progress(percent: int, message: str) -> None:
    return None


async def run(call: StepCall):
    return await OpenAIImages(timeout_seconds=10).run(call, no_progress)


def digest(file: InputFile) -> str:
    return hashlib.sha256(file.data).hexdigest()


async def test_a_styled_edit_sends_the_style_image_then_the_users_image(fake: FakeOpenAI) -> None:
    result = await run(image_call(fake, inputs=(PHOTO,), references=(STYLE,)))

    (edit,) = fake.edits
    assert edit.prompt == "Transform into anime style"
    assert [(image.field, image.sha256) for image in edit.images] == [
        ("image[]", digest(STYLE)),
        ("image[]", digest(PHOTO)),
    ]
    assert [r.path for r in fake.requests] == ["/v1/images/edits"]
    assert result.metadata == {"size": "1024x1024", "referenceAssetIds": ["style-asset"]}
    assert Image.open(io.BytesIO(result.files[0].data)).format == "PNG"


async def test_an_edit_without_a_style_sends_the_users_image_alone(fake: FakeOpenAI) -> None:
    result = await run(image_call(fake, inputs=(PHOTO,)))

    (edit,) = fake.edits
    assert [(image.field, image.sha256) for image in edit.images] == [("image", digest(PHOTO))]
    assert result.metadata == {"size": "1024x1024"}


async def test_without_an_input_it_generates_from_the_prompt(fake: FakeOpenAI) -> None:
    await run(image_call(fake))

    assert [r.path for r in fake.requests] == ["/v1/images/generations"]
    assert fake.edits == []


async def test_what_the_api_refuses_is_a_rejection(fake: FakeOpenAI) -> None:
    # dall-e-2 edits take one image: a style image and a photo are refused with a 400, as OpenAI does.
    with pytest.raises(ProviderRejected) as caught:
        await run(image_call(fake, inputs=(PHOTO,), references=(STYLE,), model="dall-e-2"))

    assert "(400)" in str(caught.value)
    (edit,) = fake.edits
    assert len(edit.images) == 2
