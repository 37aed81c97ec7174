"""Integration events of the tasks service. Topic ``tasks.events``.

Subject (Kafka key) = ``task_id`` for task and step events, so one task's events stay in order;
``tool_id`` / ``tool_type_id`` / ``banner_id`` for the catalogue change notifications.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from funmagic_contracts.base import (
    ContractModel,
    Credits,
    Id,
    IntegrationEvent,
    Metadata,
    OutputAsset,
    ProviderScope,
    UtcDatetime,
)
from funmagic_contracts.topics import TASKS_EVENTS

__all__ = [
    "BannerChanged",
    "CatalogAction",
    "ProviderScope",
    "StepInput",
    "StepRequested",
    "TaskCancelRequested",
    "TaskCancelled",
    "TaskCompleted",
    "TaskDeleted",
    "TaskFailed",
    "TaskOutput",
    "TaskRequested",
    "TaskStarted",
    "ToolChanged",
    "ToolTypeChanged",
]

CatalogAction = Literal["created", "updated", "deleted"]


class _TaskEvent(IntegrationEvent):
    TOPIC: ClassVar[str] = TASKS_EVENTS.name
    SUBJECT_FIELD: ClassVar[str] = "task_id"
    EVENT_VERSION: ClassVar[int] = 1


class StepInput(ContractModel):
    """What a step works on: references only, never URLs a user typed (the provider resolves asset ids)."""

    asset_ids: tuple[Id, ...] = Field(
        default=(),
        description="Input assets in the order the step uses them (e.g. source image, style image).",
    )
    prompt: str | None = None
    options: Metadata = Field(default_factory=dict, description="Provider options from the tool config.")


class TaskOutput(ContractModel):
    """What a finished task produced."""

    assets: tuple[OutputAsset, ...] = ()
    metadata: Metadata = Field(default_factory=dict)


class TaskRequested(_TaskEvent):
    """A user asked for a task; credits should hold ``price`` for it (reservation id = task id)."""

    EVENT_TYPE: ClassVar[str] = "TaskRequested"

    task_id: Id
    user_id: Id
    tool_id: Id
    tool_slug: str = Field(min_length=1)
    step_ids: tuple[str, ...] = Field(min_length=1, description="The steps this task will run, in order.")
    price: Credits = Field(description="Total credits to hold for the task.")
    parent_task_id: Id | None = Field(default=None, description="The task whose output this one continues.")
    idempotency_key: str | None = Field(default=None, description="The client's Idempotency-Key header.")


class TaskStarted(_TaskEvent):
    """Credits were reserved and the task is running."""

    EVENT_TYPE: ClassVar[str] = "TaskStarted"

    task_id: Id
    user_id: Id
    reservation_id: Id


class StepRequested(_TaskEvent):
    """Tasks asks providers to run one step of a task (again, when ``attempt`` > 1)."""

    EVENT_TYPE: ClassVar[str] = "StepRequested"

    task_id: Id
    user_id: Id
    step_id: str = Field(min_length=1)
    step_type: str = Field(
        min_length=1, description='The kind of work, e.g. "image-gen", "remove-bg", "3d-gen".'
    )
    provider: str = Field(min_length=1, description="Provider name (the rate-limit key).")
    model: str = Field(min_length=1)
    scope: ProviderScope
    input: StepInput
    attempt: int = Field(ge=1)
    deadline_at: UtcDatetime = Field(description="After this the step counts as failed.")


class TaskCancelRequested(_TaskEvent):
    """Someone asked to cancel the task; providers stop its running step if they can."""

    EVENT_TYPE: ClassVar[str] = "TaskCancelRequested"

    task_id: Id
    user_id: Id
    by: Id = Field(description="User id of who asked (the owner or an admin).")


class TaskCompleted(_TaskEvent):
    """The task finished; credits spends ``charged_credits`` of the reservation and releases the rest."""

    EVENT_TYPE: ClassVar[str] = "TaskCompleted"

    task_id: Id
    user_id: Id
    output: TaskOutput
    charged_credits: Credits


class TaskFailed(_TaskEvent):
    """The task failed; credits spends ``charged_credits`` (usually 0) and releases the rest."""

    EVENT_TYPE: ClassVar[str] = "TaskFailed"

    task_id: Id
    user_id: Id
    error_code: str = Field(min_length=1)
    error_message: str
    charged_credits: Credits


class TaskCancelled(_TaskEvent):
    """The task was cancelled; credits spends ``charged_credits`` and releases the rest."""

    EVENT_TYPE: ClassVar[str] = "TaskCancelled"

    task_id: Id
    user_id: Id
    charged_credits: Credits


class TaskDeleted(_TaskEvent):
    """The owner or an admin deleted a task and its child tasks (soft delete: the ledger and the audit keep
    them, lists do not show them). Any of them still pending or running was cancelled first (its own
    ``TaskCancelled`` came before this). Storage deletes their outputs (published ones excepted)."""

    EVENT_TYPE: ClassVar[str] = "TaskDeleted"

    task_id: Id
    user_id: Id = Field(description="The tasks' owner.")
    deleted_task_ids: tuple[Id, ...] = Field(
        min_length=1, description="The task and its child tasks deleted with it (the task first)."
    )
    by: Id = Field(description="User id of who deleted (the owner or an admin).")


class ToolChanged(_TaskEvent):
    """A tool was created, updated or deleted (for caches, e.g. in the gateway)."""

    EVENT_TYPE: ClassVar[str] = "ToolChanged"
    SUBJECT_FIELD: ClassVar[str] = "tool_id"

    tool_id: Id
    slug: str | None = None
    action: CatalogAction


class ToolTypeChanged(_TaskEvent):
    """A tool type (category) was created, updated or deleted (for caches, e.g. in the gateway)."""

    EVENT_TYPE: ClassVar[str] = "ToolTypeChanged"
    SUBJECT_FIELD: ClassVar[str] = "tool_type_id"

    tool_type_id: Id
    name: str = Field(min_length=1, description="Its name as it is now (the `category` of task lists).")
    change: CatalogAction
    is_active: bool


class BannerChanged(_TaskEvent):
    """A banner was created, updated or deleted (for caches, e.g. in the gateway)."""

    EVENT_TYPE: ClassVar[str] = "BannerChanged"
    SUBJECT_FIELD: ClassVar[str] = "banner_id"

    banner_id: Id
    action: CatalogAction
