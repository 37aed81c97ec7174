"""fal.ai through the queue API (PROVIDERS.md section 2): background removal (`remove-bg` tool steps) and
the studio's utility models (`studio-utility` steps, one quoted image each): `fal-ai/clarity-upscaler`
(input `image_url`, `prompt`, `upscale_factor` 1–4, `creativity`, `resemblance`, as
fal.ai/models/fal-ai/clarity-upscaler/llms.txt lists them; output `{image: File, seed}`) and
`fal-ai/bria/background/remove` (input `image_url`; output `{image: File}`, a transparent PNG).

submit → poll `status_url` → GET `response_url` → download the result image. The URLs come from the
submit answer (the model's subpath is only in the submit URL). The input image travels as a data URI,
so fal never needs to reach our storage. Cancelling the step cancels the fal request (`PUT cancel_url`).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp

from funmagic_providers.adapters.apis.http_errors import (
    JsonApi,
)
from funmagic_providers.domain.errors import (
    BadProviderResponse,
    InvalidStepInput,
    ProviderRejected,
    UnsupportedStep,
)
from funmagic_providers.domain.steps import (
    STUDIO_UTILITY,
    HealthReport,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["FalQueue"]

_NAME = "fal.ai"
_PASSED_OPTIONS = ("model", "operating_resolution", "output_format", "crop_to_bbox")
UPSCALER = "fal-ai/clarity-upscaler"
BRIA_REMOVE_BG = "fal-ai/bria/background/remove"
_UPSCALER_OPTIONS = {"upscale_factor": (1.0, 4.0), "creativity": (0.0, 1.0), "resemblance": (0.0, 1.0)}


class FalQueue:
    def __init__(self, session: aiohttp.ClientSession, *, poll_interval_seconds: float = 1.0) -> None:
        self._api = JsonApi(session, _NAME)
        self._poll_interval = poll_interval_seconds

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type not in ("remove-bg", STUDIO_UTILITY):
            raise UnsupportedStep(f"fal.ai cannot run a {call.step_type} step")
        if not call.inputs:
            raise InvalidStepInput("fal.ai's image models need an input image")
        source = call.inputs[0]
        image_url = f"data:{source.content_type};base64,{base64.b64encode(source.data).decode()}"
        if call.step_type == STUDIO_UTILITY:
            body, output_name, message = _utility_request(call, image_url)
        else:
            body = {
                "image_url": image_url,
                **{k: call.options[k] for k in _PASSED_OPTIONS if k in call.options},
            }
            output_name, message = "background_removed", "Removing the background"
        headers = _auth(call.provider)
        submitted = await self._api.json("POST", f"{call.provider.base_url}/{call.model}", headers, json=body)
        try:
            request_id = str(submitted["request_id"])
            status_url, response_url = str(submitted["status_url"]), str(submitted["response_url"])
            cancel_url = str(submitted.get("cancel_url") or "")
        except KeyError as missing:
            raise BadProviderResponse(f"fal.ai's submit answer lacks {missing}") from None
        await progress(10, "Queued at fal.ai")
        try:
            await self._wait_until_done(status_url, headers, progress, message)
        except asyncio.CancelledError:
            if cancel_url:
                await asyncio.shield(self._api.cancel("PUT", cancel_url, headers))
            raise
        result = await self._api.json("GET", response_url, headers)
        image = result.get("image") if isinstance(result, dict) else None
        if not isinstance(image, dict) or not image.get("url"):
            raise BadProviderResponse("fal.ai's result has no image")
        await progress(90, "Downloading the result")
        data = await self._api.download(str(image["url"]))
        content_type = str(image.get("content_type") or "image/png")
        extension = content_type.rsplit("/", 1)[-1]
        return StepResult(
            (OutputFile("image", f"{output_name}.{extension}", content_type, data),),
            provider_request_id=request_id,
            metadata={k: image[k] for k in ("width", "height") if isinstance(image.get(k), int)},
        )

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        return await self._api.health(f"{provider.base_url}/", _auth(provider))

    async def _wait_until_done(
        self, status_url: str, headers: dict[str, str], progress: ProgressReporter, message: str
    ) -> None:
        reported = 10
        while True:
            status = await self._api.json("GET", status_url, headers, params={"logs": "1"}, accept=(200, 202))
            state = status.get("status")
            if state == "COMPLETED":
                if status.get("error"):
                    raise ProviderRejected(
                        f"fal.ai could not process the image: {str(status['error'])[:300]}",
                        code="provider_failed",
                    )
                return
            if state == "IN_PROGRESS":
                # fal reports no percentage; the original's estimate: 30 + 10 per log line, at most 90.
                percent = min(30 + 10 * len(status.get("logs") or ()), 90)
                if percent > reported:
                    reported = percent
                    await progress(percent, message)
            elif state != "IN_QUEUE":
                raise BadProviderResponse(f"fal.ai reported an unknown status {str(state)[:40]!r}")
            await asyncio.sleep(self._poll_interval)


def _utility_request(call: StepCall, image_url: str) -> tuple[dict[str, Any], str, str]:
    """(the model's input, the output's name, the progress message) for a studio utility model."""
    if call.model == BRIA_REMOVE_BG:  # it takes the image only
        return {"image_url": image_url}, "background_removed", "Removing the background"
    if call.model != UPSCALER:
        raise UnsupportedStep(f"fal.ai's studio runs {UPSCALER} and {BRIA_REMOVE_BG}, not {call.model}")
    body: dict[str, Any] = {"image_url": image_url}
    if call.prompt and call.prompt.strip():
        body["prompt"] = call.prompt
    for name, (low, high) in _UPSCALER_OPTIONS.items():
        if name not in call.options:
            continue
        value = call.options[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise InvalidStepInput(f"{name} must be a number from {low:g} to {high:g}")
        body[name] = value
    return body, "upscaled", "Upscaling"


def _auth(provider: ProviderAccess) -> dict[str, str]:
    return {"Authorization": f"Key {provider.api_key or ''}"}
