"""The Responses adapter against the fake OpenAI server (in-process, no stack): studio replies stream
their text and partial images to the live output, chain with `previous_response_id`, carry quoted
images, and every failure (HTTP or mid-stream) arrives in the step policy's terms; a cancelled reply
closes its HTTP stream."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from funmagic_kit.testing import wait_until
from funmagic_providers.adapters.apis.openai_responses import OpenAIResponses
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
from openai_api import FakeOpenAI

KEY = "sk-test-responses-adapter-0001"


class RecordedLive:
    def __init__(self) -> None:
        self.text: list[str] = []
        self.partials: list[tuple[int, bytes, str]] = []

    async def text_delta(self, text: str) -> None:
        self.text.append(text)

    async def partial_image(self, index: int, data: bytes, content_type: str) -> None:
        self.partials.append((index, data, content_type))


class RecordedProgress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, percent: int, message: str) -> None:
        self.calls.append((percent, message))


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buffer, "PNG")
    return buffer.getvalue()


def studio_call(
    fake: FakeOpenAI,
    prompt: str,
    live: RecordedLive | None = None,
    options: dict[str, Any] | None = None,
    inputs: tuple[InputFile, ...] = (),
    *,
    key: str = KEY,
    step_type: str = STUDIO_CHAT,
) -> StepCall:
    return StepCall(
        task_id="reply-1", user_id="admin-1", step_id="reply", step_type=step_type, model="gpt-5",
        prompt=prompt, options=options or {}, inputs=inputs,
        provider=ProviderAccess("openai", "openai", fake.url, key), live=live or RecordedLive(),
    )  # fmt: skip


async def run(call: StepCall, progress: RecordedProgress | None = None):
    return await OpenAIResponses(timeout_seconds=10).run(call, progress or RecordedProgress())


async def test_the_text_streams_to_the_live_output_and_the_result_carries_text_and_usage(
    fake: FakeOpenAI,
) -> None:
    live, progress = RecordedLive(), RecordedProgress()

    result = await run(studio_call(fake, "  Tell me about foxes ", live), progress)

    assert live.text == ["Echo:", " Tell", " me", " about", " foxes"]
    assert "".join(live.text) == result.metadata["text"] == "Echo: Tell me about foxes"
    assert result.files == ()
    assert result.metadata["responseId"] == result.provider_request_id
    assert str(result.provider_request_id).startswith("resp_")
    assert result.metadata["usage"] == {"inputTokens": 4, "outputTokens": 5, "totalTokens": 9}
    assert progress.calls == [(10, "Asked gpt-5")]  # once, not per delta
    (sent,) = fake.responses_requests
    assert sent == {
        "model": "gpt-5",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Tell me about foxes"}]}],
        "stream": True,
    }


async def test_chat_options_chain_the_turns(fake: FakeOpenAI) -> None:
    options = {"instructions": "Be brief.", "store": True}
    first = await run(studio_call(fake, "My cat is called Pixel", options=options))
    second = await run(
        studio_call(fake, "What is my cat called?",
                    options={**options, "previous_response_id": first.metadata["responseId"]})
    )  # fmt: skip

    assert second.metadata["text"] == "Echo: What is my cat called? | context: My cat is called Pixel"
    sent = fake.responses_requests
    assert [r.get("previous_response_id") for r in sent] == [None, first.provider_request_id]
    assert [(r["instructions"], r["store"]) for r in sent] == [("Be brief.", True)] * 2


async def test_quoted_images_are_sent_as_data_urls_after_the_text(fake: FakeOpenAI) -> None:
    inputs = (
        InputFile("asset-1", "a.png", "image/png", png((255, 0, 0))),
        InputFile("asset-2", "b.png", "image/png", png((0, 0, 255))),
    )

    result = await run(studio_call(fake, "compare these", inputs=inputs))

    assert result.metadata["text"] == "Echo: compare these | images: 2"
    content = fake.responses_requests[0]["input"][0]["content"]
    assert [part["type"] for part in content] == ["input_text", "input_image", "input_image"]
    assert all(part["image_url"].startswith("data:image/png;base64,") for part in content[1:])


async def test_the_image_tool_sends_partial_images_live_and_the_image_as_a_file(fake: FakeOpenAI) -> None:
    live = RecordedLive()
    options = {"image_generation": {"size": "256x256", "quality": "low", "unknown": 1}}

    result = await run(studio_call(fake, "a lighthouse", live, options))

    assert [(index, kind) for index, _, kind in live.partials] == [(0, "image/png"), (1, "image/png")]
    (image,) = result.files
    assert (image.role, image.filename, image.content_type) == ("image", "image_0.png", "image/png")
    final = Image.open(io.BytesIO(image.data))
    assert (final.format, final.size) == ("PNG", (256, 256))
    for _, data, _ in live.partials:
        partial = Image.open(io.BytesIO(data))
        assert partial.size == (256, 256)
        assert partial.tobytes() != final.tobytes()
    (sent,) = fake.responses_requests
    assert sent["tools"] == [
        {"type": "image_generation", "partial_images": 2, "size": "256x256", "quality": "low"}
    ]
    assert sent["tool_choice"] == {"type": "image_generation"}
    assert result.metadata["text"] == "Echo: a lighthouse"


async def test_the_image_format_and_partial_count_follow_the_options(fake: FakeOpenAI) -> None:
    live = RecordedLive()
    options = {"image_generation": {"size": "256x256", "output_format": "jpeg", "partial_images": 0}}

    result = await run(studio_call(fake, "a lighthouse", live, options))

    assert live.partials == []
    (image,) = result.files
    assert (image.filename, image.content_type) == ("image_0.jpeg", "image/jpeg")
    assert Image.open(io.BytesIO(image.data)).format == "JPEG"


async def test_a_429_is_rate_limited_with_the_retry_hint(fake: FakeOpenAI) -> None:
    fake.faults.queue("responses", Fault.rate_limited(retry_after=7))

    with pytest.raises(ProviderRateLimited) as caught:
        await run(studio_call(fake, "hello"))

    assert caught.value.retry_after == 7
    assert len(fake.requests) == 1  # the SDK did not retry on its own


async def test_http_failures_in_the_step_policys_terms(fake: FakeOpenAI) -> None:
    fake.faults.queue("responses", Fault.server_error(503))
    with pytest.raises(ProviderUnavailable):
        await run(studio_call(fake, "hello"))

    with pytest.raises(ProviderRejected) as refused:
        await run(studio_call(fake, "hello", key="sk-wrong-key-0000000000"))
    assert refused.value.code == "provider_auth_failed"

    with pytest.raises(ProviderRejected) as unknown:
        await run(studio_call(fake, "hello", options={"previous_response_id": "resp_gone"}))
    assert unknown.value.code == "provider_rejected"
    assert "resp_gone" in str(unknown.value)

    with pytest.raises(ProviderRejected) as blocked:
        await run(studio_call(fake, "something forbidden", options={"image_generation": {}}))
    assert blocked.value.code == "content_policy"


@pytest.mark.parametrize(
    ("failure", "code", "expected"),
    [
        ("response.failed", "server_error", ProviderUnavailable),
        ("response.failed", "image_content_policy_violation", ProviderRejected),
        ("error", "rate_limit_exceeded", ProviderRateLimited),
        ("error", "invalid_prompt", ProviderRejected),
        ("error_envelope", "rate_limit_exceeded", ProviderRateLimited),
        ("error_envelope", "server_error", ProviderUnavailable),
    ],
)
async def test_a_stream_failing_midway_is_translated(
    fake: FakeOpenAI, failure: str, code: str, expected: type[Exception]
) -> None:
    fake.fail_stream_after_deltas, fake.stream_failure, fake.stream_failure_code = 2, failure, code
    live = RecordedLive()

    with pytest.raises(expected) as caught:
        await run(studio_call(fake, "one two three", live))

    assert live.text == ["Echo:", " one"]  # what was streamed before the failure still went live
    if code == "image_content_policy_violation":
        assert getattr(caught.value, "code", None) == "content_policy"


async def test_an_image_that_is_not_base64_is_a_bad_response(fake: FakeOpenAI) -> None:
    fake.faults.queue("responses", Fault.bad_payload())

    with pytest.raises(BadProviderResponse, match="not base64"):
        await run(studio_call(fake, "hello", options={"image_generation": {}}))


async def test_cancelling_the_reply_mid_stream_closes_the_http_stream(fake: FakeOpenAI) -> None:
    live = RecordedLive()
    task = asyncio.create_task(run(studio_call(fake, "write a long story slowly", live)))

    async def streaming() -> bool:
        return len(live.text) >= 1

    await wait_until(streaming, timeout=10, what="the first delta")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def disconnected() -> bool:
        return fake.disconnected == 1 and fake.in_flight == 0

    await wait_until(disconnected, timeout=10, what="the fake seeing the stream closed")
    assert len(live.text) < 6  # the reply has six words: it was stopped before the end


async def test_only_studio_replies_with_a_prompt(fake: FakeOpenAI) -> None:
    with pytest.raises(UnsupportedStep):
        await run(studio_call(fake, "x", step_type="image-gen"))
    with pytest.raises(InvalidStepInput):
        await run(studio_call(fake, "   "))
    assert fake.requests == []


async def test_health_is_the_key_check(fake: FakeOpenAI) -> None:
    adapter = OpenAIResponses(timeout_seconds=10)
    good = await adapter.check_health(ProviderAccess("openai", "openai", fake.url, KEY))
    bad = await adapter.check_health(ProviderAccess("openai", "openai", fake.url, "sk-wrong-0000000000"))
    assert good.healthy
    assert not bad.healthy
    assert bad.error == "the API key was refused (HTTP 401)"
