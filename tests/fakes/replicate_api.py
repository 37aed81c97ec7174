"""A fake Replicate predictions API running "VGGT" (`vufinder/vggt-1b`) for providers-service tests.

A real aiohttp server with the HTTP shape Replicate's clients use (replicate-python's predictions
create/get/cancel): routes under /v1, `Authorization: Bearer <token>`; `POST /v1/predictions` with
`{"version", "input"}` answers 201 and a prediction `{id, version, input, status, output, error, logs,
created_at, started_at, completed_at, urls: {get, cancel}, metrics}`; `GET /v1/predictions/{id}` polls it;
`POST /v1/predictions/{id}/cancel` cancels it; `GET /v1/account` names the token's owner. Errors are
Replicate's problem documents `{"title", "detail", "status"}`; a 429 carries `Retry-After`.

The model checks what the original sent (ORIGINAL.md crystal-memory `vggt` row): `version` must be the VGGT
version, `input.images` a list holding one `data:` URI of a decodable image, `pcd_source` a string,
`return_pcd` and `to_base64` booleans (422 otherwise, as Replicate validates inputs). Its output is the
original's shape, `{"data": ["<origin>/files/<id>.json"]}`; the file (no auth, like replicate.delivery) holds
`world_points` [H, W, 3] and `world_points_conf` [H, W], computed by `vggt_point_map` from the image —
base64 float32 tensors `{"data", "shape", "dtype"}` with `to_base64`, nested lists without.

- `polls_until_done` (default 3): the prediction is `starting` when created and at the first poll, then
  `processing` (one more log line per poll); the poll after that many answers `succeeded`.
- `fail_predictions`: it ends `failed` with an `error` instead.
- A prediction belongs to the token that created it; other tokens get 404. `extra_keys` are more tokens.
- `cancelled` lists the ids cancelled through the API (a test can assert the adapter cancelled).
- `faults` on "create", "get", "cancel", "file" and "account" (see faults.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aiohttp import web
from faults import ApiError, FakeServer, Fault, cli_parser, serve
from PIL import Image, UnidentifiedImageError

DEFAULT_API_KEY = "r8_fake_replicate_token"
VGGT_VERSION = "770898f053ca56571e8a49d71f27fc695b6d203e0691baa30d8fbb6954599f2b"
GRID = (12, 16)  # the point map's H x W (the real model's is ~294 x 518; small keeps tests fast)


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, {"title": title, "detail": detail, "status": status}, headers)


def _invalid(detail: str) -> ApiError:
    return _problem(422, "Input validation failed", detail)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def vggt_point_map(image: bytes, grid: tuple[int, int] = GRID) -> tuple[np.ndarray, np.ndarray]:
    """What the fake model answers for `image`: `world_points` (H, W, 3) and `world_points_conf` (H, W),
    float32, deterministic. x, y follow the pixel grid in VGGT's camera frame (y down), z (depth) grows
    with brightness; the confidence is 1 + 4 x brightness (>= 1, like VGGT's), and 1 on transparent pixels.
    """
    height, width = grid
    decoded = Image.open(io.BytesIO(image))
    rgba = np.asarray(decoded.convert("RGBA").resize((width, height), Image.Resampling.NEAREST))
    brightness = rgba[..., :3].astype(np.float32).mean(axis=-1) / 255
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = (cols - (width - 1) / 2) / width, (rows - (height - 1) / 2) / width
    points = np.stack([x, y, 1 + brightness], axis=-1)
    conf = np.where(rgba[..., 3] == 0, 1.0, 1 + 4 * brightness)
    return points.astype(np.float32), conf.astype(np.float32)


def tensor(array: np.ndarray, *, to_base64: bool) -> Any:
    if not to_base64:
        return array.tolist()
    data = base64.b64encode(array.astype("<f4").tobytes()).decode()
    return {"data": data, "shape": list(array.shape), "dtype": "float32"}


@dataclass
class _Prediction:
    id: str
    owner: str
    input: dict[str, Any]
    image: bytes
    polls: int
    fails: bool
    created_at: str = field(default_factory=_now)
    polls_seen: int = 0
    cancelled: bool = False
    completed_at: str | None = None

    @property
    def status(self) -> str:
        if self.cancelled:
            return "canceled"
        if self.polls_seen == 0 and self.polls > 0:
            return "starting"
        if self.polls_seen <= self.polls - 1:
            return "processing"
        return "failed" if self.fails else "succeeded"

    def view(self, origin: str) -> dict[str, Any]:
        status = self.status
        done = status in ("succeeded", "failed", "canceled")
        if done and self.completed_at is None:
            self.completed_at = _now()
        logs = "\n".join(f"step {n}" for n in range(1, self.polls_seen + 1)) if status != "starting" else ""
        urls = f"{origin}/v1/predictions/{self.id}"
        return {
            "id": self.id,
            "model": "vufinder/vggt-1b",
            "version": VGGT_VERSION,
            "input": {k: v for k, v in self.input.items() if k != "images"} | {"images": ["<data uri>"]},
            "logs": logs,
            "output": {"data": [f"{origin}/files/{self.id}.json"]} if status == "succeeded" else None,
            "error": "CUDA out of memory (FakeReplicate fail_predictions)" if status == "failed" else None,
            "status": status,
            "created_at": self.created_at,
            "started_at": None if status == "starting" else self.created_at,
            "completed_at": self.completed_at if done else None,
            "urls": {"get": urls, "cancel": f"{urls}/cancel"},
            "metrics": {"predict_time": 0.42} if status == "succeeded" else {},
        }


class FakeReplicate(FakeServer):
    ENDPOINTS = ("create", "get", "cancel", "file", "account")
    API_PREFIX = "/v1"
    SETTINGS = ("polls_until_done", "fail_predictions")

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        extra_keys: Iterable[str] = (),
        polls_until_done: int = 3,
        fail_predictions: bool = False,
    ) -> None:
        super().__init__(api_key=api_key)
        if polls_until_done < 0:
            raise ValueError("polls_until_done must not be negative")
        self.keys = {api_key, *extra_keys}
        self.polls_until_done = polls_until_done
        self.fail_predictions = fail_predictions
        self.predictions: dict[str, _Prediction] = {}
        self.cancelled: list[str] = []

    def _add_routes(self, app: web.Application) -> None:
        base = self.API_PREFIX
        app.router.add_post(base + "/predictions", self._create, name="create")
        app.router.add_get(base + "/predictions/{id}", self._get, name="get")
        app.router.add_post(base + "/predictions/{id}/cancel", self._cancel, name="cancel")
        app.router.add_get(base + "/account", self._account, name="account")
        app.router.add_get("/files/{name}", self._file, name="file")

    # --- the API ---

    async def _create(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        try:
            body = await request.json()
        except ValueError:
            raise _problem(400, "Invalid JSON", "The request body is not valid JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise _invalid("The body needs `version` and an `input` object.")
        if body.get("version") != VGGT_VERSION:
            raise _invalid(f"Invalid version or not permitted: {str(body.get('version'))[:80]}")
        inputs = body["input"]
        image = _image_of(inputs.get("images"))
        if "pcd_source" in inputs and not isinstance(inputs["pcd_source"], str):
            raise _invalid("pcd_source: Invalid type. Expected: string")
        for name in ("return_pcd", "to_base64"):
            if name in inputs and not isinstance(inputs[name], bool):
                raise _invalid(f"{name}: Invalid type. Expected: boolean")
        if "sampling_rate" in inputs and (
            isinstance(inputs["sampling_rate"], bool) or not isinstance(inputs["sampling_rate"], int)
        ):
            raise _invalid("sampling_rate: Invalid type. Expected: integer")
        prediction = _Prediction(
            id=uuid.uuid4().hex[:26], owner=key, input=inputs, image=image,
            polls=self.polls_until_done, fails=self.fail_predictions,
        )  # fmt: skip
        self.predictions[prediction.id] = prediction
        return web.json_response(prediction.view(self.origin), status=201)

    async def _get(self, request: web.Request) -> web.Response:
        prediction = self._owned(request)
        answer = prediction.view(self.origin)
        if not prediction.cancelled:
            prediction.polls_seen += 1
        return web.json_response(answer)

    async def _cancel(self, request: web.Request) -> web.Response:
        prediction = self._owned(request)
        if prediction.status in ("starting", "processing"):
            prediction.cancelled = True
            self.cancelled.append(prediction.id)
        return web.json_response(prediction.view(self.origin))

    async def _account(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        return web.json_response({"type": "user", "username": "funmagic-test", "name": "FunMagic Test"})

    async def _file(self, request: web.Request) -> web.Response:
        prediction_id, _, extension = request.match_info["name"].rpartition(".")
        prediction = self.predictions.get(prediction_id)
        if prediction is None or extension != "json" or prediction.status != "succeeded":
            raise _problem(404, "Not found", "No such file.")
        points, conf = await asyncio.to_thread(vggt_point_map, prediction.image)
        to_base64 = bool(prediction.input.get("to_base64", False))
        return web.json_response({
            "world_points": tensor(points, to_base64=to_base64),
            "world_points_conf": tensor(conf, to_base64=to_base64),
        })  # fmt: skip

    # --- helpers ---

    def _owned(self, request: web.Request) -> _Prediction:
        key = self._authenticate(request)
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None or prediction.owner != key:
            raise _problem(404, "Not found", "The requested resource could not be found.")
        return prediction

    def _authenticate(self, request: web.Request) -> str:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or key not in self.keys:
            raise _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return key

    # --- FakeServer hooks ---

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        if fault.kind == "rate_limited":
            detail = "Request was throttled. Expected available in 1 second."
            return web.json_response(
                {"title": "Request was throttled.", "detail": detail, "status": 429},
                status=429, headers=fault.rate_limit_headers(),
            )  # fmt: skip
        if fault.kind == "server_error":
            return _problem(fault.status, "Internal Server Error", "Something went wrong.").response()
        if fault.kind == "bad_payload":
            if endpoint == "file":
                return web.json_response({"world_points": "not a tensor"})
            return web.json_response({"status": "succeeded"})  # no id, no output
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        return _problem(status, reason, f"No such endpoint: {request.method} {request.path}")


def _image_of(images: Any) -> bytes:
    """The one image of `input.images`: a `data:` URI of a decodable image."""
    if not isinstance(images, list) or len(images) != 1 or not isinstance(images[0], str):
        raise _invalid("images: Expected a list holding one image")
    header, sep, payload = images[0].partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise _invalid("images.0: expected a data:image/...;base64 URI")
    try:
        data = base64.b64decode(payload, validate=True)
        Image.open(io.BytesIO(data)).verify()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise _invalid("images.0: the file is not an image") from None
    return data


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Fake Replicate predictions API (VGGT) for tests.", DEFAULT_API_KEY)
    parser.add_argument("--polls-until-done", type=int, default=3)
    parser.add_argument("--fail-predictions", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeReplicate(
        api_key=args.api_key, polls_until_done=args.polls_until_done, fail_predictions=args.fail_predictions
    )
    asyncio.run(serve(fake, args.host, args.port))


if __name__ == "__main__":
    main()
