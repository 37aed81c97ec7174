"""A fake Google Gemini API (`generateContent` of the image models) for providers-service tests.

A real aiohttp server shaped after the Gemini API reference (ai.google.dev/api/generate-content and the
image-generation guide, checked with the `search` tool; the JS SDK `@google/genai` the original used sends
the same JSON): `POST /v1beta/models/{model}:generateContent` with the key in `x-goog-api-key` (or the
`key` query parameter), a body of `contents` [{role: "user"|"model", parts: [{text} | {inlineData:
{mimeType, data}}]}] and `generationConfig` {responseModalities, imageConfig {aspectRatio, imageSize}}.
It answers `{candidates: [{content: {role: "model", parts: [...]}, finishReason: "STOP", index: 0}],
usageMetadata, modelVersion, responseId}`; errors are `{error: {code, message, status}}` (400
INVALID_ARGUMENT, 403 PERMISSION_DENIED for a bad key, 404 NOT_FOUND for an unknown model, 429
RESOURCE_EXHAUSTED, 500 INTERNAL).

What it checks, as the real API refuses it: the key; the model (`MODELS`); `contents` non-empty, each
turn's role `user` or `model`, roles alternating and the first and last turn the user's (the chat
history rule); each part exactly one of `text` / `inlineData` with base64 data of an image it can open;
`aspectRatio` one of the ten ratios and `imageSize` one of 1K/2K/4K; responseModalities from TEXT/IMAGE.

The reply: a text part (`"Here is <the last user text>"`) and, when IMAGE is asked for, one PNG whose
proportions follow `aspectRatio` (1:1 without one) and whose longest side is `imageSize`'s pixels divided
by `SCALE` (1K → 64 px, 2K → 128 px, 4K → 256 px): small, but proportional. A last user text containing
the word `blocked` answers like a safety block (`promptFeedback.blockReason: SAFETY`, no candidates).
`faults` on "generate" and "models" (see faults.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import uuid
from typing import Any

from aiohttp import web
from faults import ApiError, FakeServer, Fault, cli_parser, serve
from PIL import Image, UnidentifiedImageError

DEFAULT_API_KEY = "AIza-fake-gemini-key-0000"
MODELS = ("gemini-2.5-flash-image", "gemini-3-pro-image-preview")
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGE_SIZES = {"1K": 1024, "2K": 2048, "4K": 4096}
MODALITIES = ("TEXT", "IMAGE")
SCALE = 16  # the real sizes divided by this: 2K's 2048 px become 128 px
_BLOCKED_RE = re.compile(r"\bblocked\b", re.IGNORECASE)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip


def _error(status: int, message: str) -> ApiError:
    name = _STATUS_NAMES.get(status, "UNKNOWN")
    return ApiError(status, {"error": {"code": status, "message": message, "status": name}})


def _invalid(message: str) -> ApiError:
    return _error(400, message)


def image_size_of(aspect_ratio: str | None, image_size: str | None) -> tuple[int, int]:
    """The fake's picture size: the ratio's proportions, the longest side the size's pixels / SCALE."""
    width_part, _, height_part = (aspect_ratio or "1:1").partition(":")
    w, h = int(width_part), int(height_part)
    longest = IMAGE_SIZES[image_size or "1K"] // SCALE
    if w >= h:
        return longest, round(longest * h / w)
    return round(longest * w / h), longest


class FakeGemini(FakeServer):
    ENDPOINTS = ("generate", "models")
    API_PREFIX = ""  # the adapter adds /v1beta itself, as the base URL is Google's origin
    SETTINGS = ()

    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__(api_key=api_key)
        self.generated: list[dict[str, Any]] = []  # the accepted request bodies, in order

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{call}", self._generate, name="generate")
        app.router.add_get("/v1beta/models", self._models, name="models")

    # --- the API ---

    async def _generate(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        model, _, method = request.match_info["call"].partition(":")
        if method != "generateContent":
            raise _error(404, f"Method {method or '(none)'} is not found for models/{model}.")
        if model not in MODELS:
            raise _error(404, f"models/{model} is not found for API version v1beta, or is not supported.")
        try:
            body = await request.json()
        except ValueError:
            raise _invalid("Invalid JSON payload received.") from None
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        last_text = self._check_contents(body.get("contents"))
        modalities, aspect_ratio, image_size = self._check_config(body.get("generationConfig"))
        self.generated.append(body)
        response_id = uuid.uuid4().hex[:20]
        if _BLOCKED_RE.search(last_text):
            return web.json_response({
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                "modelVersion": model, "responseId": response_id,
            })  # fmt: skip
        parts: list[dict[str, Any]] = []
        if "TEXT" in modalities:
            parts.append({"text": f"Here is {last_text}"})
        if "IMAGE" in modalities:
            parts.append({"inlineData": {"mimeType": "image/png", "data": _png(aspect_ratio, image_size)}})
        return web.json_response({
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 1290, "totalTokenCount": 1302},
            "modelVersion": model,
            "responseId": response_id,
        })  # fmt: skip

    async def _models(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        return web.json_response({"models": [{"name": f"models/{m}"} for m in MODELS]})

    def _check_contents(self, contents: Any) -> str:
        """The turns as the API requires them; returns the last user turn's text."""
        if not isinstance(contents, list) or not contents:
            raise _invalid("* GenerateContentRequest.contents: contents is not specified")
        previous = None
        for index, turn in enumerate(contents):
            if not isinstance(turn, dict) or turn.get("role") not in ("user", "model"):
                raise _invalid(f"Please use a valid role: user, model. (contents[{index}])")
            if turn["role"] == previous:
                raise _invalid("Please ensure that multiturn requests alternate between user and model.")
            previous = turn["role"]
            parts = turn.get("parts")
            if not isinstance(parts, list) or not parts:
                raise _invalid(f"* contents[{index}].parts: contents.parts must not be empty.")
            for part in parts:
                self._check_part(part, index)
        if contents[0]["role"] != "user" or contents[-1]["role"] != "user":
            raise _invalid("Please ensure that the conversation starts and ends with a user turn.")
        texts = [p["text"] for p in contents[-1]["parts"] if isinstance(p, dict) and "text" in p]
        return " ".join(texts)

    def _check_part(self, part: Any, index: int) -> None:
        if not isinstance(part, dict) or len({"text", "inlineData"} & set(part)) != 1:
            raise _invalid(f"* contents[{index}].parts: a part holds exactly one of text or inlineData.")
        if "text" in part:
            if not isinstance(part["text"], str):
                raise _invalid(f"* contents[{index}].parts.text: a string is required.")
            return
        inline = part["inlineData"]
        if not isinstance(inline, dict) or not isinstance(inline.get("data"), str):
            raise _invalid(f"* contents[{index}].parts.inline_data.data: base64 data is required.")
        if inline.get("mimeType") not in ("image/png", "image/jpeg", "image/webp"):
            raise _invalid(f"Unsupported MIME type: {inline.get('mimeType')}")
        try:
            Image.open(io.BytesIO(base64.b64decode(inline["data"], validate=True))).verify()
        except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
            raise _invalid("Provided image is not valid.") from None

    def _check_config(self, config: Any) -> tuple[list[str], str | None, str | None]:
        if config is None:
            return ["TEXT"], None, None
        if not isinstance(config, dict):
            raise _invalid("* GenerateContentRequest.generation_config: an object is required.")
        modalities = config.get("responseModalities", ["TEXT"])
        if not isinstance(modalities, list) or not modalities or any(m not in MODALITIES for m in modalities):
            raise _invalid(f"* generation_config.response_modalities: use {', '.join(MODALITIES)}.")
        image_config = config.get("imageConfig") or {}
        if not isinstance(image_config, dict) or set(image_config) - {"aspectRatio", "imageSize"}:
            raise _invalid("* generation_config.image_config: unknown field.")
        aspect_ratio = image_config.get("aspectRatio")
        if aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS:
            allowed = ", ".join(ASPECT_RATIOS)
            raise _invalid(f"Unsupported aspect ratio: {aspect_ratio}. Use one of {allowed}.")
        image_size = image_config.get("imageSize")
        if image_size is not None and image_size not in IMAGE_SIZES:
            raise _invalid(f"Unsupported image size: {image_size}. Use 1K, 2K or 4K.")
        return modalities, aspect_ratio, image_size

    def _authenticate(self, request: web.Request) -> str:
        key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
        if not key:
            raise _error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity.",
            )
        if key != self.api_key:
            raise _error(400, "API key not valid. Please pass a valid API key.")
        return key

    # --- FakeServer hooks ---

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        if fault.kind == "rate_limited":
            error = _error(429, "Resource has been exhausted (e.g. check quota).")
            return web.json_response(error.body, status=429, headers=fault.rate_limit_headers())
        if fault.kind == "server_error":
            return _error(fault.status, "An internal error has occurred.").response()
        if fault.kind == "bad_payload":
            # HTTP 200, valid JSON, a candidate with no parts.
            return web.json_response({"candidates": [{"content": {"role": "model"}, "finishReason": "STOP"}]})
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        return _error(404 if status == 404 else status, f"{reason}: {request.method} {request.path}")


def _png(aspect_ratio: str | None, image_size: str | None) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", image_size_of(aspect_ratio, image_size), (66, 133, 244)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Fake Google Gemini API (generateContent) for tests.", DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    asyncio.run(serve(FakeGemini(api_key=args.api_key), args.host, args.port))


if __name__ == "__main__":
    main()
