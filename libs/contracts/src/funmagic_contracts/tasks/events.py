"""Integration events of the tasks service. Topic ``tasks.events``.

Subject (Kafka key) = ``task_id`` for task and step events, so one task's events stay in order;
``tool_id`` / ``tool_type_id`` / ``banner_id`` for the catalogue change notifications; ``message_id`` for
a studio reply's outcome and ``chat_id`` for a deleted studio chat.

The admin AI studio's replies are work like task steps: tasks asks for one with a ``StepRequested`` of
scope ``admin`` (``task_id`` = the reply message's id, ``user_id`` = the admin's), providers runs it under
the admin limiter and reports with the usual step events, and tasks announces the reply's final state with
``StudioReplyCompleted`` / ``StudioReplyFailed`` / ``StudioReplyCancelled``.
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
    "StepOutputDiscarded",
    "StepRequested",
    "StudioChatDeleted",
    "StudioReplyCancelled",
    "StudioReplyCompleted",
    "StudioReplyFailed",
    "StudioUsage",
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
    reference_asset_ids: tuple[Id, ...] = Field(
        default=(),
        description=(
            "Catalog images the step uses before `asset_ids`, in order (a chosen style reference's image):"
            " named by the tool's config, never by the user, and read by providers as published catalog"
            " images, not as the user's assets."
        ),
    )
    history_asset_ids: tuple[Id, ...] = Field(
        default=(),
        description=(
            "Images of the conversation's earlier turns (a studio chat's), which the step sends back with"
            " its `history` option; read as the requester's assets, like `asset_ids`."
        ),
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
    """Tasks asks providers to run one step of a task (again, when ``attempt`` > 1) — or, with scope
    ``admin``, one studio reply: ``task_id`` is then the reply message's id, ``user_id`` the admin's, and
    ``step_type`` ``studio-chat`` (a chat model, its image tool when ``input.options.image_generation`` is
    set), ``image-gen`` (an image model) or ``studio-utility`` (a utility model such as fal's upscaler, on
    the one image in ``input.asset_ids``)."""

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


class StepOutputDiscarded(_TaskEvent):
    """A step's output came for a task that no longer waited for it: the task had ended without that step
    (cancelled, failed, timed out) or runs another attempt. Nothing pays for it, so nobody keeps it: storage
    deletes these assets (published ones excepted). A redelivered completion the task did use is not
    discarded."""

    EVENT_TYPE: ClassVar[str] = "StepOutputDiscarded"

    task_id: Id
    user_id: Id = Field(description="The task's owner.")
    step_id: str
    attempt: int = Field(ge=1)
    asset_ids: tuple[Id, ...] = Field(
        min_length=1, description="The step's output assets the task does not hold (its input excepted)."
    )


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


# --- the admin AI studio -------------------------------------------------------------------------------


class _StudioReplyEvent(_TaskEvent):
    SUBJECT_FIELD: ClassVar[str] = "message_id"


class StudioUsage(ContractModel):
    """Tokens a reply used, as the provider counted them (0 where it does not count)."""

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    total_tokens: int = Field(default=0, ge=0)


class StudioReplyCompleted(_StudioReplyEvent):
    """A studio reply is done: its text and its images (assets of the admin in the admin bucket)."""

    EVENT_TYPE: ClassVar[str] = "StudioReplyCompleted"

    message_id: Id
    chat_id: Id
    admin_id: Id
    content: str = Field(description="The reply's text (empty for an image model).")
    images: tuple[OutputAsset, ...] = ()
    response_id: str | None = Field(default=None, description="The provider's id of this turn.")
    usage: StudioUsage = Field(default_factory=StudioUsage)


class StudioReplyFailed(_StudioReplyEvent):
    """A studio reply failed for good (the provider's retries are behind it)."""

    EVENT_TYPE: ClassVar[str] = "StudioReplyFailed"

    message_id: Id
    chat_id: Id
    admin_id: Id
    error_code: str = Field(min_length=1)
    error_message: str


class StudioReplyCancelled(_StudioReplyEvent):
    """An admin cancelled a studio reply (or deleted its chat); providers stop its call."""

    EVENT_TYPE: ClassVar[str] = "StudioReplyCancelled"

    message_id: Id
    chat_id: Id
    admin_id: Id
    by: Id = Field(description="User id of who cancelled.")


class StudioChatDeleted(_TaskEvent):
    """A studio chat and its messages were deleted; storage deletes the images its replies made (the assets
    whose task id is one of ``message_ids``). Any reply still running was cancelled first."""

    EVENT_TYPE: ClassVar[str] = "StudioChatDeleted"
    SUBJECT_FIELD: ClassVar[str] = "chat_id"

    chat_id: Id
    admin_id: Id
    message_ids: tuple[Id, ...] = Field(description="Every message of the chat (replies made their images).")
    by: Id = Field(description="User id of who deleted.")
