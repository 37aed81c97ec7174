"""Google Gemini's image models (`gemini-2.5-flash-image`, `gemini-3-pro-image-preview`) over plain HTTP.

The request and answer follow the Gemini API reference (ai.google.dev/api/generate-content and the image
generation guide, looked up with the `search` tool; `@google/genai`, which the original's google-worker
used, sends the same JSON): `POST {base}/v1beta/models/{model}:generateContent` with the key in
`x-goog-api-key`, a body of `contents` [{role: user|model, parts: [{text} | {inlineData: {mimeType,
data}}]}] and `generationConfig` {responseModalities: [TEXT, IMAGE], imageConfig: {aspectRatio,
imageSize}}; the answer's `candidates[0].content.parts` hold text and `inlineData` images, errors are
`{error: {code, message, status}}` (429 RESOURCE_EXHAUSTED when rate limited).

`image-gen` steps (studio replies of a Gemini model, and tool steps): the prompt and the step's images
(references, then inputs) are the user's turn. Multi-turn as the original: a studio reply's options may
carry `history`, the chat's earlier turns ({role: user|model, text}) oldest first, sent before this
turn. Earlier model images are not sent back (the original kept no thought signature for them). The
API wants the roles to alternate, starting and ending with the user: `_history` keeps the later of two
turns of one role in a row (a prompt whose reply failed is followed by the next) and drops a leading
model turn. One request, not a stream: the text and images arrive together.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from funmagic_providers.adapters.apis.http_errors import (
    error_for_status,
    health_of_status,
    retry_after_seconds,
    transport_error,
    unreachable,
)
from funmagic_providers.domain.documents import JsonObject, JsonValue
from funmagic_providers.domain.errors import (
    BadProviderResponse,
    InvalidStepInput,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    UnsupportedStep,
)
from funmagic_providers.domain.steps import (
    HealthReport,
    InputFile,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["DEFAULT_BASE_URL", "Gemini"]

_NAME = "Gemini"
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
IMAGE_SIZES = ("1K", "2K", "4K")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# Turns of history sent at most, and characters of each turn's text: the rest of a long chat is left out.
MAX_HISTORY_TURNS = 20
MAX_TURN_TEXT = 4000
# Finish reasons (and prompt block reasons) that mean Google's safety filters refused.
_BLOCKED = {"SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "BLOCKLIST", "SPII", "RECITATION", "OTHER"}


class Gemini:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type != "image-gen":
            raise UnsupportedStep(f"Gemini cannot run a {call.step_type} step")
        prompt = (call.prompt or "").strip()
        if not prompt:
            raise InvalidStepInput("a Gemini image needs a prompt")
        body = {
            "contents": [
                *_history(call.options.get("history"), call.history_inputs),
                _user_turn(prompt, call),
            ],
            "generationConfig": {
                "responseModalities": ["TEXT", "IMAGE"],
                **_image_config(call.options),
            },
        }
        await progress(10, f"Asked {call.model}")
        base = (call.provider.base_url or DEFAULT_BASE_URL).rstrip("/")
        answer = await self._post(f"{base}/v1beta/models/{call.model}:generateContent", call.provider, body)
        return _result(answer)

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        # Listing the models costs nothing and needs a valid key.
        base = (provider.base_url or DEFAULT_BASE_URL).rstrip("/")
        try:
            async with self._session.get(
                f"{base}/v1beta/models", headers=_auth(provider), timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                # Google answers a wrong key with 400 INVALID_ARGUMENT ("API key not valid").
                return health_of_status(403 if response.status == 400 else response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            return unreachable(error)

    async def _post(self, url: str, provider: ProviderAccess, body: JsonObject) -> dict[str, Any]:
        try:
            async with self._session.post(url, headers=_auth(provider), json=body) as response:
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
                if response.status >= 400:
                    raise _error(response.status, response.headers, answer)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(_NAME, error) from None
        if not isinstance(answer, dict):
            raise BadProviderResponse("Gemini answered with something that is not a JSON object")
        return answer


def _auth(provider: ProviderAccess) -> dict[str, str]:
    return {"x-goog-api-key": provider.api_key or ""}


def _user_turn(prompt: str, call: StepCall) -> JsonObject:
    parts: list[JsonValue] = [{"text": prompt}]
    for image in (*call.references, *call.inputs):
        if image.content_type not in _IMAGE_TYPES:
            raise InvalidStepInput(f"Gemini takes PNG, JPEG or WEBP images, not {image.content_type}")
        data = base64.b64encode(image.data).decode("ascii")
        parts.append({"inlineData": {"mimeType": image.content_type, "data": data}})
    return {"role": "user", "parts": parts}


def _history(value: JsonValue, images: Sequence[InputFile] = ()) -> list[JsonObject]:
    """The chat's earlier turns as Gemini takes them, roles alternating, the user's first and last (this
    turn, the user's, follows): each turn's text, and a user turn's images (`images`, named by asset id in
    the turn's `images`) after it, as the original re-sent them; the model's images are not sent back
    (Gemini would want the thought signatures, which are not kept)."""
    if not isinstance(value, list):
        return []
    by_id = {image.asset_id: image for image in images}
    turns: list[JsonObject] = []
    for item in value[-MAX_HISTORY_TURNS:]:
        if not isinstance(item, dict):
            continue
        role, text = item.get("role"), item.get("text")
        if role not in ("user", "model") or not isinstance(text, str) or not text.strip():
            continue
        parts: list[JsonValue] = [{"text": text[:MAX_TURN_TEXT]}]
        named = item.get("images") if role == "user" else None
        for asset_id in named if isinstance(named, list) else ():
            image = by_id.get(asset_id) if isinstance(asset_id, str) else None
            if image is not None and image.content_type in _IMAGE_TYPES:
                data = base64.b64encode(image.data).decode("ascii")
                parts.append({"inlineData": {"mimeType": image.content_type, "data": data}})
        turn: JsonObject = {"role": role, "parts": parts}
        if turns and turns[-1]["role"] == role:
            turns[-1] = turn  # the later of two turns of one role: the earlier one got no answer
        else:
            turns.append(turn)
    if turns and turns[0]["role"] == "model":
        turns.pop(0)
    if turns and turns[-1]["role"] == "user":
        turns.pop()  # a prompt without an answer: this turn is the user's
    return turns


def _image_config(options: Mapping[str, JsonValue]) -> JsonObject:
    config: JsonObject = {}
    aspect_ratio = options.get("aspectRatio")
    if aspect_ratio is not None:
        if aspect_ratio not in ASPECT_RATIOS:
            raise InvalidStepInput(f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}")
        config["aspectRatio"] = aspect_ratio
    image_size = options.get("imageSize")
    if image_size is not None:
        if image_size not in IMAGE_SIZES:
            raise InvalidStepInput(f"imageSize must be one of {', '.join(IMAGE_SIZES)}")
        config["imageSize"] = image_size
    return {"imageConfig": config} if config else {}


def _result(answer: dict[str, Any]) -> StepResult:
    feedback = answer.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    candidates = answer.get("candidates")
    if block:
        raise ProviderRejected(f"Gemini blocked the prompt ({block})", code="content_policy")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        raise BadProviderResponse("Gemini's answer has no candidate")
    candidate = candidates[0]
    reason = candidate.get("finishReason")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if reason in _BLOCKED and not parts:
        raise ProviderRejected(f"Gemini stopped the reply ({reason})", code="content_policy")
    if not isinstance(parts, list) or not parts:
        raise BadProviderResponse(f"Gemini's answer has no content (finish reason {reason})")
    texts: list[str] = []
    files: list[OutputFile] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("thought"):
            continue  # a thinking model's thoughts are not the reply
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        inline = part.get("inlineData")
        if isinstance(inline, dict):
            mime = str(inline.get("mimeType") or "image/png")
            data = _decode(inline.get("data"))
            name = f"image_{len(files)}.{_EXTENSIONS.get(mime, 'png')}"
            files.append(OutputFile("image", name, mime, data))
    if not files and not texts:
        raise BadProviderResponse("Gemini's answer has neither text nor an image")
    usage = answer.get("usageMetadata") if isinstance(answer.get("usageMetadata"), dict) else {}
    response_id = answer.get("responseId") if isinstance(answer.get("responseId"), str) else None
    metadata: JsonObject = {
        "text": "".join(texts),
        "usage": {
            "inputTokens": _count(usage.get("promptTokenCount")),
            "outputTokens": _count(usage.get("candidatesTokenCount")),
            "totalTokens": _count(usage.get("totalTokenCount")),
        },
    }
    return StepResult(tuple(files), provider_request_id=response_id, metadata=metadata)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _decode(encoded: object) -> bytes:
    if not isinstance(encoded, str) or not encoded:
        raise BadProviderResponse("Gemini sent an image without data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadProviderResponse("Gemini sent an image that is not base64") from None
    if not data:
        raise BadProviderResponse("Gemini sent an empty image")
    return data


def _error(status: int, headers: Mapping[str, str], answer: object) -> ProviderError:
    """Google's `{error: {code, message, status}}` as the step policy's error."""
    error = answer.get("error") if isinstance(answer, dict) else None
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    name = str(error.get("status") or "") if isinstance(error, dict) else ""
    detail = f"{name}: {message}" if name else message or "no message"
    if status == 429:
        retry_after = retry_after_seconds(headers) or _retry_delay(error)
        return ProviderRateLimited(
            f"Gemini is rate limiting us (429): {detail[:300]}", retry_after=retry_after
        )
    if status == 400 and "API key" in message:  # Google answers a bad key with 400, not 401
        return ProviderRejected(f"Gemini refused the API key: {detail[:300]}", code="provider_auth_failed")
    return error_for_status(_NAME, status, headers, detail)


def _retry_delay(error: object) -> float | None:
    """A 429's `google.rpc.RetryInfo` detail (`"retryDelay": "31s"`), when Google sent one."""
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(float(delay[:-1]), 0.0)
            except ValueError:
                continue
    return None
