"""Tencent Hunyuan 3D (Tencent Cloud API 3.0, service `ai3d`, version 2025-05-13) for `3d-gen` steps.

The shapes follow Tencent's published SDK models of `ai3d` v20250513 (`SubmitHunyuanTo3DProJob`:
`ImageBase64` or `ImageUrl` or `Prompt`, `EnablePBR`, `FaceCount` 40,000–1,500,000, `GenerateType`
Normal / LowPoly / Geometry / Sketch; `QueryHunyuanTo3DProJob`: `Status` WAIT / RUN / DONE / FAIL,
`ErrorCode`, `ErrorMessage`, `ResultFile3Ds[] {Type, Url, PreviewImageUrl}`) and Tencent Cloud's request
signing, TC3-HMAC-SHA256 (`sign_tc3`). Every call is a signed `POST /` naming its action in `X-TC-Action`;
errors come back as HTTP 200 with `Response.Error {Code, Message}`.

The credential is a pair: the provider row's key is the SecretId, its secret the SecretKey. The job is
polled every `poll_interval_seconds` (5 s, as the original) for at most `max_wait_seconds` (10 min); the
GLB (and its preview image) are fetched at once, since their URLs live 24 hours. Hunyuan has no cancel:
a cancelled step stops polling and never fetches the result.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from funmagic_providers.adapters.apis.http_errors import JsonApi, transport_error
from funmagic_providers.domain.errors import (
    BadProviderResponse,
    InvalidStepInput,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    UnsupportedStep,
)
from funmagic_providers.domain.steps import (
    HealthReport,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["Hunyuan", "sign_tc3"]

_NAME = "Hunyuan"
SERVICE = "ai3d"
VERSION = "2025-05-13"
SUBMIT = "SubmitHunyuanTo3DProJob"
QUERY = "QueryHunyuanTo3DProJob"
CONTENT_TYPE = "application/json; charset=utf-8"
_PASSED_OPTIONS = ("EnablePBR", "FaceCount", "GenerateType")
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})


def sign_tc3(
    secret_id: str, secret_key: str, *, host: str, service: str, payload: bytes, timestamp: int
) -> str:
    """The `Authorization` header of a Tencent Cloud API 3.0 `POST /` with a JSON body (TC3-HMAC-SHA256,
    signing the `content-type` and `host` headers)."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    signed_headers = "content-type;host"
    canonical_request = "\n".join(
        (
            "POST",
            "/",
            "",
            f"content-type:{CONTENT_TYPE}\nhost:{host}\n",
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        )
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ("TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode()).hexdigest())
    )
    key = _hmac(("TC3" + secret_key).encode(), date)
    key = _hmac(_hmac(key, service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, "
        f"Signature={signature}"
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class Hunyuan:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        poll_interval_seconds: float = 5.0,
        max_wait_seconds: float = 600.0,
        region: str = "ap-guangzhou",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._api = JsonApi(session, _NAME)
        self._poll_interval = poll_interval_seconds
        self._max_wait = max_wait_seconds
        self._region = region
        self._clock = clock

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type != "3d-gen":
            raise UnsupportedStep(f"Hunyuan cannot run a {call.step_type} step")
        options = {name: call.options[name] for name in _PASSED_OPTIONS if name in call.options}
        if call.inputs:
            source = call.inputs[0]
            if source.content_type not in _IMAGE_TYPES:
                raise InvalidStepInput(f"Hunyuan takes PNG, JPEG or WEBP images, not {source.content_type}")
            body: dict[str, Any] = {"ImageBase64": base64.b64encode(source.data).decode(), **options}
        elif call.prompt:
            body = {"Prompt": call.prompt[:1024], **options}
        else:
            raise InvalidStepInput("a 3d-gen step needs an input image or a prompt")
        await progress(10, "Sending the image to Hunyuan 3D")
        submitted = await self._call(call.provider, SUBMIT, body)
        job_id = submitted.get("JobId")
        if not isinstance(job_id, str) or not job_id:
            raise BadProviderResponse("Hunyuan's answer has no JobId")
        await progress(20, "Hunyuan 3D is generating the model")
        job = await self._wait(call.provider, job_id, progress)
        files = job.get("ResultFile3Ds")
        model = next(
            (
                f
                for f in files
                if isinstance(f, dict) and str(f.get("Type", "")).upper() == "GLB" and f.get("Url")
            )
            if isinstance(files, list)
            else (),
            None,
        )
        if model is None:
            raise BadProviderResponse("Hunyuan's finished job has no GLB file")
        await progress(90, "Downloading the model")
        outputs = [
            OutputFile("model", "model.glb", "model/gltf-binary", await self._api.download(str(model["Url"])))
        ]
        if model.get("PreviewImageUrl"):
            preview = await self._api.download(str(model["PreviewImageUrl"]))
            outputs.append(OutputFile("preview", "preview.png", "image/png", preview))
        return StepResult(tuple(outputs), provider_request_id=job_id, metadata={"action": SUBMIT})

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        """A signed query of a job that does not exist: Tencent checks the signature first, so anything but
        an AuthFailure means the pair is good."""
        try:
            await self._call(provider, QUERY, {"JobId": "funmagic-health-check"})
        except ProviderRejected as error:
            if error.code == "provider_auth_failed":
                return HealthReport(False, "the SecretId / SecretKey pair was refused")
        except ProviderUnavailable as error:
            return HealthReport(False, str(error)[:200])
        except ProviderError:
            pass
        return HealthReport(True)

    async def _wait(
        self, provider: ProviderAccess, job_id: str, progress: ProgressReporter
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + self._max_wait
        reported = 20
        while True:
            job = await self._call(provider, QUERY, {"JobId": job_id})
            status = job.get("Status")
            if status == "DONE":
                return job
            if status == "FAIL":
                code, message = job.get("ErrorCode") or "", job.get("ErrorMessage") or ""
                raise ProviderRejected(
                    f"Hunyuan could not generate the model ({code}: {message})"[:300], code="provider_failed"
                )
            if status not in ("WAIT", "RUN"):
                raise BadProviderResponse(f"Hunyuan's job has an unknown status {status!r}")
            if status == "RUN" and reported < 50:
                reported = 50
                await progress(reported, "Hunyuan 3D is generating the model")
            if asyncio.get_running_loop().time() + self._poll_interval > deadline:
                raise ProviderUnavailable(f"Hunyuan's job did not finish within {self._max_wait:.0f} s")
            await asyncio.sleep(self._poll_interval)

    async def _call(self, provider: ProviderAccess, action: str, body: dict[str, Any]) -> dict[str, Any]:
        if not provider.base_url or not provider.api_key or not provider.api_secret:
            raise ProviderRejected(
                "the Hunyuan provider needs its base URL, SecretId and SecretKey", code="provider_auth_failed"
            )
        payload = json.dumps(body, separators=(",", ":")).encode()
        host = urlsplit(provider.base_url).netloc
        timestamp = int(self._clock())
        headers = {
            "Authorization": sign_tc3(
                provider.api_key, provider.api_secret, host=host, service=SERVICE, payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": action,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._region,
        }  # fmt: skip
        try:
            async with self._session.post(f"{provider.base_url}/", data=payload, headers=headers) as response:
                text = await response.text()
                if response.status >= 500 or response.status in (408, 429):
                    raise _status_error(response.status, text)
                try:
                    answer = json.loads(text)
                except ValueError:
                    raise BadProviderResponse("Hunyuan answered with something that is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(_NAME, error) from None
        result = answer.get("Response") if isinstance(answer, dict) else None
        if not isinstance(result, dict):
            raise BadProviderResponse("Hunyuan's answer has no Response")
        error = result.get("Error")
        if isinstance(error, dict):
            raise _api_error(str(error.get("Code", "")), str(error.get("Message", ""))[:200])
        return result


def _glb_of(files: object) -> dict[str, Any] | None:
    """The GLB among a finished job's files (Hunyuan also lists OBJ and others)."""
    if not isinstance(files, list):
        return None
    return next(
        (
            f
            for f in files
            if isinstance(f, dict) and str(f.get("Type", "")).upper() == "GLB" and f.get("Url")
        ),
        None,
    )


def _status_error(status: int, text: str) -> ProviderError:
    if status == 429:
        return ProviderRateLimited(f"Hunyuan is rate limiting us (429): {text[:200]}", retry_after=None)
    return ProviderUnavailable(f"Hunyuan failed ({status}): {text[:200]}")


def _api_error(code: str, message: str) -> ProviderError:
    """Tencent Cloud's common error codes, as the step policy reads them."""
    if code.startswith("AuthFailure"):
        return ProviderRejected(f"Hunyuan refused the credentials ({code})", code="provider_auth_failed")
    if code.startswith("RequestLimitExceeded") or code.startswith("LimitExceeded"):
        return ProviderRateLimited(f"Hunyuan is rate limiting us ({code}): {message}", retry_after=None)
    if code.startswith(("InternalError", "ResourceUnavailable", "ServiceUnavailable")):
        return ProviderUnavailable(f"Hunyuan failed ({code}): {message}")
    if code.startswith(("ResourceInsufficient", "FailedOperation.InsufficientBalance")) or "Arrears" in code:
        return ProviderRejected(
            f"Hunyuan's account cannot pay for this ({code})", code="provider_out_of_credit"
        )
    return ProviderRejected(f"Hunyuan refused the request ({code}): {message}")
