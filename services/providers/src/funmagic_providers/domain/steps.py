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
    "STEP_TYPES",
    "HealthReport",
    "InputFile",
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
