"""The Hunyuan 3D adapter (`3d-gen` steps) against the fake Tencent API (tests/fakes/hunyuan_api.py, a real
HTTP server on localhost that verifies the TC3-HMAC-SHA256 signature with its own code): what it sends, the
polling, the GLB it returns, and Tencent's errors mapped to the step policy's."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from funmagic_providers.adapters.apis.hunyuan import CONTENT_TYPE, SERVICE, Hunyuan, sign_tc3
from funmagic_providers.adapters.apis.recorded_http import provider_session
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
from hunyuan_api import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, FakeHunyuan, expected_signature


def photo() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (160, 160), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


class Progress:
    def __init__(self) -> None:
        self.reported: list[int] = []

    async def __call__(self, percent: int, message: str) -> None:
        self.reported.append(percent)


@pytest.fixture
async def hunyuan() -> AsyncIterator[tuple[Hunyuan, FakeHunyuan]]:
    async with FakeHunyuan(polls_until_done=2) as fake, provider_session(10) as http:
        yield Hunyuan(http, poll_interval_seconds=0.01), fake


def model_call(
    fake: FakeHunyuan,
    *,
    options: dict | None = None,
    secret: str = DEFAULT_SECRET_KEY,
    step_type: str = "3d-gen",
    image: bool = True,
) -> StepCall:
    inputs = (InputFile("asset-1", "photo.png", "image/png", photo()),) if image else ()
    return StepCall(
        task_id="task-1", user_id="user-1", step_id="3d-gen", step_type=step_type, model="default",
        prompt=None, options=options or {}, inputs=inputs,
        provider=ProviderAccess("hunyuan", "hunyuan", fake.url, DEFAULT_SECRET_ID, api_secret=secret),
    )  # fmt: skip


def test_the_signature_is_the_one_an_independent_verifier_computes() -> None:
    payload = b'{"JobId":"1234"}'
    header = sign_tc3("AKIDexample", "secret-example", host="ai3d.tencentcloudapi.com", service=SERVICE,
                      payload=payload, timestamp=1_700_000_000)  # fmt: skip

    received = {"signed": "content-type;host", "date": "2023-11-14", "service": "ai3d",
                "timestamp": "1700000000", "header:content-type": CONTENT_TYPE,
                "header:host": "ai3d.tencentcloudapi.com"}  # fmt: skip
    assert header.startswith("TC3-HMAC-SHA256 Credential=AKIDexample/2023-11-14/ai3d/tc3_request, ")
    assert header.endswith(f"Signature={expected_signature('secret-example', received, payload)}")


async def test_an_image_becomes_a_glb_after_the_job_is_polled_to_done(hunyuan) -> None:
    adapter, fake = hunyuan
    progress = Progress()
    options = {"EnablePBR": True, "FaceCount": 60_000, "GenerateType": "LowPoly", "unrelated": 1}

    result = await adapter.run(model_call(fake, options=options), progress)

    (submitted,) = fake.submitted
    assert submitted == {"ImageBase64": len(photo()), "EnablePBR": True, "FaceCount": 60_000,
                         "GenerateType": "LowPoly"}  # fmt: skip
    model, preview = result.files
    assert (model.role, model.content_type, model.data[:4]) == ("model", "model/gltf-binary", b"glTF")
    assert (preview.role, preview.data[:8]) == ("preview", b"\x89PNG\r\n\x1a\n")
    assert result.provider_request_id in fake.jobs
    assert fake.jobs[result.provider_request_id].polls_seen == 4  # WAIT, RUN, RUN, DONE
    assert progress.reported == sorted(progress.reported)
    assert 90 in progress.reported
    request = next(r for r in fake.requests if r.endpoint == "api")
    assert request.headers["X-TC-Action"] == "SubmitHunyuanTo3DProJob"
    assert request.headers["X-TC-Version"] == "2025-05-13"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"
    assert abs(int(request.headers["X-TC-Timestamp"]) - time.time()) < 60


async def test_a_wrong_secret_key_is_refused_as_bad_credentials(hunyuan) -> None:
    adapter, fake = hunyuan
    with pytest.raises(ProviderRejected, match=r"AuthFailure\.SignatureFailure") as refused:
        await adapter.run(model_call(fake, secret="not-the-secret-key"), Progress())
    assert refused.value.code == "provider_auth_failed"
    assert fake.submitted == []


async def test_a_failed_job_fails_the_step_with_tencents_reason(hunyuan) -> None:
    adapter, fake = hunyuan
    fake.fail_jobs = True
    with pytest.raises(ProviderRejected, match=r"FailedOperation\.GenerateFailed") as failed:
        await adapter.run(model_call(fake), Progress())
    assert failed.value.code == "provider_failed"


async def test_request_limit_exceeded_is_a_rate_limit_and_a_5xx_is_unavailable(hunyuan) -> None:
    adapter, fake = hunyuan
    fake.faults.queue("api", Fault.rate_limited())
    with pytest.raises(ProviderRateLimited):
        await adapter.run(model_call(fake), Progress())
    fake.faults.queue("api", Fault.server_error(503))
    with pytest.raises(ProviderUnavailable):
        await adapter.run(model_call(fake), Progress())


async def test_an_answer_without_a_job_id_is_a_bad_response(hunyuan) -> None:
    adapter, fake = hunyuan
    fake.faults.queue("api", Fault.bad_payload())
    with pytest.raises(BadProviderResponse, match="JobId"):
        await adapter.run(model_call(fake), Progress())


async def test_a_job_that_never_finishes_is_given_up_after_the_maximum_wait() -> None:
    async with FakeHunyuan(polls_until_done=10_000) as fake, provider_session(10) as http:
        adapter = Hunyuan(http, poll_interval_seconds=0.01, max_wait_seconds=0.2)
        with pytest.raises(ProviderUnavailable, match="did not finish"):
            await adapter.run(model_call(fake), Progress())


async def test_options_out_of_the_apis_bounds_are_refused_by_it(hunyuan) -> None:
    adapter, fake = hunyuan
    with pytest.raises(ProviderRejected, match="FaceCount"):
        await adapter.run(model_call(fake, options={"FaceCount": 10}), Progress())


async def test_other_step_types_and_missing_inputs_are_refused_before_any_call(hunyuan) -> None:
    adapter, fake = hunyuan
    with pytest.raises(UnsupportedStep):
        await adapter.run(model_call(fake, step_type="image-gen"), Progress())
    with pytest.raises(InvalidStepInput):
        await adapter.run(model_call(fake, image=False), Progress())
    assert fake.requests == []


async def test_health_is_good_with_the_pair_and_bad_with_a_wrong_secret(hunyuan) -> None:
    adapter, fake = hunyuan
    good = ProviderAccess("hunyuan", "hunyuan", fake.url, DEFAULT_SECRET_ID, api_secret=DEFAULT_SECRET_KEY)
    bad = ProviderAccess("hunyuan", "hunyuan", fake.url, DEFAULT_SECRET_ID, api_secret="wrong")

    assert (await adapter.check_health(good)).healthy
    assert not (await adapter.check_health(bad)).healthy


async def test_the_image_sent_is_the_inputs_bytes(hunyuan) -> None:
    adapter, fake = hunyuan
    await adapter.run(model_call(fake), Progress())
    request = next(r for r in fake.requests if r.endpoint == "api")
    assert base64.b64decode(request.json["ImageBase64"]) == photo()


async def test_a_prompt_alone_is_sent_as_a_text_to_3d_job() -> None:
    async with FakeHunyuan(polls_until_done=0) as fake, aiohttp.ClientSession() as http:
        call = model_call(fake, image=False)
        call = StepCall(**{**call.__dict__, "prompt": "a small robot"})
        result = await Hunyuan(http, poll_interval_seconds=0.01).run(call, Progress())
    assert fake.submitted == [{"Prompt": "a small robot"}]
    assert result.files[0].data[:4] == b"glTF"
