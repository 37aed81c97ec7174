"""Integration events of the providers service. Topic ``providers.events``.

Subject (Kafka key) = ``task_id`` for step events, so a task's step events stay in order with each other;
``provider_id`` for ``ProviderHealthChanged``. Every step event repeats ``user_id`` (so the gateway can
route it to the user's stream without a lookup) and ``attempt`` (so tasks can ignore news about a
superseded attempt).

Step events also report on studio replies: ``scope`` is ``admin`` there, ``task_id`` is the reply
message's id and ``user_id`` the admin's (see ``StepRequested``). Events written before ``scope`` existed
have none and were all ``web``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from funmagic_contracts.base import (
    ContractModel,
    Id,
    IntegrationEvent,
    Metadata,
    OutputAsset,
    ProviderScope,
    UtcDatetime,
)
from funmagic_contracts.topics import PROVIDERS_EVENTS

__all__ = [
    "DelayReason",
    "ProviderHealthChanged",
    "ProviderScope",
    "StepCompleted",
    "StepDelayed",
    "StepFailed",
    "StepOutput",
    "StepProgressed",
    "StepStarted",
]

_SCOPE_DOC = "`web`: a step of a user's task; `admin`: a studio reply (`task_id` is the message's id)."

DelayReason = Literal["rate_limited", "provider_429", "provider_error", "circuit_open"]


class _ProvidersEvent(IntegrationEvent):
    TOPIC: ClassVar[str] = PROVIDERS_EVENTS.name
    SUBJECT_FIELD: ClassVar[str] = "task_id"
    EVENT_VERSION: ClassVar[int] = 1


class StepOutput(ContractModel):
    """What a step produced: assets already stored and registered, plus small metadata."""

    assets: tuple[OutputAsset, ...] = ()
    provider_request_id: str | None = Field(default=None, description="The provider's id for the call.")
    metadata: Metadata = Field(default_factory=dict)


class StepStarted(_ProvidersEvent):
    """A provider call for the step began."""

    EVENT_TYPE: ClassVar[str] = "StepStarted"

    task_id: Id
    user_id: Id
    scope: ProviderScope = Field(default="web", description=_SCOPE_DOC)
    step_id: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    attempt: int = Field(ge=1)


class StepProgressed(_ProvidersEvent):
    """The provider reported progress on the step."""

    EVENT_TYPE: ClassVar[str] = "StepProgressed"

    task_id: Id
    user_id: Id
    scope: ProviderScope = Field(default="web", description=_SCOPE_DOC)
    step_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    progress: int = Field(ge=0, le=100, description="Percent done.")
    message: str


class StepDelayed(_ProvidersEvent):
    """The step waits before (re)trying; a rate-limit delay uses no attempt."""

    EVENT_TYPE: ClassVar[str] = "StepDelayed"

    task_id: Id
    user_id: Id
    scope: ProviderScope = Field(default="web", description=_SCOPE_DOC)
    step_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    reason: DelayReason
    retry_at: UtcDatetime


class StepCompleted(_ProvidersEvent):
    """The step succeeded; its outputs are stored as assets."""

    EVENT_TYPE: ClassVar[str] = "StepCompleted"

    task_id: Id
    user_id: Id
    scope: ProviderScope = Field(default="web", description=_SCOPE_DOC)
    step_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    output: StepOutput


class StepFailed(_ProvidersEvent):
    """The step failed; ``retryable`` tells tasks whether another attempt may succeed."""

    EVENT_TYPE: ClassVar[str] = "StepFailed"

    task_id: Id
    user_id: Id
    scope: ProviderScope = Field(default="web", description=_SCOPE_DOC)
    step_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    error_code: str = Field(min_length=1)
    error_message: str
    retryable: bool


class ProviderHealthChanged(_ProvidersEvent):
    """A provider's health check result changed."""

    EVENT_TYPE: ClassVar[str] = "ProviderHealthChanged"
    SUBJECT_FIELD: ClassVar[str] = "provider_id"

    provider_id: Id
    name: str = Field(min_length=1)
    scope: ProviderScope
    is_healthy: bool
    checked_at: UtcDatetime
