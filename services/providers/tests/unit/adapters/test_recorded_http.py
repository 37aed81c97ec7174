"""The provider HTTP clients record calls only inside a recording, without changing what the adapter
reads: against the fake OpenAI server (in-process, no stack) — a generation's answer still decodes to an
image while the record keeps a marker; a refused key is recorded with its status but no part of the key;
a streamed studio reply still streams, recorded by its headers; outside a recording nothing is kept."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from funmagic_providers.adapters.apis.openai_images import OpenAIImages
from funmagic_providers.adapters.apis.openai_responses import OpenAIResponses
from funmagic_providers.adapters.apis.recorded_http import ContextCallRecorder
from funmagic_providers.domain.errors import ProviderRejected
from funmagic_providers.domain.steps import NO_LIVE_OUTPUT, STUDIO_CHAT, ProviderAccess, StepCall

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "fakes"))

from openai_api import FakeOpenAI

KEY = "sk-test-recorded-http-0123456789abcdef"
WRONG = "sk-wrong-recorded-http-9876543210zyxw"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


def call(
    fake: FakeOpenAI, *, key: str = KEY, step_type: str = "image-gen", model: str = "gpt-image-1"
) -> StepCall:
    return StepCall(
        task_id="task-1", user_id="user-1", step_id="gen", step_type=step_type, model=model,
        prompt="a lighthouse at dusk", options={}, inputs=(),
        provider=ProviderAccess("openai", "openai", fake.url, key), live=NO_LIVE_OUTPUT,
    )  # fmt: skip


async def no_progress(percent: int, message: str) -> None:
    return None


async def test_a_generation_is_recorded_redacted_and_the_adapter_still_gets_its_image(fake) -> None:
    with ContextCallRecorder().record() as calls:
        result = await OpenAIImages(timeout_seconds=10).run(call(fake), no_progress)

    assert result.files[0].data.startswith(PNG_SIGNATURE)
    (recorded,) = calls
    assert (recorded.method, recorded.url, recorded.status) == ("POST", f"{fake.url}/images/generations", 200)
    assert recorded.request_body == {
        "model": "gpt-image-1",
        "prompt": "a lighthouse at dusk",
        "size": "1024x1024",
    }
    assert isinstance(recorded.response_body, dict)
    assert recorded.response_body["data"][0]["b64_json"].startswith("<redacted base64, ")
    assert recorded.request_ids["x-request-id"] == result.provider_request_id


async def test_a_refused_key_is_recorded_with_its_status_and_no_part_of_the_key(fake) -> None:
    with ContextCallRecorder().record() as calls, pytest.raises(ProviderRejected):
        await OpenAIImages(timeout_seconds=10).run(call(fake, key=WRONG), no_progress)

    (recorded,) = calls
    assert recorded.status == 401
    text = json.dumps(recorded.response_body)
    assert "Incorrect API key provided: <redacted secret>" in text
    assert WRONG[-4:] not in text
    assert WRONG[:8] not in repr(recorded)


async def test_a_streamed_reply_still_streams_and_is_recorded_by_its_headers(fake) -> None:
    with ContextCallRecorder().record() as calls:
        result = await OpenAIResponses(timeout_seconds=10).run(
            call(fake, step_type=STUDIO_CHAT, model="gpt-5"), no_progress
        )

    assert result.metadata.get("text")
    (recorded,) = calls
    assert (recorded.url, recorded.status) == (f"{fake.url}/responses", 200)
    assert str(recorded.response_body).startswith("<text/event-stream body")
    assert isinstance(recorded.request_body, dict)
    assert recorded.request_body["model"] == "gpt-5"


async def test_nothing_is_recorded_outside_a_recording(fake) -> None:
    recorder = ContextCallRecorder()
    with recorder.record() as calls:
        pass
    result = await OpenAIImages(timeout_seconds=10).run(call(fake), no_progress)
    assert result.files
    assert calls == []
