"""The local provider answering studio replies (offline): its text arrives word by word on the live output
and adds up to the reply's text; asked for an image, it also draws one (a blurred partial image first)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from funmagic_providers.adapters.apis.capabilities import STUDIO_MODELS, studio_models_of
from funmagic_providers.adapters.apis.local import LocalProvider, studio_answer
from funmagic_providers.domain.errors import InvalidStepInput
from funmagic_providers.domain.steps import STUDIO_CHAT, InputFile, ProviderAccess, StepCall


class RecordedLive:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.partials: list[tuple[int, bytes, str]] = []

    async def text_delta(self, text: str) -> None:
        self.text.append(text)

    async def partial_image(self, index: int, data: bytes, content_type: str) -> None:
        self.partials.append((index, data, content_type))


async def no_progress(percent: int, message: str) -> None:
    return None


def studio_call(prompt: str, live: RecordedLive, options: dict | None = None, inputs=()) -> StepCall:
    return StepCall(
        task_id="reply-1", user_id="admin-1", step_id="reply", step_type=STUDIO_CHAT, model="local-chat",
        prompt=prompt, options=options or {}, inputs=tuple(inputs),
        provider=ProviderAccess("local", "local", None, None), live=live,
    )  # fmt: skip


async def test_a_text_reply_is_written_word_by_word_and_repeats_the_prompt() -> None:
    live = RecordedLive()

    result = await LocalProvider().run(studio_call("Tell me about foxes", live), no_progress)

    assert "".join(live.text) == result.metadata["text"]
    assert len(live.text) > 3
    assert "Tell me about foxes" in str(result.metadata["text"])
    assert result.files == ()
    assert result.metadata["responseId"] == result.provider_request_id
    words = len(str(result.metadata["text"]).split())
    assert result.metadata["usage"] == {"inputTokens": 4, "outputTokens": words, "totalTokens": 4 + words}


async def test_asked_for_an_image_it_draws_one_after_a_partial_image() -> None:
    live = RecordedLive()

    result = await LocalProvider().run(
        studio_call("a red fox", live, {"image_generation": {"size": "256x256"}}), no_progress
    )

    ((index, partial, content_type),) = live.partials
    (image,) = result.files
    assert (index, content_type) == (0, "image/png")
    assert Image.open(io.BytesIO(partial)).size == (256, 256)
    assert Image.open(io.BytesIO(image.data)).size == (256, 256)
    assert partial != image.data


async def test_the_answer_counts_quoted_images_and_is_the_same_every_time() -> None:
    quoted = InputFile("asset-1", "a.png", "image/png", b"...")

    first = await LocalProvider().run(
        studio_call("describe this", RecordedLive(), inputs=[quoted]), no_progress
    )
    second = await LocalProvider().run(
        studio_call("describe this", RecordedLive(), inputs=[quoted]), no_progress
    )

    assert (
        first.metadata["text"]
        == second.metadata["text"]
        == studio_answer("describe this", images=1, drawing=False)
    )
    assert "1 image" in str(first.metadata["text"])


async def test_an_empty_prompt_is_refused() -> None:
    with pytest.raises(InvalidStepInput):
        await LocalProvider().run(studio_call("  ", RecordedLive()), no_progress)


def test_every_studio_provider_type_offers_a_text_model_first_when_it_has_one() -> None:
    for provider_type in STUDIO_MODELS:
        models = studio_models_of(provider_type)
        kinds = {model["kind"] for model in models}
        # fal has only utilities, Gemini only image models: their messages go to a chat of another model.
        assert models[0]["kind"] == "text" or "text" not in kinds, provider_type
        for model in models:
            assert all(isinstance(values, list) and values for values in model["options"].values()), model
    assert studio_models_of("tripo") == []


async def test_a_seed_draws_another_picture_for_the_same_prompt() -> None:
    def image_call(seed: int) -> StepCall:
        return StepCall(
            task_id="reply-1", user_id="admin-1", step_id="reply", step_type="image-gen", model="local-image",
            prompt="a red fox", options={"size": "128x128", "seed": seed}, inputs=(),
            provider=ProviderAccess("local", "local", None, None),
        )  # fmt: skip

    first, again, other = [
        (await LocalProvider().run(image_call(seed), no_progress)).files[0].data for seed in (1, 1, 2)
    ]

    assert first == again
    assert first != other
