"""A fake fal.ai queue API (background removal, upscaling) for providers-service tests.

It is a real aiohttp server that follows /work/shared/PROVIDERS.md section 2. It stands in for
`https://queue.fal.run`: `Authorization: Key <key>`, submit to `/{owner}/{app}[/{subpath}]`, then the
status, result and cancel URLs returned by submit, which are absolute and leave the subpath out (2.2).
Errors are FastAPI-style `{"detail": ...}` (2.6); validation failures are 422 with a `loc` list.

What the model does: it reads `image_url` (a `data:` URI, or an http(s) URL it downloads), makes the
pixels close to the top-left corner's colour transparent (a crude background removal) and stores an RGBA
PNG under `/files/<request_id>.png`, served without auth like fal's CDN — except `fal-ai/clarity-upscaler`
(fal.ai/models/fal-ai/clarity-upscaler/llms.txt): it checks `prompt` (a string), `upscale_factor` (a number,
1–4), `creativity` and `resemblance` (numbers, 0–1) — 422 with a `loc` otherwise — and really upscales the
image by the factor (an RGB PNG, the result adds `seed`). `fal-ai/bria/background/remove` takes only
`image_url` and cuts out like the others. The work is done at submit; the queue is only a counter of status
polls:

- `polls_until_done` (default 2): that many status polls answer 202, the first `IN_QUEUE`, the rest
  `IN_PROGRESS`; the next answers 200 `COMPLETED`. The result is 400 "still in progress" until then.
- `fail_requests`: new requests end `COMPLETED` with `error` and `error_type` set; their result is 422.
  An image that cannot be downloaded or decoded fails the same way (`file_download_error`,
  `image_load_error`).
- A cancelled request (PUT cancel before completion) reports `COMPLETED` with an error at once.
- The key is checked before the path: an unknown path answers 401 to a bad key, 404 to a good one
  (so `GET /` can probe a key).
- `faults` on "submit", "status", "result", "cancel" and "file" (see faults.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from faults import ApiError, FakeServer, Fault, cli_parser, serve
from PIL import Image, ImageChops, UnidentifiedImageError

DEFAULT_API_KEY = "fake-key-id:fake-key-secret"  # FAL_KEY is `key_id:key_secret` (PROVIDERS 2.1)
BACKGROUND_TOLERANCE = 40  # how far (per channel) a pixel may be from the corner colour and still go
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 10.0
INFERENCE_TIME = 0.42
UPSCALER = "fal-ai/clarity-upscaler"
_UPSCALER_NUMBERS = {
    "upscale_factor": (1.0, 4.0, 2.0),
    "creativity": (0.0, 1.0, 0.35),
    "resemblance": (0.0, 1.0, 0.6),
}
UPSCALER_SEED = 42
_LOAD_ERROR = (
    "Failed to load the image. Please ensure the image file is not corrupted and is in a supported format."
)
_DOWNLOAD_ERROR = "Failed to download the file. Please check if the URL is accessible and try again."
_INJECTED_ERROR = "The model failed to process the request (FakeFal fail_requests)."
_CANCELLED_ERROR = "Request was cancelled."


class _Unloadable(Exception):
    """The input image could not be fetched or decoded: the request fails, the submit does not."""

    def __init__(self, error: str, error_type: str) -> None:
        super().__init__(error)
        self.error = error
        self.error_type = error_type


def _detail(status: int, detail: Any) -> ApiError:
    return ApiError(status, {"detail": detail})


def _body_error(field_name: str, msg: str, type_: str) -> ApiError:
    return _detail(422, [{"loc": ["body", field_name], "msg": msg, "type": type_}])


@dataclass
class _Queued:
    request_id: str
    app: str  # "owner/app": what the status/result/cancel URLs are built from
    endpoint_id: str  # "owner/app/subpath" as submitted
    order: int  # submission order, for queue_position
    polls_left: int
    polls_seen: int = 0
    cancelled: bool = False
    input_error: bool = False  # the failure is about `image_url`, so the result names it in `loc`
    error: str | None = None
    error_type: str | None = None
    image: dict[str, Any] | None = None  # the result's `image` object once the work succeeded
    extra: dict[str, Any] = field(default_factory=dict)  # more of the result (the upscaler's `seed`)
    logs: list[dict[str, str]] = field(default_factory=list)
    finished_logged: bool = False

    @property
    def done(self) -> bool:
        return self.cancelled or self.polls_left == 0

    @property
    def failed(self) -> bool:
        return self.error is not None


class FakeFal(FakeServer):
    ENDPOINTS = ("submit", "status", "result", "cancel", "file")
    SETTINGS = ("polls_until_done", "fail_requests")

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, polls_until_done: int = 2, fail_requests: bool = False
    ) -> None:
        super().__init__(api_key=api_key)
        if polls_until_done < 0:
            raise ValueError("polls_until_done must not be negative")
        self.polls_until_done = polls_until_done
        self.fail_requests = fail_requests
        self.queue: dict[str, _Queued] = {}
        self.files: dict[str, tuple[bytes, str]] = {}  # name -> (bytes, content type)
        self._submitted = 0

    def _add_routes(self, app: web.Application) -> None:
        requests = "/{owner}/{app}/requests/{id}"
        app.router.add_get("/files/{name}", self._file, name="file")
        app.router.add_get(requests + "/status", self._status, name="status")
        app.router.add_put(requests + "/cancel", self._cancel, name="cancel")
        app.router.add_get(requests, self._result, name="result")
        # Last: it matches any POST with two or more path segments.
        app.router.add_post(r"/{owner}/{app}{subpath:(?:/.*)?}", self._submit, name="submit")

    # --- the queue API ---

    async def _submit(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        try:
            params = await request.json()
        except ValueError:
            raise _detail(
                422, [{"loc": ["body"], "msg": "Invalid JSON body", "type": "value_error"}]
            ) from None
        if not isinstance(params, dict):
            raise _detail(
                422, [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}]
            )
        image_url = params.get("image_url")
        if image_url is None:
            raise _body_error("image_url", "field required", "value_error.missing")
        if not isinstance(image_url, str):
            raise _body_error("image_url", "str type expected", "type_error.str")
        if not image_url.startswith(("data:", "http://", "https://")):
            raise _body_error("image_url", "invalid or missing URL scheme", "value_error.url.scheme")

        app = f"{request.match_info['owner']}/{request.match_info['app']}"
        endpoint_id = app + request.match_info["subpath"]
        factor = _upscaler_factor(params) if endpoint_id == UPSCALER else None
        queued = _Queued(
            request_id=str(uuid.uuid4()),
            app=app,
            endpoint_id=endpoint_id,
            order=self._submitted,
            polls_left=self.polls_until_done,
        )
        self._submitted += 1
        await self._run(queued, image_url, sync_mode=params.get("sync_mode") is True, factor=factor)
        self.queue[queued.request_id] = queued
        body = {
            "request_id": queued.request_id,
            **self._urls(queued),
            "status": "IN_QUEUE",
            "queue_position": self._position(queued),
        }
        return web.json_response(body, headers={"x-fal-request-id": queued.request_id})

    async def _run(
        self, queued: _Queued, image_url: str, *, sync_mode: bool, factor: float | None = None
    ) -> None:
        """The model's work, done at submit (the queue only delays the answer): an image or an error."""
        try:
            source = await self._load(image_url)
            if factor is not None:
                png, width, height = await asyncio.to_thread(_upscale, source, factor)
                queued.extra = {"seed": UPSCALER_SEED, "timings": {"inference": INFERENCE_TIME}}
            else:
                png, width, height = await asyncio.to_thread(_remove_background, source)
        except _Unloadable as exc:
            queued.error, queued.error_type, queued.input_error = exc.error, exc.error_type, True
            return
        if self.fail_requests:
            queued.error, queued.error_type = _INJECTED_ERROR, "internal_server_error"
            return
        name = f"{queued.request_id}.png"
        self.files[name] = (png, "image/png")
        url = f"{self.origin}/files/{name}"
        if sync_mode:  # rembg's sync_mode returns the image inline
            url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        queued.image = {
            "url": url,
            "content_type": "image/png",
            "file_name": name,
            "file_size": len(png),
            "width": width,
            "height": height,
        }

    async def _status(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        queued = self._find(request)
        logs_wanted = request.query.get("logs", "1").lower() not in ("0", "false")
        common = {"request_id": queued.request_id, "response_url": self._urls(queued)["response_url"]}
        if not queued.done:
            index = queued.polls_seen
            queued.polls_seen += 1
            queued.polls_left -= 1
            if index == 0:
                body = {"status": "IN_QUEUE", "queue_position": self._position(queued), **common}
                return web.json_response(body, status=202)
            queued.logs.append(_log(f"Removing background: step {index}"))
            body = {"status": "IN_PROGRESS", "logs": queued.logs if logs_wanted else None, **common}
            return web.json_response(body, status=202)
        if not queued.finished_logged:
            queued.finished_logged = True
            message = f"Failed: {queued.error}" if queued.failed else "Finished"
            queued.logs.append(_log(message, "ERROR" if queued.failed else "INFO"))
        body = {"status": "COMPLETED", "logs": queued.logs if logs_wanted else None, **common}
        if queued.failed:
            body |= {"error": queued.error, "error_type": queued.error_type, "metrics": {}}
        else:
            body["metrics"] = {"inference_time": INFERENCE_TIME}
        return web.json_response(body)

    async def _result(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        queued = self._find(request)
        if not queued.done:
            raise _detail(400, "Request is still in progress")
        if queued.input_error:
            raise _body_error("image_url", queued.error or "", queued.error_type or "")
        if queued.failed:
            raise _detail(422, queued.error)
        return web.json_response({"image": queued.image, **queued.extra})

    async def _cancel(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        queued = self._find(request)
        if queued.done:
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        queued.cancelled = True
        if not queued.failed:
            queued.error, queued.error_type = _CANCELLED_ERROR, "request_cancelled"
            queued.image = None
            self.files.pop(f"{queued.request_id}.png", None)
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    async def _file(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["name"])
        if stored is None:
            raise _detail(404, "File not found")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type)

    # --- helpers ---

    def _authenticate(self, request: web.Request) -> None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Key" or not key.strip():
            raise _detail(401, "Missing credentials: use the header 'Authorization: Key <FAL_KEY>'.")
        if key.strip() != self.api_key:
            raise _detail(401, "Invalid credentials: the key is not valid.")

    def _find(self, request: web.Request) -> _Queued:
        queued = self.queue.get(request.match_info["id"])
        app = f"{request.match_info['owner']}/{request.match_info['app']}"
        if queued is None or queued.app != app:  # an id asked for under another app is unknown there
            raise _detail(404, f"Request {request.match_info['id']} not found")
        return queued

    def _urls(self, queued: _Queued) -> dict[str, str]:
        response_url = f"{self.origin}/{queued.app}/requests/{queued.request_id}"
        return {
            "response_url": response_url,
            "status_url": response_url + "/status",
            "cancel_url": response_url + "/cancel",
        }

    def _position(self, queued: _Queued) -> int:
        """0-based: how many earlier requests are still waiting for their first poll."""
        ahead = [
            q for q in self.queue.values() if q.order < queued.order and not q.done and q.polls_seen == 0
        ]
        return len(ahead)

    async def _load(self, image_url: str) -> Image.Image:
        if image_url.startswith("data:"):
            header, _, payload = image_url.partition(",")
            if not header.endswith(";base64"):
                raise _Unloadable(_LOAD_ERROR, "image_load_error")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise _Unloadable(_LOAD_ERROR, "image_load_error") from None
        else:
            data = await _download(image_url)
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (UnidentifiedImageError, OSError):
            raise _Unloadable(_LOAD_ERROR, "image_load_error") from None
        return image

    # --- FakeServer hooks ---

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        if fault.kind == "rate_limited":
            # PROVIDERS 2.6 found no Retry-After on fal's 429s; the fake sends one only when asked to.
            body = {"detail": "Too many requests: the rate limit was exceeded."}
            return web.json_response(body, status=429, headers=fault.rate_limit_headers())
        if fault.kind == "server_error":
            return web.json_response({"detail": "Internal Server Error"}, status=fault.status)
        if fault.kind == "bad_payload":
            return _bad_payload(endpoint)
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        try:
            self._authenticate(request)  # the key is checked before the path, so GET / probes a key
        except ApiError as refused:
            return refused
        return _detail(status, reason)

    def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        request_id = request.match_info.get("id")
        if request_id is not None:
            response.headers.setdefault("x-fal-request-id", request_id)


def _bad_payload(endpoint: str) -> web.Response:
    """HTTP 200 and valid JSON (or bytes) that a client following PROVIDERS 2 cannot use."""
    if endpoint == "file":
        return web.Response(body=b"this is not a PNG", content_type="image/png")
    bodies: dict[str, dict[str, Any]] = {
        "submit": {"status": "IN_QUEUE"},  # no request_id and no URLs
        "status": {"status": "SOMETHING_ELSE"},  # fal_client raises "Unknown status"
        "result": {"images": []},  # no `image`
        "cancel": {"status": "MAYBE"},
    }
    return web.json_response(bodies[endpoint])


def _log(message: str, level: str = "INFO") -> dict[str, str]:
    timestamp = datetime.now(UTC).isoformat()
    return {"message": message, "level": level, "source": "USER", "timestamp": timestamp}


async def _download(url: str) -> bytes:
    timeout = aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_SECONDS)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
            if resp.status != 200:
                raise _Unloadable(_DOWNLOAD_ERROR, "file_download_error")
            data = await resp.content.read(MAX_DOWNLOAD_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError):
        raise _Unloadable(_DOWNLOAD_ERROR, "file_download_error") from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise _Unloadable("The file is too large.", "file_too_large")
    return data


def _upscaler_factor(params: dict[str, Any]) -> float:
    """Checks the upscaler's inputs as its schema does (422 with a `loc`); its upscale factor."""
    prompt = params.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise _body_error("prompt", "str type expected", "type_error.str")
    values = {}
    for name, (low, high, default) in _UPSCALER_NUMBERS.items():
        value = params.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _body_error(name, "value is not a valid float", "type_error.float")
        if not low <= value <= high:
            raise _body_error(
                name, f"ensure this value is between {low:g} and {high:g}", "value_error.number.not_in_range"
            )
        values[name] = float(value)
    return values["upscale_factor"]


def _upscale(source: Image.Image, factor: float) -> tuple[bytes, int, int]:
    """The image `factor` times larger (rounded), as an RGB PNG; (png, w, h)."""
    width, height = round(source.width * factor), round(source.height * factor)
    larger = source.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    larger.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue(), width, height


def _remove_background(source: Image.Image) -> tuple[bytes, int, int]:
    """Pixels within BACKGROUND_TOLERANCE of the top-left colour become transparent; (png, w, h)."""
    rgba = source.convert("RGBA")
    rgb = rgba.convert("RGB")
    corner = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    red, green, blue = ImageChops.difference(rgb, corner).split()
    distance = ImageChops.lighter(ImageChops.lighter(red, green), blue)  # the largest channel difference
    foreground = distance.point(lambda d: 255 if d > BACKGROUND_TOLERANCE else 0)
    rgba.putalpha(ImageChops.multiply(rgba.getchannel("A"), foreground))  # keep earlier transparency
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue(), rgba.width, rgba.height


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Fake fal.ai queue API (background removal) for tests.", DEFAULT_API_KEY)
    parser.add_argument("--polls-until-done", type=int, default=2)
    parser.add_argument("--fail-requests", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeFal(
        api_key=args.api_key, polls_until_done=args.polls_until_done, fail_requests=args.fail_requests
    )
    asyncio.run(serve(fake, args.host, args.port))


if __name__ == "__main__":
    main()
