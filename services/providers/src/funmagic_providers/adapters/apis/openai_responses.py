"""Studio replies (`studio-chat` steps) through OpenAI's Responses API and the official SDK.

One streamed `responses.create` per reply (PROVIDERS.md 1.8): the prompt and any quoted images as one
user message, the chat's `instructions`, and `previous_response_id` so OpenAI keeps the conversation
(we send only the new turn). With `options.image_generation` the model gets the image tool (forced, the
admin asked for a picture) with partial images on. Text deltas and partial images go to `call.live` as
they arrive; the final Response gives the text, the usage and the images.

The SDK's own retries are off (`max_retries=0`): the step policy retries. The runner cancels the task
running `run` to cancel a reply; leaving the `async with` blocks then closes the HTTP stream, so OpenAI
sees the client go and stops generating.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import httpx
import openai
from openai.types.responses import Response, ResponseStreamEvent

from funmagic_providers.adapters.apis.openai_images import OpenAIImages, translate_openai_error
from funmagic_providers.adapters.apis.recorded_http import openai_client
from funmagic_providers.domain.documents import JsonObject
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
    STUDIO_CHAT,
    HealthReport,
    LiveOutput,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["OpenAIResponses"]

DEFAULT_PARTIAL_IMAGES = 2
# The image tool's options (PROVIDERS 1.8) a studio reply may set; anything else in the object is dropped
# rather than sent for OpenAI to refuse.
_TOOL_OPTIONS = (
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "partial_images",
)
_CONTENT_POLICY_CODES = ("moderation_blocked", "image_content_policy_violation", "bio_policy")


class OpenAIResponses:
    def __init__(self, *, timeout_seconds: float = 600.0) -> None:
        self._timeout = timeout_seconds

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type != STUDIO_CHAT:
            raise UnsupportedStep(f"OpenAI responses cannot run a {call.step_type} step")
        prompt = (call.prompt or "").strip()
        if not prompt:
            raise InvalidStepInput("a studio reply needs a prompt")
        request = _request(call, prompt)
        image_format = _image_format(call.options)
        async with self._client(call.provider) as client:
            # Once, not per delta: progress is written to the database; the live output carries the rest.
            await progress(10, f"Asked {call.model}")
            try:
                stream = await client.responses.create(**request, stream=True)
                async with stream:
                    response = await _follow(stream, call.live, image_format)
            except openai.APIError as error:
                raise _translate(error) from None
            except httpx.TimeoutException:  # while reading the stream: the SDK wraps only the request
                raise ProviderUnavailable("OpenAI stopped answering mid-reply") from None
            except httpx.TransportError:
                raise ProviderUnavailable("OpenAI's stream broke off") from None
        return _result(response, image_format)

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        # The same key check as the images adapter: listing models costs nothing.
        return await OpenAIImages(timeout_seconds=self._timeout).check_health(provider)

    def _client(self, provider: ProviderAccess) -> openai.AsyncOpenAI:
        return openai_client(provider, timeout=self._timeout)


def _request(call: StepCall, prompt: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": prompt}]
    content += [{"type": "input_image", "image_url": _data_url(f.content_type, f.data)} for f in call.inputs]
    request: dict[str, Any] = {"model": call.model, "input": [{"role": "user", "content": content}]}
    options = call.options
    for name in ("instructions", "previous_response_id"):
        value = options.get(name)
        if isinstance(value, str) and value:
            request[name] = value
    store = options.get("store")
    if isinstance(store, bool):
        request["store"] = store
    image_options = options.get("image_generation")
    if isinstance(image_options, dict):
        tool: dict[str, Any] = {"type": "image_generation", "partial_images": DEFAULT_PARTIAL_IMAGES}
        tool |= {name: image_options[name] for name in _TOOL_OPTIONS if name in image_options}
        request["tools"] = [tool]
        request["tool_choice"] = {"type": "image_generation"}
    return request


def _image_format(options: JsonObject) -> str:
    image_options = options.get("image_generation")
    fmt = image_options.get("output_format") if isinstance(image_options, dict) else None
    return fmt if isinstance(fmt, str) and fmt else "png"


def _data_url(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


async def _follow(
    stream: openai.AsyncStream[ResponseStreamEvent], live: LiveOutput, image_format: str
) -> Response:
    """Relays the stream to the live output until the response is complete; raises for a failed one."""
    async for event in stream:
        if event.type == "response.output_text.delta":
            await live.text_delta(event.delta)
        elif event.type == "response.image_generation_call.partial_image":
            data = _decode(event.partial_image_b64, "a partial image")
            await live.partial_image(event.partial_image_index, data, f"image/{image_format}")
        elif event.type == "response.completed":
            return event.response
        elif event.type == "response.failed":
            error = event.response.error
            raise _failure(error.code if error else None, error.message if error else "")
        elif event.type == "response.incomplete":
            details = event.response.incomplete_details
            reason = (details.reason if details else None) or "unknown reason"
            code = "content_policy" if reason == "content_filter" else None
            raise ProviderRejected(f"OpenAI stopped the reply early ({reason})", code=code)
        elif event.type == "error":
            raise _failure(event.code, event.message)
    raise BadProviderResponse("OpenAI's stream ended before the reply was complete")


def _result(response: Response, image_format: str) -> StepResult:
    files = []
    for item in response.output:
        if item.type == "image_generation_call" and item.status == "completed":
            # The item names its format (an extra field the SDK keeps); else what the tool asked for.
            fmt = str(getattr(item, "output_format", None) or image_format)
            data = _decode(item.result, "an image")
            files.append(OutputFile("image", f"image_{len(files)}.{fmt}", f"image/{fmt}", data))
    usage = response.usage
    metadata: JsonObject = {
        "text": response.output_text,
        "responseId": response.id,
        "usage": {
            "inputTokens": usage.input_tokens if usage else 0,
            "outputTokens": usage.output_tokens if usage else 0,
            "totalTokens": usage.total_tokens if usage else 0,
        },
    }
    return StepResult(tuple(files), provider_request_id=response.id, metadata=metadata)


def _decode(encoded: str | None, what: str) -> bytes:
    if not encoded:
        raise BadProviderResponse(f"OpenAI sent {what} without data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadProviderResponse(f"OpenAI sent {what} that is not base64") from None
    if not data:
        raise BadProviderResponse(f"OpenAI sent {what} that is empty")
    return data


def _translate(error: openai.APIError) -> ProviderError:
    if not isinstance(
        error, openai.APIStatusError | openai.APIConnectionError | openai.APIResponseValidationError
    ) and isinstance(error.body, dict):
        # The SDK raises a bare APIError for a stream event carrying `{"error": {...}}`.
        return _failure(error.body.get("code"), str(error.body.get("message") or ""))
    return translate_openai_error(error)


def _failure(code: str | None, message: str) -> ProviderError:
    """A reply that failed after the HTTP 200 (`response.failed` or an `error` event), by its code."""
    readable = (message or "no message")[:300]
    if code == "rate_limit_exceeded":
        return ProviderRateLimited(f"OpenAI is rate limiting us: {readable}")
    if code == "insufficient_quota":
        return ProviderRejected(f"OpenAI quota exhausted: {readable}", code="provider_quota_exhausted")
    if code in _CONTENT_POLICY_CODES:
        return ProviderRejected(
            f"OpenAI's safety system refused the reply: {readable}", code="content_policy"
        )
    if code is None or code in ("server_error", "vector_store_timeout"):
        return ProviderUnavailable(f"OpenAI failed mid-reply: {readable}")
    return ProviderRejected(f"OpenAI refused the reply ({code}): {readable}")
