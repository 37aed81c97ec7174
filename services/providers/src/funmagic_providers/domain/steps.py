"""What one provider call works on and what it gives back: the interface every adapter implements.

An adapter gets the step's input with its assets already read (bytes from our own storage, never a URL a
user supplied), the provider's access (the key decrypted for this call only) and a progress callback; it
returns files, and the runner stores them as assets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from funmagic_providers.domain.documents import JsonObject

__all__ = [
    "NO_LIVE_OUTPUT",
    "STEP_TYPES",
    "STUDIO_CHAT",
    "STUDIO_UTILITY",
    "HealthReport",
    "InputFile",
    "LiveOutput",
    "OutputFile",
    "ProgressReporter",
    "ProviderAccess",
    "ProviderAdapter",
    "StepCall",
    "StepResult",
    "StoredAsset",
]

# The kinds of work a tool step does (tools' `steps[].type`).
STEP_TYPES = ("image-gen", "remove-bg", "3d-gen", "point-cloud")

STUDIO_CHAT = "studio-chat"
"""A studio reply (admin scope): text through a chat model, optionally with images from its image tool.
Options: `instructions` (the chat's system prompt), `previous_response_id` (the chat's last turn),
`store`, and `image_generation` (an object of the image tool's options, present when the admin asked for
an image). Its result's metadata: `text`, `responseId` and `usage` (`inputTokens`, `outputTokens`,
`totalTokens`)."""

STUDIO_UTILITY = "studio-utility"
"""A studio reply of a utility model (admin scope): one input image, worked on as the model does (fal's
`fal-ai/clarity-upscaler` upscales it, with the prompt; `fal-ai/bria/background/remove` cuts the subject
out). Options: the model's (`upscale_factor`, `creativity`, `resemblance`). Its result: one image."""

ProgressReporter = Callable[[int, str], Awaitable[None]]
"""`await progress(percent, message)`: percent 0–100, a short message for the user."""


@dataclass(frozen=True)
class InputFile:
    asset_id: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ProviderAccess:
    name: str
    type: str
    base_url: str | None
    api_key: str | None = field(repr=False)  # in clear for this call only: never logged, never stored
    config: JsonObject = field(default_factory=dict)
    # The credential's second part (Tencent Cloud's SecretKey), in clear for this call only, like the key.
    api_secret: str | None = field(default=None, repr=False)


class LiveOutput(Protocol):
    """Where an adapter sends what the admin may watch while a studio reply is made: text as it is
    written and partial images. Best effort: the final result carries everything, so a lost piece only
    makes the live view coarser."""

    async def text_delta(self, text: str) -> None: ...

    async def partial_image(self, index: int, data: bytes, content_type: str) -> None: ...


class _NoLiveOutput:
    async def text_delta(self, text: str) -> None:
        return None

    async def partial_image(self, index: int, data: bytes, content_type: str) -> None:
        return None


NO_LIVE_OUTPUT: LiveOutput = _NoLiveOutput()
"""For steps nobody watches live (every tool step)."""


@dataclass(frozen=True)
class StepCall:
    task_id: str
    user_id: str
    step_id: str
    step_type: str
    model: str
    prompt: str | None
    options: JsonObject
    inputs: tuple[InputFile, ...]
    provider: ProviderAccess
    live: LiveOutput = field(default=NO_LIVE_OUTPUT, repr=False)
    # Catalog images the step uses before `inputs` (a style reference's image), in order.
    references: tuple[InputFile, ...] = ()
    # Images of the conversation's earlier turns, for the `history` option to name by asset id.
    history_inputs: tuple[InputFile, ...] = ()


@dataclass(frozen=True)
class OutputFile:
    role: str  # "image", "model", "preview", "point_cloud"
    filename: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class StepResult:
    files: tuple[OutputFile, ...]
    provider_request_id: str | None = None
    metadata: JsonObject = field(default_factory=dict)


@dataclass(frozen=True)
class HealthReport:
    """What a health check found. `error` says why a provider is unhealthy in words our code chose (a
    status code, "timed out"), never a provider's answer body or anything holding the key."""

    healthy: bool
    error: str | None = None


@dataclass(frozen=True)
class StoredAsset:
    """An output file once storage has registered it as an asset of the task's user."""

    asset_id: str


class ProviderAdapter(Protocol):
    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        """Do the step; raise a `ProviderError` subclass for anything the step policy must decide on."""
        ...

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        """Can the provider be reached with this key? (Cheap: no billable work.)"""
        ...
