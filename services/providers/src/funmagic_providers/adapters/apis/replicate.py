"""Replicate's predictions API, running VGGT for `point-cloud` steps (Crystal Memory's second step).

The HTTP shape follows Replicate's HTTP API as its official clients use it (replicate-python's
`predictions.create/get/cancel`): `POST {base}/predictions` with `Authorization: Bearer <token>` and a body
`{"version": <version id>, "input": {...}}` answers a prediction `{id, status, output, error, logs, urls}`;
`GET {base}/predictions/{id}` polls it (`starting` → `processing` → `succeeded` | `failed` | `canceled`);
`POST {base}/predictions/{id}/cancel` stops it. We never send `Prefer: wait`: a held connection would
outlast the step's lease renewals, and polling reports progress.

The model and its input/output follow the original's worker (crystal-memory `vggt` step, ORIGINAL.md):
version `vufinder/vggt-1b:770898f0…`, input `{images: [<data URI>], pcd_source: "point_head", return_pcd:
true}` (the image as a data URI, so Replicate never has to reach our storage), plus `to_base64` so the
tensors come as base64 float32 rather than nested lists; output `{data: [<URL of a JSON file>]}`, the file
holding `world_points` [H, W, 3] and `world_points_conf` [H, W]. An output that is the JSON object itself,
or a bare URL, is taken too. `vggt_points` turns it into our PLY.
Cancelling the step (user cancel, or the step's deadline) cancels the prediction, so it stops billing.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp

from funmagic_providers.adapters import vggt_points
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
    HealthReport,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["VGGT_VERSION", "Replicate"]

_NAME = "Replicate"
# `vufinder/vggt-1b` at the version the original ran (its id as `replicate.run` took it).
VGGT_VERSION = "770898f053ca56571e8a49d71f27fc695b6d203e0691baa30d8fbb6954599f2b"
_PASSED_OPTIONS = ("sampling_rate",)
_IN_FLIGHT = {"starting", "processing"}
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


class Replicate:
    def __init__(self, session: aiohttp.ClientSession, *, poll_interval_seconds: float = 1.0) -> None:
        self._api = JsonApi(session, _NAME)
        self._poll_interval = poll_interval_seconds

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type != "point-cloud":
            raise UnsupportedStep(f"Replicate cannot run a {call.step_type} step")
        # A model named as the original did (`owner/name:version`) runs that version.
        version = call.model.rpartition(":")[2] if call.model and call.model != "default" else VGGT_VERSION
        options = {k: call.options[k] for k in _PASSED_OPTIONS if k in call.options}
        options["pcd_source"] = str(call.options.get("pcd_source", "point_head"))
        if not call.inputs:
            raise InvalidStepInput("a point-cloud step needs an input image")
        source = call.inputs[0]
        if source.content_type not in _IMAGE_TYPES:
            raise InvalidStepInput(f"VGGT takes PNG, JPEG or WEBP images, not {source.content_type}")
        image = f"data:{source.content_type};base64,{base64.b64encode(source.data).decode()}"
        body = {
            "version": version,
            "input": {"images": [image], **options, "return_pcd": True, "to_base64": True},
        }
        base, headers = call.provider.base_url, _auth(call.provider)
        await progress(15, "Calling VGGT on Replicate")
        prediction = await self._api.json(
            "POST", f"{base}/predictions", headers, json=body, accept=(200, 201)
        )
        prediction_id = prediction.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise BadProviderResponse("Replicate's prediction has no id")
        try:
            url = f"{base}/predictions/{prediction_id}"
            prediction = await self._wait(url, prediction, headers, progress)
        except asyncio.CancelledError:
            await asyncio.shield(
                self._api.cancel("POST", f"{base}/predictions/{prediction_id}/cancel", headers)
            )
            raise
        await progress(85, "Processing point cloud data")
        output = await self._output(prediction.get("output"))
        try:
            cloud = await asyncio.to_thread(vggt_points.vggt_point_cloud, output, source.data)
        except vggt_points.VggtOutputError as error:
            raise BadProviderResponse(f"VGGT's answer is not a usable point map: {error}") from None
        return StepResult(
            (OutputFile("point_cloud", "point_cloud.ply", "application/x-ply", cloud.ply),),
            provider_request_id=prediction_id,
            metadata={
                "pointCount": cloud.point_count,
                "dimensions": {"height": cloud.height, "width": cloud.width},
            },
        )

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        # `GET /account` answers the token's owner: the cheapest call that proves the token works.
        return await self._api.health(f"{provider.base_url}/account", _auth(provider))

    async def _wait(
        self, url: str, prediction: dict[str, Any], headers: dict[str, str], progress: ProgressReporter
    ) -> dict[str, Any]:
        reported = 15
        while True:
            status = prediction.get("status")
            if status == "succeeded":
                return prediction
            if status == "failed":
                raise ProviderRejected(
                    f"VGGT failed on Replicate: {str(prediction.get('error') or 'no reason given')[:300]}",
                    code="provider_failed",
                )
            if status == "canceled":
                raise ProviderRejected("the prediction was cancelled at Replicate", code="provider_failed")
            if status not in _IN_FLIGHT:
                raise BadProviderResponse(f"Replicate reported an unknown status {str(status)[:40]!r}")
            if status == "processing":
                # No percentage from Replicate; like the original's fal estimate, a step per log line, <= 80.
                lines = len(str(prediction.get("logs") or "").splitlines())
                percent = min(30 + 10 * lines, 80)
                if percent > reported:
                    reported = percent
                    await progress(percent, "VGGT is reconstructing the scene")
            await asyncio.sleep(self._poll_interval)
            prediction = await self._api.json("GET", url, headers)

    async def _output(self, output: Any) -> dict[str, Any]:
        if isinstance(output, dict) and isinstance(output.get("data"), list) and output["data"]:
            output = output["data"][0]  # the original's shape: the point map is a file, named in `data`
        if isinstance(output, dict):
            return output
        if isinstance(output, str) and output.startswith(("https://", "http://")):
            return await self._api.json("GET", output, {})
        raise BadProviderResponse("VGGT's prediction has no point map output")


def _auth(provider: ProviderAccess) -> dict[str, str]:
    return {"Authorization": f"Bearer {provider.api_key or ''}"}
