"""Tests of the fake OpenAI Images API, driven over HTTP by the real `openai` SDK (and plain aiohttp)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from PIL import Image

from funmagic_kit.testing import wait_until

sys.path.insert(0, str(Path(__file__).parent))

import openai_api
from faults import Fault, FaultPlan
from openai_api import DEFAULT_API_KEY, FakeOpenAI

KEY = "sk-test-funmagic-0001"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.url, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def png(size: tuple[int, int], colour: tuple[int, ...], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def decode(b64: str | None) -> Image.Image:
    assert b64 is not None
    image = Image.open(io.BytesIO(base64.b64decode(b64, validate=True)))
    image.load()
    return image


# --- generations --------------------------------------------------------------------------------


async def test_generate_returns_a_real_png_of_the_default_size(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    raw = await client.images.with_raw_response.generate(model="gpt-image-1", prompt="a red fox")
    result = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert (result.size, result.output_format, len(result.data)) == ("1024x1024", "png", 1)
    assert result.usage is not None
    assert result.usage.total_tokens > 0
    image = decode(result.data[0].b64_json)
    assert (image.format, image.size) == ("PNG", (1024, 1024))
    assert image.getpixel((0, 0)) != image.getpixel((0, 1023))  # a gradient, not a blank

    [recorded] = fake.requests
    assert (recorded.method, recorded.path, recorded.endpoint) == (
        "POST",
        "/v1/images/generations",
        "generations",
    )
    assert recorded.json == {"model": "gpt-image-1", "prompt": "a red fox"}
    assert recorded.headers["Authorization"] == "Bearer <redacted>"


async def test_generate_is_deterministic_per_prompt_and_honours_size_and_n(
    client: openai.AsyncOpenAI,
) -> None:
    first = await client.images.generate(model="dall-e-2", prompt="a red fox", size="256x256", n=2)
    again = await client.images.generate(model="dall-e-2", prompt="a red fox", size="256x256", n=2)
    other = await client.images.generate(model="dall-e-2", prompt="a blue whale", size="256x256")
    assert [d.b64_json for d in first.data] == [d.b64_json for d in again.data]
    assert first.data[0].b64_json != first.data[1].b64_json
    assert other.data[0].b64_json not in {d.b64_json for d in first.data}
    assert {decode(d.b64_json).size for d in first.data} == {(256, 256)}
    tall = await client.images.generate(model="gpt-image-1", prompt="a red fox", size="1024x1536")
    assert decode(tall.data[0].b64_json).size == (1024, 1536)


async def test_generate_auto_size_and_gpt_image_2_free_sizes(client: openai.AsyncOpenAI) -> None:
    auto = await client.images.generate(model="gpt-image-1.5", prompt="x", size="auto")
    assert decode(auto.data[0].b64_json).size == (1024, 1024)
    free = await client.images.generate(model="gpt-image-2", prompt="x", size="640x480")  # type: ignore[arg-type]
    assert decode(free.data[0].b64_json).size == (640, 480)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="x", size="640x480")  # type: ignore[arg-type]
    assert caught.value.param == "size"


async def test_generate_transparent_and_jpeg_outputs(client: openai.AsyncOpenAI) -> None:
    clear = await client.images.generate(model="gpt-image-1", prompt="x", background="transparent")
    assert clear.background == "transparent"
    assert decode(clear.data[0].b64_json).getpixel((0, 0))[3] == 0
    jpeg = await client.images.generate(
        model="gpt-image-1", prompt="x", output_format="jpeg", size="1024x1024"
    )
    assert (jpeg.output_format, decode(jpeg.data[0].b64_json).format) == ("jpeg", "JPEG")


@pytest.mark.parametrize("n", [0, 11])
async def test_n_outside_1_to_10_is_a_400(client: openai.AsyncOpenAI, n: int) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="x", n=n)
    assert caught.value.param == "n"


async def test_missing_prompt_is_a_400_naming_the_param(
    fake: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.post(
        f"{fake.url}/images/generations", json={"model": "gpt-image-1"}, headers=headers
    ) as resp:
        body = await resp.json()
        assert resp.status == 400
    assert body["error"]["param"] == "prompt"
    assert set(body["error"]) == {"message", "type", "param", "code"}  # all four, as the spec requires


async def test_moderation_refusal(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="something Forbidden here")
    error = caught.value
    assert (error.status_code, error.code, error.type) == (
        400,
        "moderation_blocked",
        "image_generation_user_error",
    )
    assert error.request_id is not None
    assert error.request_id.startswith("req_")


# --- edits --------------------------------------------------------------------------------------


async def test_edit_inverts_the_uploaded_image_and_keeps_its_size(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    source = png((40, 30), (10, 200, 30))
    result = await client.images.edit(
        model="gpt-image-1", image=("in.png", source, "image/png"), prompt="invert"
    )
    image = decode(result.data[0].b64_json)
    assert image.size == (40, 30)
    assert image.convert("RGB").getpixel((5, 5)) == (245, 55, 225)
    [recorded] = fake.requests
    assert (recorded.endpoint, recorded.files) == ("edits", ["image"])
    assert recorded.form["prompt"] == "invert"


async def test_edit_with_several_images_and_a_size(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    images = [
        ("a.png", png((64, 64), (0, 0, 0)), "image/png"),
        ("b.png", png((32, 32), (9, 9, 9)), "image/png"),
    ]
    result = await client.images.edit(
        model="gpt-image-1", image=images, prompt="merge", size="1024x1536", n=2
    )
    assert len(result.data) == 2
    image = decode(result.data[0].b64_json)
    assert (image.size, image.convert("RGB").getpixel((0, 0))) == ((1024, 1536), (255, 255, 255))
    assert fake.requests[0].files == ["image[]", "image[]"]  # a list goes as repeated image[] fields


async def test_edit_records_its_image_parts_in_the_order_they_arrived(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    style, photo = png((16, 16), (0, 0, 200)), png((24, 24), (200, 0, 0))
    await client.images.edit(
        model="gpt-image-1",
        image=[("style.png", style, "image/png"), ("photo.png", photo, "image/png")],
        prompt="in this style",
    )
    [edit] = fake.edits
    assert (edit.prompt, edit.model) == ("in this style", "gpt-image-1")
    assert [(i.field, i.filename, i.size) for i in edit.images] == [
        ("image[]", "style.png", len(style)),
        ("image[]", "photo.png", len(photo)),
    ]
    assert [i.sha256 for i in edit.images] == [
        hashlib.sha256(style).hexdigest(),
        hashlib.sha256(photo).hexdigest(),
    ]


async def test_several_images_need_a_gpt_image_model(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    images = [("a.png", png((8, 8), (0, 0, 0)), "image/png"), ("b.png", png((8, 8), (9, 9, 9)), "image/png")]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(model="dall-e-2", image=images, prompt="x")
    assert caught.value.param == "image"
    await client.images.edit(model="dall-e-2", image=images[0], prompt="x")  # one image is fine


async def test_an_image_of_50_mb_or_more_is_refused(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = png((8, 8), (1, 2, 3))
    monkeypatch.setattr(openai_api, "MAX_EDIT_IMAGE_BYTES", len(source))  # 50 MB, scaled down
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(model="gpt-image-1", image=("big.png", source, "image/png"), prompt="x")
    assert (caught.value.param, caught.value.code) == ("image", "invalid_value")
    assert "under 50 MB" in caught.value.message


async def test_edit_keeps_transparency(client: openai.AsyncOpenAI) -> None:
    source = png((32, 32), (0, 0, 0, 0), mode="RGBA")
    result = await client.images.edit(model="gpt-image-1", image=("in.png", source, "image/png"), prompt="x")
    assert decode(result.data[0].b64_json).getpixel((3, 3))[3] == 0


async def test_edit_without_an_image_or_with_a_broken_one_is_a_400(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData({"prompt": "x", "model": "gpt-image-1"}, default_to_multipart=True)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.post(f"{fake.url}/images/edits", data=form(), headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 400
    assert body["error"]["param"] == "image"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.images.edit(
            model="gpt-image-1", image=("x.png", b"not an image", "image/png"), prompt="x"
        )
    assert (caught.value.param, caught.value.code) == ("image", "invalid_image_file")


async def test_edit_refuses_json_bodies(fake: FakeOpenAI, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.post(f"{fake.url}/images/edits", json={"prompt": "x"}, headers=headers) as resp:
        assert resp.status == 400
        assert "multipart/form-data" in (await resp.json())["error"]["message"]


# --- auth ---------------------------------------------------------------------------------------


async def test_a_wrong_key_is_an_authentication_error(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(api_key="sk-wrong-key-123456", base_url=fake.url, max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.images.generate(model="gpt-image-1", prompt="x")
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong-key-123456" not in caught.value.message  # the key is masked


async def test_no_key_is_a_401(fake: FakeOpenAI, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake.url}/images/generations", json={"prompt": "x"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_api_key"


async def test_models_list_proves_the_key(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    assert "gpt-image-1" in models
    async with openai.AsyncOpenAI(api_key="sk-wrong-0000000000", base_url=fake.url, max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.models.list()
    fake.faults.queue("models", Fault.server_error(503))
    with pytest.raises(openai.InternalServerError):
        await client.models.list()


async def test_the_default_key(http: aiohttp.ClientSession) -> None:
    async with FakeOpenAI() as fake, openai.AsyncOpenAI(api_key=DEFAULT_API_KEY, base_url=fake.url) as sdk:
        result = await sdk.images.generate(model="gpt-image-1", prompt="x", size="1024x1024")
    assert len(result.data) == 1


# --- faults -------------------------------------------------------------------------------------


async def test_a_429_with_retry_after_ms_is_retried_by_the_sdk(fake: FakeOpenAI) -> None:
    fake.faults.queue("generations", Fault.rate_limited(retry_after_ms=1))
    async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.url, max_retries=1) as sdk:
        result = await sdk.images.generate(model="gpt-image-1", prompt="x")
    assert decode(result.data[0].b64_json).size == (1024, 1024)
    assert [r.headers.get("x-stainless-retry-count") for r in fake.requests] == ["0", "1"]
    assert fake.requests[0].received_at < fake.requests[1].received_at
    assert fake.faults.pending("generations") == 0


async def test_a_429_without_retries_is_a_rate_limit_error(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.faults.queue("generations", Fault.rate_limited(retry_after=2, retry_after_ms=1500))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="x")
    error = caught.value
    assert (error.status_code, error.code) == (429, "rate_limit_exceeded")
    assert error.response.headers["retry-after"] == "2"
    assert error.response.headers["retry-after-ms"] == "1500"
    assert len(fake.requests) == 1


async def test_a_500_is_an_internal_server_error(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.faults.queue("edits", Fault.server_error())
    fake.faults.queue("generations", Fault.server_error(503))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="x")
    assert (caught.value.status_code, caught.value.type) == (503, "server_error")
    with pytest.raises(openai.InternalServerError):
        await client.images.edit(
            model="gpt-image-1", image=("a.png", png((8, 8), (1, 2, 3)), "image/png"), prompt="x"
        )


async def test_a_hang_is_a_client_timeout_and_only_hits_one_request(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.faults.queue("generations", Fault.timeout())  # 30 s: far beyond the client's patience
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.5).images.generate(model="gpt-image-1", prompt="x")
    assert time.monotonic() - started < 5
    result = await client.images.generate(model="gpt-image-1", prompt="x")  # the fault was used up
    assert len(result.data) == 1


async def test_bad_payload_cannot_be_decoded(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.faults.queue("generations", Fault.bad_payload())
    result = await client.images.generate(model="gpt-image-1", prompt="x")
    assert result.data
    assert result.data[0].b64_json is not None
    with pytest.raises(binascii.Error):
        base64.b64decode(result.data[0].b64_json)  # …even a lenient decoder fails


async def test_an_error_fault_sends_its_body_verbatim(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    body = {
        "error": {
            "message": "quota",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    fake.faults.queue("generations", Fault.error(429, body))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.images.generate(model="gpt-image-1", prompt="x")
    assert (caught.value.code, caught.value.body) == ("insufficient_quota", body["error"])


async def test_always_faults_until_cleared(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.faults.always("generations", Fault.error(403, {"error": {"message": "region", "type": "x"}}))
    for _ in range(2):
        with pytest.raises(openai.PermissionDeniedError):
            await client.images.generate(model="gpt-image-1", prompt="x")
    fake.faults.always("generations", None)
    assert len((await client.images.generate(model="gpt-image-1", prompt="x")).data) == 1


async def test_latency_delays_the_answer(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.faults.set_latency("generations", 0.3)
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.1).images.generate(model="gpt-image-1", prompt="x")
    fake.faults.clear()
    await client.with_options(timeout=5).images.generate(model="gpt-image-1", prompt="x")
    # Arrival is recorded before the delay, so the slow request did not hold the next one's timestamp.
    assert fake.requests[1].received_at - fake.requests[0].received_at < 0.3


def test_fault_plan_order_and_validation() -> None:
    plan = FaultPlan(("generations", "edits"))
    first, second, standing = Fault.server_error(502), Fault.timeout(1), Fault.bad_payload()
    plan.queue("generations", first, second)
    plan.always("generations", standing)
    assert [plan.take("generations") for _ in range(4)] == [first, second, standing, standing]
    assert plan.take("edits") is None
    with pytest.raises(ValueError, match="no endpoint"):
        plan.queue("images", first)
    with pytest.raises(ValueError, match="needs a status"):
        Fault("error")
    with pytest.raises(ValueError, match="JSON object body"):
        Fault.error(400, None)  # type: ignore[arg-type]
    assert Fault.from_dict({"kind": "rate_limited"}) == Fault.rate_limited()
    assert Fault.from_dict({"kind": "server_error"}).status == 500
    with pytest.raises(ValueError, match="unknown fault fields"):
        Fault.from_dict({"kind": "timeout", "sconds": 1})


# --- control API and standalone -----------------------------------------------------------------


async def test_control_api_queues_faults_and_lists_requests_without_keys(
    fake: FakeOpenAI, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    control = f"{fake.origin}/_control"
    fault: dict[str, Any] = {"kind": "rate_limited", "retry_after": 1}
    async with http.post(f"{control}/faults", json={"endpoint": "generations", "queue": [fault]}) as resp:
        assert resp.status == 204
    with pytest.raises(openai.RateLimitError):
        await client.images.generate(model="gpt-image-1", prompt="x")
    async with http.post(f"{control}/faults", json={"endpoint": "nope", "queue": [fault]}) as resp:
        assert resp.status == 400
    async with http.post(
        f"{control}/faults", json={"endpoint": "edits", "always": {"kind": "server_error"}}
    ) as resp:
        assert resp.status == 204
    async with http.post(f"{control}/faults", json={"clear": True}) as resp:
        assert resp.status == 204
    assert fake.faults.take("edits") is None

    async with http.get(f"{control}/requests") as resp:
        recorded = await resp.json()
        text = await resp.text()
    assert [r["path"] for r in recorded] == ["/v1/images/generations"]
    assert recorded[0]["json"]["prompt"] == "x"
    assert KEY not in text
    async with http.delete(f"{control}/requests") as resp:
        assert resp.status == 204
    assert fake.requests == []


async def test_standalone_cli_prints_ready_and_stops_on_sigterm() -> None:
    script = Path(__file__).parent / "openai_api.py"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "--port", "0", "--api-key", KEY, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().strip()
        assert line.startswith("READY http://127.0.0.1:")
        assert line.endswith("/v1")
        async with openai.AsyncOpenAI(
            api_key=KEY, base_url=line.removeprefix("READY "), max_retries=0
        ) as sdk:
            result = await sdk.images.generate(model="gpt-image-1", prompt="x", size="1024x1024")
        assert len(result.data) == 1
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0


# --- responses ----------------------------------------------------------------------------------


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def user_message(text: str, *images: bytes) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
    content += [{"type": "input_image", "image_url": data_url(image)} for image in images]
    return [{"role": "user", "content": content}]


async def test_a_response_echoes_the_last_user_text_with_usage(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    raw = await client.responses.with_raw_response.create(
        model="gpt-5", input="Hello   there\nfox", instructions="Be brief.", metadata={"chat": "c1"}
    )
    response = raw.parse()

    assert raw.headers["x-request-id"].startswith("req_")
    assert (response.status, response.output_text) == ("completed", "Echo: Hello there fox")
    assert response.id.startswith("resp_")
    assert (response.instructions, response.metadata, response.store) == ("Be brief.", {"chat": "c1"}, True)
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 4)  # words, roughly
    assert response.usage.total_tokens == 9
    assert fake.responses_requests == [
        {
            "model": "gpt-5",
            "input": "Hello   there\nfox",
            "instructions": "Be brief.",
            "metadata": {"chat": "c1"},
        }
    ]
    Response.model_validate(raw.http_response.json())  # every field the SDK's model requires is there


async def test_three_chained_turns_know_the_first_turns_words(client: openai.AsyncOpenAI) -> None:
    first = await client.responses.create(model="gpt-5", input=user_message("My cat is called Pixel"))
    second = await client.responses.create(
        model="gpt-5", input=user_message("What colour are cats?"), previous_response_id=first.id
    )
    third = await client.responses.create(
        model="gpt-5", input="What is my cat called?", previous_response_id=second.id
    )

    assert first.output_text == "Echo: My cat is called Pixel"
    assert second.output_text == "Echo: What colour are cats? | context: My cat is called Pixel"
    assert third.output_text == "Echo: What is my cat called? | context: My cat is called Pixel"
    assert third.previous_response_id == second.id
    assert len({first.id, second.id, third.id}) == 3
    assert third.usage is not None
    assert second.usage is not None
    assert third.usage.input_tokens > second.usage.input_tokens  # the chain is part of the input


async def test_an_unknown_previous_response_is_a_400(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-5", input="x", previous_response_id="resp_nope")
    error = caught.value
    assert (error.code, error.param, error.type) == (
        "previous_response_not_found",
        "previous_response_id",
        "invalid_request_error",
    )
    assert error.body == {
        "message": "Previous response with id 'resp_nope' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }


async def test_a_response_made_with_store_false_cannot_be_continued(client: openai.AsyncOpenAI) -> None:
    unstored = await client.responses.create(model="gpt-5", input="secret", store=False)
    assert unstored.store is False
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-5", input="x", previous_response_id=unstored.id)
    assert caught.value.code == "previous_response_not_found"


async def test_a_stream_sends_one_delta_per_word_that_add_up_to_the_final_text(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    events = [e async for e in await client.responses.create(model="gpt-5", input="a quick fox", stream=True)]

    types = [e.type for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-2:] == ["response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[0].response.status == "in_progress"
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["Echo:", " a", " quick", " fox"]
    completed = events[-1]
    assert completed.type == "response.completed"
    assert "".join(deltas) == completed.response.output_text == "Echo: a quick fox"
    assert completed.response.usage is not None
    assert fake.disconnected == 0
    assert fake.in_flight == 0


async def test_every_streamed_frame_matches_the_sdk_models_strictly(
    fake: FakeOpenAI, http: aiohttp.ClientSession
) -> None:
    """The SDK parses leniently; a strict pydantic validation shows no required field is missing."""
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
    body = {"model": "gpt-5", "input": "hi", "stream": True,
            "tools": [{"type": "image_generation", "size": "256x256", "partial_images": 2}]}  # fmt: skip
    async with http.post(
        f"{fake.url}/responses", json=body, headers={"Authorization": f"Bearer {KEY}"}
    ) as resp:
        assert resp.content_type == "text/event-stream"
        raw = await resp.text()
    frames = [block.split("\n") for block in raw.strip().split("\n\n")]
    parsed = [adapter.validate_json(data.removeprefix("data: ")) for _, data in frames]
    assert [f"event: {event.type}" for event in parsed] == [event for event, _ in frames]
    assert len(parsed) > 10


async def test_the_image_tool_streams_partial_images_then_the_final_image(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    tool: Any = {"type": "image_generation", "partial_images": 3, "size": "256x256", "quality": "low"}
    stream = await client.responses.create(model="gpt-5", input="a lighthouse", tools=[tool], stream=True)
    events = [e async for e in stream]

    partials = [e for e in events if e.type == "response.image_generation_call.partial_image"]
    assert [p.partial_image_index for p in partials] == [0, 1, 2]
    completed = events[-1]
    assert completed.type == "response.completed"
    (call,) = [item for item in completed.response.output if item.type == "image_generation_call"]
    assert call.status == "completed"
    final = decode(call.result)
    assert (final.format, final.size) == ("PNG", (256, 256))
    for partial in partials:
        assert partial.item_id == call.id
        image = decode(partial.partial_image_b64)
        assert image.size == (256, 256)
        assert image.tobytes() != final.tobytes()  # coarser versions of the final picture
    # Partial images come after the text and before the response completes.
    types = [e.type for e in events]
    assert types.index("response.output_text.done") < types.index(partials[0].type)
    assert fake.responses_requests[0]["tools"] == [tool]


async def test_the_image_tool_without_a_stream_and_its_defaults(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="gpt-5", input="a lighthouse", tools=[{"type": "image_generation", "output_format": "jpeg"}]
    )
    (call,) = [item for item in response.output if item.type == "image_generation_call"]
    image = decode(call.result)
    assert (image.format, image.size) == ("JPEG", (1024, 1024))
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="gpt-5", input="x", tools=[{"type": "image_generation", "partial_images": 4}]
        )
    assert (caught.value.param, caught.value.code) == ("tools[0].partial_images", "integer_out_of_range")
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model="gpt-5", input="something forbidden", tools=[{"type": "image_generation"}]
        )
    assert refused.value.code == "moderation_blocked"


async def test_input_images_are_counted_and_must_be_images(client: openai.AsyncOpenAI) -> None:
    red, blue = png((8, 8), (255, 0, 0)), png((8, 8), (0, 0, 255))
    response = await client.responses.create(model="gpt-5", input=user_message("compare", red, blue))  # type: ignore[arg-type]
    assert response.output_text == "Echo: compare | images: 2"
    assert response.usage is not None
    assert response.usage.input_tokens > 2 * 80  # images cost input tokens

    broken: Any = [
        {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-5", input=broken)
    assert (caught.value.code, caught.value.param) == (
        "invalid_base64_image",
        "input[0].content[0].image_url",
    )


async def test_missing_model_or_input_is_a_400(client: openai.AsyncOpenAI) -> None:
    for body in ({"input": "x"}, {"model": "gpt-5"}):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.post("/responses", body=body, cast_to=Response)
        assert caught.value.code == "missing_required_parameter"
        assert caught.value.param in body.keys() ^ {"model", "input"}


async def test_a_429_on_responses_is_a_rate_limit_error(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.faults.queue("responses", Fault.rate_limited(retry_after=3))
    with pytest.raises(openai.RateLimitError) as caught:
        await client.responses.create(model="gpt-5", input="x", stream=True)
    assert (caught.value.code, caught.value.response.headers["retry-after"]) == ("rate_limit_exceeded", "3")
    assert fake.responses_requests == []  # a faulted call never reaches the API
    fake.faults.queue("responses", Fault.server_error(503))
    with pytest.raises(openai.InternalServerError):
        await client.responses.create(model="gpt-5", input="x")


async def test_a_stream_can_fail_midway_with_response_failed_or_an_error_event(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.fail_stream_after_deltas = 2
    events = [
        e async for e in await client.responses.create(model="gpt-5", input="one two three", stream=True)
    ]
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Echo:", " one"]
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.error is not None
    assert (failed.response.status, failed.response.error.code) == ("failed", "server_error")
    with pytest.raises(openai.BadRequestError):  # a failed response cannot be continued
        await client.responses.create(model="gpt-5", input="x", previous_response_id=failed.response.id)

    fake.stream_failure, fake.stream_failure_code = "error", "rate_limit_exceeded"
    events = [e async for e in await client.responses.create(model="gpt-5", input="x", stream=True)]
    error = events[-1]
    assert error.type == "error"
    assert (error.code, error.message) == ("rate_limit_exceeded", "The fake was told to fail this stream.")

    fake.stream_failure = "error_envelope"
    with pytest.raises(openai.APIError) as caught:
        async for _ in await client.responses.create(model="gpt-5", input="x", stream=True):
            pass
    assert caught.value.body == {
        "type": "server_error",
        "code": "rate_limit_exceeded",
        "message": "The fake was told to fail this stream.",
        "param": None,
    }


async def test_bad_payload_is_an_image_that_is_not_base64(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.faults.queue("responses", Fault.bad_payload(), Fault.bad_payload())
    events = [e async for e in await client.responses.create(model="gpt-5", input="x", stream=True)]
    partial = next(e for e in events if e.type == "response.image_generation_call.partial_image")
    completed = events[-1]
    assert completed.type == "response.completed"
    (call,) = [item for item in completed.response.output if item.type == "image_generation_call"]
    for encoded in (partial.partial_image_b64, call.result):
        assert encoded is not None
        with pytest.raises(binascii.Error):
            base64.b64decode(encoded)
    plain = await client.responses.create(model="gpt-5", input="x")
    assert any(item.type == "image_generation_call" for item in plain.output)


async def test_a_client_leaving_a_slow_stream_is_counted_as_disconnected(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    stream = await client.responses.create(model="gpt-5", input="tell it slowly please", stream=True)
    async for event in stream:
        if event.type == "response.output_text.delta":
            break  # …mid-stream: the next delta is 200 ms away
    await stream.close()

    async def gone() -> bool:
        return fake.disconnected == 1 and fake.in_flight == 0

    await wait_until(gone, timeout=5, what="the fake noticing the client left")


async def test_delta_delay_is_a_setting(fake: FakeOpenAI, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{fake.origin}/_control/settings", json={"delta_delay_seconds": 0.05}) as resp:
        assert (await resp.json())["delta_delay_seconds"] == 0.05
    async with openai.AsyncOpenAI(api_key=KEY, base_url=fake.url, max_retries=0) as sdk:
        started = time.monotonic()
        events = [e async for e in await sdk.responses.create(model="gpt-5", input="a b c", stream=True)]
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == 4
    assert time.monotonic() - started >= 4 * 0.05


async def test_in_flight_counts_image_and_response_calls_together(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.faults.set_latency("generations", 0.3)  # counted: a caller waits through it
    fake.delta_delay_seconds = 0.1

    async def chat() -> str:
        events = [e async for e in await client.responses.create(model="gpt-5", input="x y", stream=True)]
        return events[-1].type

    results = await asyncio.gather(
        client.images.generate(model="gpt-image-1", prompt="a", size="256x256"),
        client.images.generate(model="gpt-image-1", prompt="b", size="256x256"),
        chat(),
    )
    assert results[2] == "response.completed"
    assert (fake.max_in_flight, fake.in_flight) == (3, 0)
    await client.models.list()  # not a generation call
    assert fake.max_in_flight == 3
