"""Tripo 3D through its v2 task API (PROVIDERS.md section 3).

`3d-gen` steps: with an input image, upload it (`/upload`) and start `image_to_model`; with only a prompt,
`text_to_model`. Poll `/task/{id}` (Tripo's progress mapped onto 20–90 %), then download the model (GLB)
and the preview the task's output names; those URLs expire within minutes, so they are fetched at once.
Tripo has no cancel endpoint: a cancelled step stops polling and never fetches the result.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from funmagic_providers.adapters.apis.http_errors import (
    JsonApi,
    error_for_status,
    transport_error,
)
from funmagic_providers.domain.errors import (
    BadProviderResponse,
    InvalidStepInput,
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

__all__ = ["Tripo"]

_NAME = "Tripo"
_FINAL = {"success", "failed", "banned", "expired", "cancelled"}
_PASSED_OPTIONS = ("model_version", "face_limit", "texture", "pbr", "texture_quality", "orientation")
_IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class Tripo:
    def __init__(self, session: aiohttp.ClientSession, *, poll_interval_seconds: float = 2.0) -> None:
        self._session = session
        self._api = JsonApi(session, _NAME)
        self._poll_interval = poll_interval_seconds

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type != "3d-gen":
            raise UnsupportedStep(f"Tripo cannot run a {call.step_type} step")
        base, headers = call.provider.base_url, _auth(call.provider)
        options = {k: call.options[k] for k in _PASSED_OPTIONS if k in call.options}
        if call.model and call.model not in ("default", "tripo"):
            options.setdefault("model_version", call.model)
        if call.inputs:
            source = call.inputs[0]
            file_type = _IMAGE_TYPES.get(source.content_type)
            if file_type is None:
                raise InvalidStepInput(f"Tripo takes PNG, JPEG or WEBP images, not {source.content_type}")
            await progress(10, "Uploading the image to Tripo")
            form = aiohttp.FormData()
            form.add_field("file", source.data, filename=source.filename, content_type=source.content_type)
            uploaded = await self._call("POST", f"{base}/upload", headers, data=form)
            token = uploaded.get("image_token")
            if not token:
                raise BadProviderResponse("Tripo's upload answer has no image_token")
            body: dict[str, Any] = {
                "type": "image_to_model", "file": {"type": file_type, "file_token": token}, **options,
            }  # fmt: skip
        elif call.prompt:
            body = {"type": "text_to_model", "prompt": call.prompt[:1024], **options}
        else:
            raise InvalidStepInput("a 3d-gen step needs an input image or a prompt")
        created = await self._call("POST", f"{base}/task", headers, json=body)
        task_id = created.get("task_id")
        if not task_id:
            raise BadProviderResponse("Tripo's task answer has no task_id")
        await progress(20, "Tripo is generating the model")
        task = await self._wait(f"{base}/task/{task_id}", headers, progress)
        output = task.get("output") if isinstance(task.get("output"), dict) else {}
        model_url = output.get("pbr_model") or output.get("model") or output.get("base_model")
        if not model_url:
            raise BadProviderResponse("Tripo's finished task has no model")
        await progress(90, "Downloading the model")
        files = [
            OutputFile(
                "model",
                "model.glb",
                "model/gltf-binary",
                await self._api.download(str(model_url)),
            )
        ]
        if output.get("rendered_image"):
            files.append(
                OutputFile(
                    "preview",
                    "preview.png",
                    "image/png",
                    await self._api.download(str(output["rendered_image"])),
                )
            )
        return StepResult(
            tuple(files), provider_request_id=str(task_id), metadata={"task_type": body["type"]}
        )

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        return await self._api.health(f"{provider.base_url}/user/balance", _auth(provider))

    async def _wait(self, url: str, headers: dict[str, str], progress: ProgressReporter) -> dict[str, Any]:
        reported = 20
        while True:
            task = await self._call("GET", url, headers)
            status = task.get("status")
            if status in _FINAL:
                if status == "success":
                    return task
                if status == "banned":
                    raise ProviderRejected(
                        "Tripo refused the content (content policy)", code="content_policy"
                    )
                if status == "expired":
                    raise ProviderUnavailable("Tripo's task expired before it finished")
                code = task.get("error_code")
                raise ProviderRejected(
                    f"Tripo could not generate the model ({status}{f', error {code}' if code else ''})",
                    code="provider_failed",
                )
            tripo_progress = task.get("progress")
            if isinstance(tripo_progress, int | float) and status == "running":
                percent = 20 + int(min(max(tripo_progress, 0), 100) * 0.7)
                if percent > reported:
                    reported = percent
                    await progress(percent, "Tripo is generating the model")
            await asyncio.sleep(self._poll_interval)

    async def _call(self, method: str, url: str, headers: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._session.request(method, url, headers=headers, **kwargs) as response:
                text = await response.text()
                if response.status == 403 and '"code":2010' in text.replace(" ", ""):
                    raise ProviderRejected(
                        "Tripo's account has no credit left for this task", code="provider_out_of_credit"
                    )
                if response.status != 200:
                    raise error_for_status(_NAME, response.status, response.headers, _message(text))
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    raise BadProviderResponse("Tripo answered with something that is not JSON") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(_NAME, error) from None
        if (
            not isinstance(payload, dict)
            or payload.get("code") != 0
            or not isinstance(payload.get("data"), dict)
        ):
            raise BadProviderResponse(f"Tripo answered with an unexpected body: {_message(text)}")
        return payload["data"]


def _message(text: str) -> str:
    """Tripo's error envelope is `{code, message, suggestion}`; fall back to the raw text."""
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(body, dict) and "message" in body:
        return f"{body.get('message')} (code {body.get('code')})"[:300]
    return text[:300]


def _auth(provider: ProviderAccess) -> dict[str, str]:
    return {"Authorization": f"Bearer {provider.api_key or ''}"}
