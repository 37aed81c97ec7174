"""A fake OpenAI Images API (generations and edits) and Responses API for providers-service tests.

It is a real aiohttp server that follows /work/shared/PROVIDERS.md section 1: routes under /v1 so the
real SDK works unchanged (`openai.AsyncOpenAI(api_key=..., base_url=fake.url)`), Bearer auth, the
`{"error": {"message", "type", "param", "code"}}` body for every failure, `x-request-id` on every answer,
and GPT-image-style base64 results (`ImagesResponse`).

The pictures are real but cheap: a generation is a two-colour gradient whose colours are derived from the
prompt (so the same prompt gives the same image); an edit is the first uploaded image with its colours
inverted, resized to `size` when one is given.

An edit takes its images as one `image` part or repeated `image[]` parts (PROVIDERS 1.3), and is refused
(400, as OpenAI does) without one, with more than 16, with one that is not a PNG/JPEG/WEBP or is 50 MB or
more, or with several for a model other than a GPT image model. `edits` records each edit that reached the
handler: its prompt, model and image parts in the order they arrived (field name, filename, type, size,
SHA-256), so a test sees which images went, in which order.

Switches:
- A prompt containing the word `forbidden` (any case) is refused like the safety system does: HTTP 400,
  code `moderation_blocked`, type `image_generation_user_error` (PROVIDERS 1.5).
- `GET /v1/models` lists the known image models (with the same auth), for health checks.
- `faults` (see faults.py) on the endpoints "generations", "edits", "models" and "responses": 429 with
  code `rate_limit_exceeded` and the `retry-after(-ms)` headers the SDK obeys (1.7), 5xx `server_error`,
  hangs, and `bad_payload` = a 200 whose `data[0].b64_json` (for "responses": whose image
  `result` and partial image, streamed when the request asked for a stream) is not base64.

`POST /v1/responses` (PROVIDERS 1.8) answers `"Echo: <the last user text>"`, plus
` | context: <the first user text of the chain>` when it continues a `previous_response_id` (kept for
every response made with `store` not false; another id is a 400 `previous_response_not_found`), plus
` | images: <n>` for n input images. With the `image_generation` tool the output also holds an
`image_generation_call` whose `result` is a gradient picture, after `partial_images` blocky partial
images when streamed. `stream: true` answers the SDK's server-sent events, one text delta per word.

Switches for the Responses stream (attributes, also under /_control/settings): the word `slowly` in
the last user text, or `delta_delay_seconds`, paces each delta and partial image (200 ms for `slowly`);
`fail_stream_after_deltas` >= 0 ends streams after that many deltas with `response.failed` (or an
`error` event when `stream_failure` is "error", the same nested in `{"error": {...}}` for
"error_envelope"), error code `stream_failure_code`.

What tests observe: `responses_requests` (each body that reached /v1/responses, in order; faulted
calls are only in `requests`), `in_flight` / `max_in_flight` (calls to the generation endpoints, images
and responses together, being served now / at most at once, latency included) and `disconnected`
(response streams whose client went away before the end).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from faults import ApiError, FakeServer, Fault, cli_parser, serve
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_API_KEY = "sk-test-fake-openai"
MODERATION_WORD = "forbidden"
MODELS = (
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "gpt-image-2",
    "gpt-image-2-2026-04-21",
    "chatgpt-image-latest",
    "dall-e-2",
    "dall-e-3",
)
FIXED_SIZES = {"256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792"}
DEFAULT_SIZE = (1024, 1024)  # what `auto` (or no size) means for a generation
MAX_PROMPT = 32000
MAX_EDIT_IMAGES = 16
MAX_EDIT_IMAGE_BYTES = 50 * 1024 * 1024  # "each must be png/webp/jpg under 50 MB" (PROVIDERS 1.3)
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_SIZE_RE = re.compile(r"(\d+)x(\d+)")
_MODERATION_RE = re.compile(rf"\b{MODERATION_WORD}\b", re.IGNORECASE)
# Responses API
GENERATION_ENDPOINTS = ("generations", "edits", "responses")  # what in_flight / max_in_flight count
SLOW_WORD = "slowly"
SLOW_DELTA_SECONDS = 0.2
MAX_PARTIAL_IMAGES = 3
INPUT_IMAGE_TOKENS = 85  # a low-detail input image; only the shape of `usage` matters here
OUTPUT_IMAGE_TOKENS = 272
_SLOW_RE = re.compile(rf"\b{SLOW_WORD}\b", re.IGNORECASE)
_DATA_URL_RE = re.compile(r"data:image/[\w.+-]+;base64,(.*)", re.DOTALL)
_REQUEST_BODY: web.RequestKey[Any] = web.RequestKey("responses_body", object)  # see FakeOpenAI._answer
# Events that wait `delta_delay_seconds` (or the slow pace) before they are sent.
_PACED_EVENTS = ("response.output_text.delta", "response.image_generation_call.partial_image")


@dataclass(frozen=True)
class EditImage:
    """One image part of an edit, as it arrived."""

    field: str  # "image" (one file) or "image[]" (a list)
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class RecordedEdit:
    """An edit request that reached the handler (faulted calls are only in `requests`)."""

    prompt: str | None
    model: str | None
    images: tuple[EditImage, ...]


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> ApiError:
    return ApiError(status, {"error": {"message": message, "type": type, "param": param, "code": code}})


def _invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return _error(400, message, param=param, code=code)


def _missing(param: str) -> ApiError:
    return _invalid(param, f"Missing required parameter: '{param}'.", "missing_required_parameter")


class FakeOpenAI(FakeServer):
    ENDPOINTS = ("generations", "edits", "models", "responses")
    API_PREFIX = "/v1"
    SETTINGS = ("delta_delay_seconds", "fail_stream_after_deltas", "stream_failure", "stream_failure_code")

    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__(api_key=api_key)
        # Switches for the Responses stream (see the module docstring).
        self.delta_delay_seconds = 0.0
        self.fail_stream_after_deltas = -1  # < 0: streams do not fail
        self.stream_failure = "response.failed"  # or "error", or "error_envelope"
        self.stream_failure_code = "server_error"
        # What tests observe.
        self.responses_requests: list[dict[str, Any]] = []  # bodies that reached the handler, in order
        self.edits: list[RecordedEdit] = []  # edits that reached the handler, in order
        self.in_flight = 0  # generation calls (images and responses) being served right now…
        self.max_in_flight = 0  # …and the most there ever were at once
        self.disconnected = 0  # response streams whose client went away before the end
        self.first_delta_at: dict[str, float] = {}  # response id → time.monotonic() of its first text delta
        self._turns: dict[str, _Turn] = {}

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/images/generations", self._generations, name="generations")
        app.router.add_post("/v1/images/edits", self._edits, name="edits")
        app.router.add_post("/v1/responses", self._responses, name="responses")
        # Not an Images call, but what a health check lists: it proves the key without spending any.
        app.router.add_get("/v1/models", self._models, name="models")

    # --- the API ---

    async def _generations(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        params = await _json_object(request)
        prompt, model, n, size, fmt, background = _common_params(params)
        size = size or DEFAULT_SIZE
        images = await asyncio.to_thread(_render_generations, prompt, n, size, fmt, background)
        return _images_response(images, prompt, size, fmt, background, params.get("quality"), model)

    async def _edits(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        if request.content_type != "multipart/form-data":
            message = f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data."
            raise _error(400, message)
        try:
            form = await request.post()
        except ValueError:
            raise _error(400, "Could not parse the multipart form body.") from None
        params = {k: v for k, v in form.items() if isinstance(v, str)}
        # One file is sent as `image`, a list as repeated `image[]` (PROVIDERS 1.3); kept in arrival order.
        uploads = [
            (name, f) for name, f in form.items() if name in ("image", "image[]") and not isinstance(f, str)
        ]
        contents = [upload.file.read() for _, upload in uploads]
        self.edits.append(
            RecordedEdit(
                params.get("prompt"),
                params.get("model"),
                tuple(
                    EditImage(
                        name,
                        upload.filename,
                        upload.content_type,
                        len(data),
                        hashlib.sha256(data).hexdigest(),
                    )
                    for (name, upload), data in zip(uploads, contents, strict=True)
                ),
            )
        )
        prompt, model, n, size, fmt, background = _common_params(params)
        if not uploads:
            raise _missing("image")
        if len(uploads) > MAX_EDIT_IMAGES:
            raise _invalid("image", f"Too many images: at most {MAX_EDIT_IMAGES} are allowed.")
        if len(uploads) > 1 and not model.startswith(("gpt-image", "chatgpt-image")):
            raise _invalid("image", f"Only GPT image models take several images; {model} takes one.")
        for index, data in enumerate(contents, 1):
            if len(data) >= MAX_EDIT_IMAGE_BYTES:
                raise _invalid("image", f"Image {index} is too large: each image must be under 50 MB.")
        sources = [_open_upload(data, index) for index, data in enumerate(contents, 1)]
        mask = form.get("mask")
        if mask is not None and not isinstance(mask, str):
            _open_upload(mask.file.read(), 0, param="mask")
        size = size or sources[0].size  # no size (or `auto`): the edit keeps the first image's size
        images = await asyncio.to_thread(_render_edits, sources[0], n, size, fmt, background)
        return _images_response(images, prompt, size, fmt, background, params.get("quality"), model)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        self._authenticate(request)
        params = await _json_object(request)
        self.responses_requests.append(params)
        ask = _responses_params(params)
        chain = self._chain(ask.previous_response_id)
        text = _echo(ask, chain)
        pictures = []
        if ask.image_tool is not None:
            picture = await asyncio.to_thread(_render_tool_image, ask.last_text, ask.image_tool)
            pictures.append(picture)
        context_words = sum(_words(t) for turn in chain for t in (*turn.user_texts, turn.output_text))
        reply = _Reply(
            id="resp_" + secrets.token_hex(24),
            model=ask.model,
            text=text,
            pictures=pictures,
            params=params,
            input_tokens=ask.input_tokens + context_words,
        )
        failing = ask.stream and self.fail_stream_after_deltas >= 0
        if not failing:  # a failed response cannot be continued
            self._turns[reply.id] = _Turn(reply.id, ask.previous_response_id, ask.store, ask.user_texts, text)
        if not ask.stream:
            return web.json_response(reply.body("completed"))
        frames = _frames(
            reply,
            fail_after=self.fail_stream_after_deltas if failing else None,
            failure=self.stream_failure,
            code=self.stream_failure_code,
        )
        delay = SLOW_DELTA_SECONDS if _SLOW_RE.search(ask.last_text) else self.delta_delay_seconds
        return await self._stream(request, frames, delay)

    def _chain(self, previous_response_id: str | None) -> list[_Turn]:
        """The stored turns a `previous_response_id` continues, first turn first (400 when unknown)."""
        turns: list[_Turn] = []
        next_id = previous_response_id
        while next_id is not None:
            turn = self._turns.get(next_id)
            if turn is None or not turn.store:  # `store: false` responses cannot be continued
                message = f"Previous response with id '{previous_response_id}' not found."
                raise _invalid("previous_response_id", message, "previous_response_not_found")
            turns.append(turn)
            next_id = turn.previous_response_id
        return turns[::-1]

    async def _stream(
        self, request: web.Request, frames: list[dict[str, Any]], delay: float
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        self._decorate(request, response)  # now: the middleware's own call comes after the headers left
        try:
            await response.prepare(request)
            for frame in frames:
                if frame["type"] in _PACED_EVENTS:
                    await self.pause(delay)
                if frame["type"] == "response.output_text.delta":  # for bench/studio_overhead.py
                    self.first_delta_at.setdefault(frames[0]["response"]["id"], time.monotonic())
                await response.write(_sse(frame))
            await response.write_eof()
        except ConnectionError:  # aiohttp: "Cannot write to closing transport" once the client has gone
            self.disconnected += 1
        return response

    async def _models(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        models = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "system"} for m in MODELS]
        return web.json_response({"object": "list", "data": models})

    def _authenticate(self, request: web.Request) -> None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            raise _error(401, message, code="invalid_api_key")
        key = key.strip()
        if not secrets.compare_digest(key.encode(), self.api_key.encode()):
            masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:] if len(key) > 8 else "*" * len(key)
            message = (
                f"Incorrect API key provided: {masked}. "
                "You can find your API key at https://platform.openai.com/account/api-keys."
            )
            raise _error(401, message, code="invalid_api_key")

    # --- FakeServer hooks ---

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        if fault.kind == "rate_limited":
            message = (
                "Rate limit reached for requests in organization org-fake on images per min. "
                "Please try again later."
            )
            headers = {"x-ratelimit-remaining-requests": "0", **fault.rate_limit_headers()}
            if fault.retry_after is not None:
                headers["x-ratelimit-reset-requests"] = f"{fault.retry_after:g}s"
            error = _error(429, message, type="requests", code="rate_limit_exceeded")
            return web.json_response(error.body, status=429, headers=headers)
        if fault.kind == "server_error":
            message = "The server had an error while processing your request. Sorry about that!"
            return _error(fault.status, message, type="server_error").response()
        if fault.kind == "bad_payload":
            if endpoint == "models":
                return web.json_response({"object": "list", "data": None})
            if endpoint == "responses":
                return _bad_reply(request)
            # Valid JSON in the right shape, but the image is not base64 (even to a lenient decoder).
            body = {
                "created": int(time.time()),
                "data": [{"b64_json": "not base64!"}],
                "output_format": "png",
            }
            return web.json_response(body)
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

    async def _answer(
        self, request: web.Request, handler: Handler, endpoint: str | None
    ) -> web.StreamResponse:
        # Counted around the fault plan too: added latency is time a caller spends waiting on the call.
        if endpoint not in GENERATION_ENDPOINTS:
            return await super()._answer(request, handler, endpoint)
        if endpoint == "responses":
            request[_REQUEST_BODY] = await _json_or_none(
                request
            )  # for a bad_payload, rendered without awaiting
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await super()._answer(request, handler, endpoint)
        finally:
            self.in_flight -= 1

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        return _error(status, f"Invalid URL ({request.method} {request.path})")

    def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("x-request-id", "req_" + secrets.token_hex(16))
        response.headers.setdefault("openai-version", "2020-10-01")
        response.headers.setdefault("openai-processing-ms", "7")


# --- parameters ---------------------------------------------------------------------------------


def _common_params(params: dict[str, Any]) -> tuple[str, str, int, tuple[int, int] | None, str, str]:
    """(prompt, model, n, size or None for auto, output_format, background), or the API's 400."""
    prompt = params.get("prompt")
    if prompt is None or prompt == "":
        raise _missing("prompt")
    if not isinstance(prompt, str):
        raise _invalid("prompt", "Invalid type for 'prompt': expected a string.", "invalid_type")
    if len(prompt) > MAX_PROMPT:
        message = f"Invalid 'prompt': string too long. Expected a maximum length of {MAX_PROMPT}."
        raise _invalid("prompt", message, "string_above_max_length")
    model = params.get("model") or "dall-e-2"
    if model not in MODELS:
        raise _invalid("model", f"Invalid value: '{model}'. Supported values are: {', '.join(MODELS)}.")
    n = _int_param(params, "n", 1)
    if not 1 <= n <= 10:
        raise _invalid("n", f"Invalid 'n': {n} is not between 1 and 10.", "integer_out_of_range")
    size = _size_param(params.get("size"), model)
    fmt = params.get("output_format") or "png"
    if fmt not in OUTPUT_FORMATS:
        raise _invalid("output_format", f"Invalid value: '{fmt}'. Supported values are: png, jpeg, webp.")
    background = params.get("background") or "auto"
    if background not in ("transparent", "opaque", "auto"):
        message = f"Invalid value: '{background}'. Supported values are: transparent, opaque, auto."
        raise _invalid("background", message)
    if background == "transparent" and fmt == "jpeg":
        raise _invalid("background", "Transparent background requires output_format png or webp.")
    if _MODERATION_RE.search(prompt):
        raise _moderation_blocked()
    return prompt, model, n, size, fmt, background


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise _invalid(name, f"Invalid type for '{name}': expected an integer.", "invalid_type")
    try:
        return int(value)  # multipart sends numbers as text
    except (TypeError, ValueError):
        raise _invalid(name, f"Invalid type for '{name}': expected an integer.", "invalid_type") from None


def _size_param(value: Any, model: str) -> tuple[int, int] | None:
    if value is None or value == "" or value == "auto":
        return None
    match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        width, height = int(match.group(1)), int(match.group(2))
        if value in FIXED_SIZES:
            return width, height
        # gpt-image-2 takes any multiple of 16 up to 3840x2160 (PROVIDERS 1.2).
        free_form = width % 16 == 0 and height % 16 == 0 and max(width, height) <= 3840
        if (
            model.startswith("gpt-image-2")
            and free_form
            and min(width, height) <= 2160
            and min(width, height)
        ):
            return width, height
    message = f"Invalid value: '{value}'. Supported values are: {', '.join(sorted(FIXED_SIZES))} and 'auto'."
    raise _invalid("size", message)


def _moderation_blocked() -> ApiError:
    message = (
        "Your request was rejected by the safety system. If you believe this is an error, contact us at "
        "help.openai.com and include the request ID."
    )
    error = _error(400, message, type="image_generation_user_error", code="moderation_blocked")
    # Seen in real answers next to the four spec fields (PROVIDERS 1.5).
    error.body["error"]["moderation_details"] = {"moderation_stage": "input", "categories": ["fake"]}
    return error


def _open_upload(data: bytes, index: int, *, param: str = "image") -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("PNG", "JPEG", "WEBP"):
            raise ValueError(image.format)
        image.load()
    except (UnidentifiedImageError, ValueError, OSError):
        which = f"{param} {index}" if index else param
        message = f"Invalid image file or mode for {which}, please check your image file."
        raise _invalid(param, message, "invalid_image_file") from None
    return image


# --- pictures -----------------------------------------------------------------------------------


def _colours(seed: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    digest = hashlib.sha256(seed.encode()).digest()
    return (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])


def _render_generations(prompt: str, n: int, size: tuple[int, int], fmt: str, background: str) -> list[bytes]:
    # Each of the n images differs, deterministically.
    return [_encode(_gradient(f"{prompt}\n{index}", size, background), fmt) for index in range(n)]


def _gradient(seed: str, size: tuple[int, int], background: str) -> Image.Image:
    top, bottom = _colours(seed)
    gradient = Image.linear_gradient("L").resize(size)
    image = Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient)
    if background == "transparent":
        image.putalpha(gradient)  # fades out towards the top, so transparency is visible
    return image


def _render_edits(
    source: Image.Image, n: int, size: tuple[int, int], fmt: str, background: str
) -> list[bytes]:
    rgba = source.convert("RGBA")
    edited = ImageOps.invert(rgba.convert("RGB"))
    if source.has_transparency_data and background != "opaque":
        edited.putalpha(rgba.getchannel("A"))  # the inverted picture keeps the input's cut-outs
    if size != edited.size:
        edited = edited.resize(size)
    encoded = _encode(edited, fmt)
    return [encoded] * n


def _encode(image: Image.Image, fmt: str) -> bytes:
    if fmt == "jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    options = {"compress_level": 1} if fmt == "png" else {}  # speed over size: these are test images
    image.save(buffer, OUTPUT_FORMATS[fmt], **options)
    return buffer.getvalue()


def _images_response(
    images: list[bytes],
    prompt: str,
    size: tuple[int, int],
    fmt: str,
    background: str,
    quality: Any,
    model: str,
) -> web.Response:
    text_tokens = len(prompt.split())
    image_tokens = 272 * len(images)  # roughly a medium 1024x1024 image; only the shape matters here
    body = {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(image).decode("ascii")} for image in images],
        "background": "transparent" if background == "transparent" else "opaque",
        "output_format": fmt,
        "quality": quality if quality in ("low", "medium", "high") else "medium",
        "size": f"{size[0]}x{size[1]}",
        "usage": {
            "input_tokens": text_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
            "output_tokens": image_tokens,
            "output_tokens_details": {"text_tokens": 0, "image_tokens": image_tokens},
            "total_tokens": text_tokens + image_tokens,
        },
    }
    return web.json_response(body, headers={"openai-model": model})


# --- the Responses API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    """What the fake remembers of a response it made, for a later `previous_response_id`."""

    id: str
    previous_response_id: str | None
    store: bool
    user_texts: tuple[str, ...]
    output_text: str


@dataclass(frozen=True)
class _ImageTool:
    partial_images: int
    size: tuple[int, int]
    output_format: str
    background: str
    quality: str


@dataclass(frozen=True)
class _Ask:
    """A checked `POST /v1/responses` body."""

    model: str
    user_texts: tuple[str, ...]  # one per user message of `input`, each on one line
    images: int  # input_image parts
    previous_response_id: str | None
    store: bool
    stream: bool
    image_tool: _ImageTool | None
    input_tokens: int

    @property
    def last_text(self) -> str:
        return self.user_texts[-1] if self.user_texts else ""


@dataclass(frozen=True)
class _Picture:
    """One image_generation_call: the final image and its partial images, base64."""

    id: str
    result: str
    partials: tuple[str, ...]
    tool: _ImageTool


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        params = await request.json()
    except ValueError:
        raise _error(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(params, dict):
        raise _error(400, "The body of your request must be a JSON object.")
    return params


async def _json_or_none(request: web.Request) -> Any:
    try:
        return await request.json()  # already read (and cached) by the request log
    except ValueError:
        return None


def _responses_params(params: dict[str, Any]) -> _Ask:
    model = params.get("model")
    if model is None or model == "":
        raise _missing("model")
    if not isinstance(model, str):
        raise _invalid("model", "Invalid type for 'model': expected a string.", "invalid_type")
    if params.get("input") in (None, "", []):
        raise _missing("input")
    user_texts, images = _read_input(params["input"])
    if not user_texts and not images:
        raise _invalid("input", "Invalid 'input': there is no user message.")
    instructions = _optional_str(params, "instructions")
    previous_response_id = _optional_str(params, "previous_response_id")
    store = _bool_param(params, "store", True)
    stream = _bool_param(params, "stream", False)
    metadata = params.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _invalid("metadata", "Invalid type for 'metadata': expected an object.", "invalid_type")
    tools = params.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _invalid("tools", "Invalid type for 'tools': expected an array.", "invalid_type")
    image_tool = None
    for index, tool in enumerate(tools or ()):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise _invalid(f"tools[{index}]", f"Invalid 'tools[{index}]': expected a tool object.")
        if tool["type"] == "image_generation":
            image_tool = _image_tool(tool, index)
    last_text = user_texts[-1] if user_texts else ""
    if image_tool is not None and _MODERATION_RE.search(last_text):
        raise _moderation_blocked()
    words = _words(instructions or "") + sum(_words(text) for text in user_texts)
    return _Ask(
        model,
        tuple(user_texts),
        images,
        previous_response_id,
        store,
        stream,
        image_tool,
        words + INPUT_IMAGE_TOKENS * images,
    )


def _read_input(value: Any) -> tuple[list[str], int]:
    """(the text of each user message, the number of input images). Other roles and item types are
    accepted and left out: the echo answers the user."""
    if isinstance(value, str):
        return [_one_line(value)], 0
    if not isinstance(value, list):
        raise _invalid("input", "Invalid type for 'input': expected a string or an array.", "invalid_type")
    texts: list[str] = []
    images = 0
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise _invalid(
                f"input[{i}]", f"Invalid type for 'input[{i}]': expected an object.", "invalid_type"
            )
        if item.get("type", "message") != "message" or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(_one_line(content))
            continue
        if not isinstance(content, list):
            message = f"Invalid type for 'input[{i}].content': expected a string or an array."
            raise _invalid(f"input[{i}].content", message, "invalid_type")
        parts: list[str] = []
        for j, part in enumerate(content):
            param = f"input[{i}].content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "input_text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif kind == "input_image":
                _check_image_url(part.get("image_url"), part.get("file_id"), param)
                images += 1
            elif kind != "input_file":
                raise _invalid(param, f"Invalid '{param}': unsupported content part.")
        if parts:
            texts.append(_one_line(" ".join(parts)))
    return texts, images


def _check_image_url(url: Any, file_id: Any, param: str) -> None:
    if isinstance(file_id, str) and file_id:
        return
    if not isinstance(url, str) or not url:
        raise _missing(f"{param}.image_url")
    if url.startswith(("https://", "http://")):
        return
    match = _DATA_URL_RE.fullmatch(url)
    if match is None:
        message = f"Invalid '{param}.image_url': expected a URL or a base64 data URL of an image."
        raise _invalid(f"{param}.image_url", message, "invalid_image_url")
    try:
        decode_b64_image(match.group(1))
    except ValueError:
        message = f"Invalid '{param}.image_url': the data URL is not a base64 image."
        raise _invalid(f"{param}.image_url", message, "invalid_base64_image") from None


def _image_tool(tool: dict[str, Any], index: int) -> _ImageTool:
    param = f"tools[{index}]"
    partial_images = _int_param(tool, "partial_images", 0)
    if not 0 <= partial_images <= MAX_PARTIAL_IMAGES:
        message = f"Invalid '{param}.partial_images': {partial_images} is not between 0 and 3."
        raise _invalid(f"{param}.partial_images", message, "integer_out_of_range")
    size = _size_param(tool.get("size"), str(tool.get("model") or "gpt-image-1")) or DEFAULT_SIZE
    fmt = tool.get("output_format") or "png"
    if fmt not in OUTPUT_FORMATS:
        message = f"Invalid value: '{fmt}'. Supported values are: png, jpeg, webp."
        raise _invalid(f"{param}.output_format", message)
    background = tool.get("background") or "auto"
    if background not in ("transparent", "opaque", "auto"):
        message = f"Invalid value: '{background}'. Supported values are: transparent, opaque, auto."
        raise _invalid(f"{param}.background", message)
    quality = tool.get("quality") or "auto"
    if quality not in ("low", "medium", "high", "auto"):
        message = f"Invalid value: '{quality}'. Supported values are: low, medium, high, auto."
        raise _invalid(f"{param}.quality", message)
    return _ImageTool(partial_images, size, fmt, background, quality)


def _optional_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(name, f"Invalid type for '{name}': expected a string.", "invalid_type")
    return value or None


def _bool_param(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(name, f"Invalid type for '{name}': expected a boolean.", "invalid_type")
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _words(text: str) -> int:
    return len(text.split())


def _echo(ask: _Ask, chain: list[_Turn]) -> str:
    """The answer: checkable from the request alone (and, when chained, from the chain's first turn)."""
    text = f"Echo: {ask.last_text}"
    if ask.previous_response_id is not None:
        first = chain[0].user_texts[0] if chain[0].user_texts else ""
        text += f" | context: {first}"
    if ask.images:
        text += f" | images: {ask.images}"
    return text


def _render_tool_image(seed: str, tool: _ImageTool) -> _Picture:
    image = _gradient(seed, tool.size, tool.background)
    partials = []
    for index in range(tool.partial_images):
        # Coarse first, finer later: blocky versions of the final picture, at its size.
        factor = 2 ** (tool.partial_images - index + 2)
        small = image.resize((max(tool.size[0] // factor, 1), max(tool.size[1] // factor, 1)))
        partials.append(_b64(_encode(small.resize(tool.size, Image.Resampling.NEAREST), tool.output_format)))
    result = _b64(_encode(image, tool.output_format))
    return _Picture("ig_" + secrets.token_hex(24), result, tuple(partials), tool)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class _Reply:
    """One response being made: the Response objects and items it is shown as, at each status."""

    id: str
    model: str
    text: str
    pictures: list[_Picture]
    params: dict[str, Any]  # the request, for the fields a Response echoes
    input_tokens: int

    def __post_init__(self) -> None:
        self.created_at = int(time.time())
        self.message_id = "msg_" + secrets.token_hex(24)

    def body(self, status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        done = status == "completed"
        tools = self.params.get("tools")
        metadata = self.params.get("metadata")
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "completed_at": int(time.time()) if done else None,
            "background": False,
            "error": error,
            "incomplete_details": None,
            "instructions": self.params.get("instructions"),
            "max_output_tokens": None,
            "metadata": metadata if isinstance(metadata, dict) else {},
            "model": self.model,
            "output": self.output() if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": self.params.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": self.params.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": tools if isinstance(tools, list) else [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": self.usage() if done else None,
            "user": None,
        }

    def output(self) -> list[dict[str, Any]]:
        return [self.message("completed"), *(self.image_call(p, "completed") for p in self.pictures)]

    def message(self, status: str) -> dict[str, Any]:
        content = [_output_text(self.text)] if status == "completed" else []
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def image_call(self, picture: _Picture, status: str) -> dict[str, Any]:
        tool = picture.tool
        done = status == "completed"
        return {
            "id": picture.id,
            "type": "image_generation_call",
            "status": status,
            "result": picture.result if done else None,
            "background": "transparent" if tool.background == "transparent" else "opaque",
            "output_format": tool.output_format,
            "quality": tool.quality if tool.quality != "auto" else "medium",
            "size": f"{tool.size[0]}x{tool.size[1]}",
            "revised_prompt": self.text if done else None,
        }

    def usage(self) -> dict[str, Any]:
        output_tokens = _words(self.text) + OUTPUT_IMAGE_TOKENS * len(self.pictures)
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + output_tokens,
        }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _frames(reply: _Reply, *, fail_after: int | None, failure: str, code: str) -> list[dict[str, Any]]:
    """The stream's events in order, numbered; with `fail_after`, it ends in a failure after that many
    text deltas (`response.failed`, or an `error` event when `failure` is "error" or "error_envelope")."""
    frames: list[dict[str, Any]] = []

    def add(kind: str, **fields: Any) -> None:
        frames.append({"type": kind, **fields})

    add("response.created", response=reply.body("in_progress"))
    add("response.in_progress", response=reply.body("in_progress"))
    text_at = {"item_id": reply.message_id, "output_index": 0, "content_index": 0}
    add("response.output_item.added", output_index=0, item=reply.message("in_progress"))
    add("response.content_part.added", **text_at, part=_output_text(""))
    words = reply.text.split(" ")
    for index, word in enumerate(words):
        if fail_after is not None and index >= fail_after:
            break
        add("response.output_text.delta", **text_at, delta=word if index == 0 else " " + word, logprobs=[])
    if fail_after is not None:
        message = "The fake was told to fail this stream."
        if failure == "error":  # the documented shape: its fields on the event
            add("error", code=code, message=message, param=None)
        elif failure == "error_envelope":  # also seen: nested, which makes the SDK raise a bare APIError
            add("error", error={"type": "server_error", "code": code, "message": message, "param": None})
        else:
            add("response.failed", response=reply.body("failed", {"code": code, "message": message}))
        return [{**frame, "sequence_number": n} for n, frame in enumerate(frames)]
    add("response.output_text.done", **text_at, text=reply.text, logprobs=[])
    add("response.content_part.done", **text_at, part=_output_text(reply.text))
    add("response.output_item.done", output_index=0, item=reply.message("completed"))
    for output_index, picture in enumerate(reply.pictures, 1):
        call_at = {"item_id": picture.id, "output_index": output_index}
        add(
            "response.output_item.added",
            output_index=output_index,
            item=reply.image_call(picture, "in_progress"),
        )
        add("response.image_generation_call.in_progress", **call_at)
        add("response.image_generation_call.generating", **call_at)
        for index, partial in enumerate(picture.partials):
            add(
                "response.image_generation_call.partial_image",
                **call_at,
                partial_image_index=index,
                partial_image_b64=partial,
                output_format=picture.tool.output_format,
            )
        add("response.image_generation_call.completed", **call_at)
        add(
            "response.output_item.done",
            output_index=output_index,
            item=reply.image_call(picture, "completed"),
        )
    add("response.completed", response=reply.body("completed"))
    return [{**frame, "sequence_number": n} for n, frame in enumerate(frames)]


def _sse(frame: dict[str, Any]) -> bytes:
    return f"event: {frame['type']}\ndata: {json.dumps(frame)}\n\n".encode()


def _bad_reply(request: web.Request) -> web.Response:
    """A completed response whose image is not base64 (streamed when the request asked for a stream)."""
    body = request.get(_REQUEST_BODY)
    params = body if isinstance(body, dict) else {}
    tool = _ImageTool(1, DEFAULT_SIZE, "png", "auto", "auto")
    picture = _Picture("ig_" + secrets.token_hex(24), "not base64!", ("not base64!",), tool)
    model = params.get("model") if isinstance(params.get("model"), str) else "gpt-5"
    reply = _Reply("resp_" + secrets.token_hex(24), model, "Echo: bad payload", [picture], params, 1)
    if params.get("stream") is True:
        frames = _frames(reply, fail_after=None, failure="", code="")
        return web.Response(body=b"".join(_sse(f) for f in frames), content_type="text/event-stream")
    return web.json_response(reply.body("completed"))


def decode_b64_image(data: str) -> Image.Image:
    """What a client does with `data[i].b64_json`; raises ValueError when it is not a base64 image."""
    try:
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a base64 image: {exc}") from exc
    return image


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Fake OpenAI Images API for tests.", DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    asyncio.run(serve(FakeOpenAI(api_key=args.api_key), args.host, args.port))


if __name__ == "__main__":
    main()
