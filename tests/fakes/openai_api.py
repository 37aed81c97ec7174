"""A fake OpenAI Images API (generations and edits) for providers-service tests.

It is a real aiohttp server that follows /work/shared/PROVIDERS.md section 1: routes under /v1 so the
real SDK works unchanged (`openai.AsyncOpenAI(api_key=..., base_url=fake.url)`), Bearer auth, the
`{"error": {"message", "type", "param", "code"}}` body for every failure, `x-request-id` on every answer,
and GPT-image-style base64 results (`ImagesResponse`).

The pictures are real but cheap: a generation is a two-colour gradient whose colours are derived from the
prompt (so the same prompt gives the same image); an edit is the first uploaded image with its colours
inverted, resized to `size` when one is given.

Switches:
- A prompt containing the word `forbidden` (any case) is refused like the safety system does: HTTP 400,
  code `moderation_blocked`, type `image_generation_user_error` (PROVIDERS 1.5).
- `GET /v1/models` lists the known image models (with the same auth), for health checks.
- `faults` (see faults.py) on the endpoints "generations", "edits" and "models": 429 with code
  `rate_limit_exceeded` and the `retry-after(-ms)` headers the SDK obeys (1.7), 5xx `server_error`,
  hangs, and `bad_payload` = a 200 whose `data[0].b64_json` is not base64.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import re
import secrets
import time
from typing import Any

from aiohttp import web
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
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
_SIZE_RE = re.compile(r"(\d+)x(\d+)")
_MODERATION_RE = re.compile(rf"\b{MODERATION_WORD}\b", re.IGNORECASE)


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
    ENDPOINTS = ("generations", "edits", "models")
    API_PREFIX = "/v1"

    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__(api_key=api_key)

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/images/generations", self._generations, name="generations")
        app.router.add_post("/v1/images/edits", self._edits, name="edits")
        # Not an Images call, but what a health check lists: it proves the key without spending any.
        app.router.add_get("/v1/models", self._models, name="models")

    # --- the API ---

    async def _generations(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        try:
            params = await request.json()
        except ValueError:
            raise _error(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(params, dict):
            raise _error(400, "The body of your request must be a JSON object.")
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
        # One file is sent as `image`, a list as repeated `image[]` (PROVIDERS 1.3).
        uploads = [
            f for name in ("image", "image[]") for f in form.getall(name, []) if not isinstance(f, str)
        ]
        prompt, model, n, size, fmt, background = _common_params(params)
        if not uploads:
            raise _missing("image")
        if len(uploads) > MAX_EDIT_IMAGES:
            raise _invalid("image", f"Too many images: at most {MAX_EDIT_IMAGES} are allowed.")
        sources = [_open_upload(upload.file.read(), index) for index, upload in enumerate(uploads, 1)]
        mask = form.get("mask")
        if mask is not None and not isinstance(mask, str):
            _open_upload(mask.file.read(), 0, param="mask")
        size = size or sources[0].size  # no size (or `auto`): the edit keeps the first image's size
        images = await asyncio.to_thread(_render_edits, sources[0], n, size, fmt, background)
        return _images_response(images, prompt, size, fmt, background, params.get("quality"), model)

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
            # Valid JSON in the right shape, but the image is not base64 (even to a lenient decoder).
            body = {
                "created": int(time.time()),
                "data": [{"b64_json": "not base64!"}],
                "output_format": "png",
            }
            return web.json_response(body)
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

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
    images = []
    for index in range(n):
        top, bottom = _colours(f"{prompt}\n{index}")  # each of the n images differs, deterministically
        gradient = Image.linear_gradient("L").resize(size)
        image = Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), gradient)
        if background == "transparent":
            image.putalpha(gradient)  # fades out towards the top, so transparency is visible
        images.append(_encode(image, fmt))
    return images


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
