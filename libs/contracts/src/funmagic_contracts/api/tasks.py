"""`/api/tasks*` and `/api/admin/tasks*`: the models of the tasks service's public face.

Request models and the tasks route they are the body (or query) of — the same fields:

    CreateTask (with TaskInput)   POST /v1/tasks (the gateway drops unset fields: `exclude_none`)
    TaskQuery                     GET /v1/tasks (query)
    AdminTaskQuery                GET /v1/admin/tasks (query; `created_from` ≤ created_at < `created_to`)
    StatsQuery (api.stats)        GET /v1/admin/stats/tasks (query) → TaskStats
    (no body)                     DELETE /v1/tasks/{task_id} → 204 (the owner, or an admin)

The service reads them with these same classes, so both edges refuse alike: `imageAssetId` and
`parentTaskId` must be UUIDs (passed on in canonical form) and `stepId`, when given, must not be empty.
Those rules are validators, not schema keywords: /openapi.json shows these fields as plain strings.

`Task` is the answer of creating, reading (with `children`) and cancelling a task; `TaskPage` of the two
lists. The user's list (`GET /v1/tasks`) has top-level tasks only, each a `TaskListItem`: its child tasks
folded in (`children`), the family's `effective_status`, `credits_total` and `thumbnail_asset_id`, and its
`tool_type`; the admin search lists every task as it is (those fields null), with `deleted_at`.

`TaskStats` is the admin overview's part of tasks: counted in SQL over every task (child tasks and deleted
ones too: they happened) in the window's period (`funmagic_contracts.api.stats.period_of`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from funmagic_contracts.api.base import IsoDatetime, Reply, Request
from funmagic_contracts.api.stats import StatsWindow

__all__ = [
    "AdminTaskQuery",
    "CreateTask",
    "EffectiveStatus",
    "ProviderPick",
    "Task",
    "TaskError",
    "TaskInput",
    "TaskListItem",
    "TaskOutcomes",
    "TaskPage",
    "TaskQuery",
    "TaskStats",
    "TaskStatsPoint",
    "TaskStatus",
    "TaskStatusCounts",
    "TaskToolType",
]

TaskStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
EffectiveStatus = Literal["pending", "running", "completed", "failed", "cancelled", "action_required"]
EFFECTIVE_STATUS_DOC = (
    "The status of the task with its child tasks: `running` while any of them is pending or running; "
    "`action_required` when the last completed step is not the tool's last and the tool is not a "
    "pipeline (the next step waits for you); else the status of the latest of them."
)


# --- requests -------------------------------------------------------------------------------------------


# The provider to run the first step on, where the step offers `choices` (`GET /api/tools/{slug}`).
class ProviderPick(Request):
    name: str = Field(
        min_length=1, max_length=63, examples=["tripo"], description="One of the step's choices."
    )
    model: str | None = Field(
        None, min_length=1, max_length=200, description="One of the choice's models (default: its first)."
    )
    options: dict[str, bool | int | str] = Field(
        default_factory=dict,
        max_length=16,
        description="Options the choice lets users set, each with a value it allows.",
        examples=[{"face_limit": 10000, "pbr": True}],
    )


class TaskInput(Request):
    imageAssetId: str | None = Field(None, description="An asset of yours (upload it first).")
    prompt: str | None = Field(None, max_length=4000)
    styleReferenceId: str | None = Field(None, max_length=64)
    provider: ProviderPick | None = Field(
        None, description="Choose the first step's provider, model and options (default: the step's own)."
    )

    @field_validator("imageAssetId")
    @classmethod
    def _asset_id(cls, value: str | None) -> str | None:
        return _canonical_uuid(value)


class CreateTask(Request):
    toolSlug: str = Field(min_length=1, max_length=63, examples=["background-remove"])
    stepId: str | None = Field(
        None,
        max_length=63,
        description="Run only this step (default: the whole pipeline, or the first step).",
    )
    parentTaskId: str | None = Field(
        None, description="A completed task of yours whose output this step continues."
    )
    input: TaskInput = Field(default_factory=TaskInput)

    @field_validator("parentTaskId")
    @classmethod
    def _parent_id(cls, value: str | None) -> str | None:
        return _canonical_uuid(value)

    @field_validator("stepId")
    @classmethod
    def _step_named(cls, value: str | None) -> str | None:
        # The error `min_length=1` gives, without the `minLength` it would add to the published schema.
        if value == "":
            raise PydanticCustomError(
                "string_too_short", "String should have at least 1 character", {"min_length": 1}
            )
        return value


class _TaskListQuery(Request):
    tool: str | None = Field(None, max_length=63, description="A tool's slug.")
    category: str | None = Field(None, max_length=63, description="A tool type's `name`.")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=300, description="`next_cursor` of the previous page.")


class TaskQuery(_TaskListQuery):
    status: EffectiveStatus | None = Field(None, description=EFFECTIVE_STATUS_DOC)


class AdminTaskQuery(_TaskListQuery):
    status: TaskStatus | None = Field(None, description="The task's own status.")
    user_id: str | None = Field(None, max_length=64)
    include_deleted: bool = Field(False, description="List deleted tasks too (with their `deleted_at`).")
    created_from: IsoDatetime | None = Field(None, description="Created at or after this moment.")
    created_to: IsoDatetime | None = Field(None, description="Created before this moment.")

    @model_validator(mode="after")
    def _period_in_order(self) -> AdminTaskQuery:
        if self.created_from and self.created_to and self.created_to <= self.created_from:
            raise PydanticCustomError("period_order", "created_to must be after created_from")
        return self


def _canonical_uuid(value: str | None) -> str | None:
    """Ids are UUIDs, passed on in canonical form (lower case, hyphens): a ValueError names anything else."""
    return None if value is None else str(uuid.UUID(value))


# --- replies --------------------------------------------------------------------------------------------


class TaskError(Reply):
    code: str
    message: str | None = None


class Task(Reply):
    id: str
    user_id: str
    tool_id: str
    tool_slug: str
    parent_task_id: str | None = None
    status: TaskStatus
    step_ids: list[str]
    current_step_id: str | None = None
    completed_step_ids: list[str]
    price: int
    charged_credits: int | None = None
    error: TaskError | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    payload: dict[str, Any] | None = Field(None, description="input, per-step outputs, output, error")
    children: list[Task] | None = Field(
        None,
        description="Its child tasks (the chained steps, and theirs), oldest first: in one task's answer "
        "with their payloads, in the list of my tasks without.",
    )
    deleted_at: datetime | None = Field(None, description="Admin search only: when it was deleted.")


class TaskToolType(Reply):
    id: str
    name: str


class TaskListItem(Task):
    """A top-level task of my list with its child tasks folded in (the admin search leaves the family's
    fields null)."""

    effective_status: EffectiveStatus | None = Field(None, description=EFFECTIVE_STATUS_DOC)
    credits_total: int | None = Field(None, description="Credits charged for the task and its child tasks.")
    thumbnail_asset_id: str | None = Field(
        None,
        description="The first image output of the latest completed task of the family, else its preview.",
    )
    tool_type: TaskToolType | None = Field(None, description="The tool's type (its category).")


class TaskPage(Reply):
    items: list[TaskListItem]
    next_cursor: str | None = None


# --- the admin overview's figures ----------------------------------------------------------------------


class TaskStatusCounts(Reply):
    pending: int = Field(ge=0)
    running: int = Field(ge=0)
    completed: int = Field(ge=0)
    failed: int = Field(ge=0)
    cancelled: int = Field(ge=0)


class TaskOutcomes(Reply):
    completed: int = Field(ge=0, description="Tasks that completed in the window (whenever created).")
    failed: int = Field(ge=0, description="Tasks that failed in the window (whenever created).")


class TaskStatsPoint(Reply):
    at: datetime = Field(description="The bucket's start; it lasts `bucket_seconds`.")
    created: int = Field(ge=0, description="Tasks created in the bucket.")
    completed: int = Field(ge=0, description="Tasks that completed in the bucket.")
    failed: int = Field(ge=0, description="Tasks that failed in the bucket.")


class TaskStats(Reply):
    window: StatsWindow
    since: datetime = Field(description="The period's start (inclusive).")
    until: datetime = Field(description="The period's end (exclusive): the end of the current bucket.")
    bucket_seconds: int = Field(gt=0, description="The size of each bucket of `series`.")
    created: int = Field(ge=0, description="Tasks created in the window (child tasks and deleted ones too).")
    by_status: TaskStatusCounts = Field(
        description="The tasks created in the window by their status now (they add up to `created`)."
    )
    finished: TaskOutcomes
    success_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="completed / (completed + failed) of the tasks that ended so in the window; null when "
        "none did.",
    )
    active_users: int = Field(ge=0, description="Distinct users who created a task in the window.")
    series: list[TaskStatsPoint] = Field(
        description="Every bucket of the window, oldest first, empty ones included (zeros)."
    )
