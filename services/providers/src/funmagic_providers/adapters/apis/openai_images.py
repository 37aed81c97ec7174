"""OpenAI images through the official SDK pointed at the provider's `baseUrl`.

`image-gen` steps: `images.generate` from the prompt, or `images.edit` when the step has input images:
the catalog's references first (a style reference's image), then the user's image — the original's
`images.edit` with [style image, user image], sent as repeated `image[]` parts in that order. The SDK's
own retries are off (`max_retries=0`): the step policy retries, with the provider's rate limits and the
step's deadline in view. GPT image models always answer base64 (PROVIDERS.md 1.2).
"""

from __future__ import annotations

import base64
import binascii

import openai

from funmagic_providers.adapters.apis.http_errors import health_of_status, retry_after_seconds, unreachable
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
    HealthReport,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["OpenAIImages", "translate_openai_error"]

_PASSED_OPTIONS = ("size", "quality", "background", "output_format", "moderation", "input_fidelity")


class OpenAIImages:
    def __init__(self, *, timeout_seconds: float = 600.0) -> None:
        self._timeout = timeout_seconds

    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type != "image-gen":
            raise UnsupportedStep(f"OpenAI images cannot run a {call.step_type} step")
        prompt = call.prompt or str(call.options.get("prompt") or "")
        if not prompt:
            raise InvalidStepInput("an image-gen step needs a prompt")
        options = {k: call.options[k] for k in _PASSED_OPTIONS if k in call.options}
        options.setdefault("size", "1024x1024")
        async with self._client(call.provider) as client:
            await progress(20, "Sending the request to OpenAI")
            try:
                if call.inputs:
                    parts = (*call.references, *call.inputs)
                    images = [(f.filename, f.data, f.content_type) for f in parts]
                    response = await client.images.edit(
                        model=call.model,
                        prompt=prompt,
                        image=images if len(images) > 1 else images[0],
                        **options,
                    )
                else:
                    response = await client.images.generate(model=call.model, prompt=prompt, **options)
            except openai.APIError as error:
                raise translate_openai_error(error) from None
            await progress(80, "Saving the generated image")
        output_format = str(options.get("output_format") or getattr(response, "output_format", None) or "png")
        files = tuple(
            OutputFile("image", f"image_{index}.{output_format}", f"image/{output_format}", _decode(item))
            for index, item in enumerate(response.data or ())
        )
        if not files:
            raise BadProviderResponse("OpenAI answered without an image")
        request_id = getattr(response, "_request_id", None)
        metadata: JsonObject = {"size": options["size"]}
        if call.inputs and call.references:
            metadata["referenceAssetIds"] = [f.asset_id for f in call.references]
        return StepResult(files, provider_request_id=request_id, metadata=metadata)

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        async with self._client(provider, timeout=5.0) as client:
            try:
                await client.models.list()
            except openai.APITimeoutError:
                return unreachable(TimeoutError())
            except openai.APIConnectionError as error:
                return unreachable(error)
            except openai.APIStatusError as error:
                # 401/403: the key is refused; another 4xx is a fake or a proxy without /models that still
                # answered with our key accepted.
                return health_of_status(error.status_code)
        return HealthReport(True)

    def _client(self, provider: ProviderAccess, *, timeout: float | None = None) -> openai.AsyncOpenAI:
        return openai_client(provider, timeout=timeout or self._timeout)


def _decode(item: object) -> bytes:
    encoded = getattr(item, "b64_json", None)
    if not encoded:
        raise BadProviderResponse("OpenAI answered without image data")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadProviderResponse("OpenAI answered with image data that is not base64") from None
    if not data:
        raise BadProviderResponse("OpenAI answered with an empty image")
    return data


def translate_openai_error(error: openai.APIError) -> ProviderError:
    """An SDK error in the step policy's terms (also used by the Responses adapter)."""
    if isinstance(error, openai.APITimeoutError):
        return ProviderUnavailable("OpenAI did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return ProviderUnavailable("OpenAI could not be reached")
    if not isinstance(error, openai.APIStatusError):
        return BadProviderResponse(f"OpenAI answered something unreadable: {type(error).__name__}")
    code = getattr(error, "code", None)
    message = getattr(error, "message", "") or ""
    # The SDK's message repeats the whole body; the error's own message is the readable part.
    body = error.body if isinstance(error.body, dict) else {}
    readable = str(body.get("message") or message)[:300]
    status = error.status_code
    if status == 429:
        if code == "insufficient_quota":
            return ProviderRejected(f"OpenAI quota exhausted: {readable}", code="provider_quota_exhausted")
        return ProviderRateLimited(
            f"OpenAI is rate limiting us: {readable}", retry_after=retry_after_seconds(error.response.headers)
        )
    if code == "moderation_blocked":
        return ProviderRejected(
            f"OpenAI's safety system refused the request: {readable}", code="content_policy"
        )
    if status in (401, 403):
        return ProviderRejected(f"OpenAI refused the credentials ({status})", code="provider_auth_failed")
    if status in (408, 409) or status >= 500:
        return ProviderUnavailable(f"OpenAI failed ({status}): {readable}")
    return ProviderRejected(f"OpenAI refused the request ({status}): {readable}")
