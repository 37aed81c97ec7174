"""The answers the gateway composes from several services: the reply models of those routes (and of their
OpenAPI entries). Each extends the shared model of the service it starts from (`funmagic_contracts.api`)
with what the gateway adds, so nothing a service answers is lost on the way.

    CreationPage        GET /api/tasks: tasks' list, with `thumbnail_url` (storage) for each task and child
    TaskDetail          GET /api/tasks/{task_id} (and the admin's): tasks' task, with `url` (storage) on every
                        output asset of its steps and its result, and of its children's
    AdminUserOverview   GET /api/admin/users/{user_id}/overview: identity's user, credits' balance and latest
                        transactions, tasks' latest tasks of the user
    AdminStatsOverview  GET /api/admin/stats/overview: tasks' and credits' figures over one window, and each
                        provider of user tools with its last health check (providers)
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from funmagic_contracts.api import Reply
from funmagic_contracts.api.credits import Balance, CreditStats, Transaction
from funmagic_contracts.api.identity import UserView
from funmagic_contracts.api.stats import StatsWindow
from funmagic_contracts.api.tasks import Task, TaskListItem, TaskStats

__all__ = [
    "AdminStatsOverview",
    "AdminUserOverview",
    "Creation",
    "CreationChild",
    "CreationPage",
    "OutputAsset",
    "ProviderHealth",
    "StepResult",
    "TaskDetail",
    "TaskPayload",
    "TaskResult",
]

ASSET_URL_DOC = (
    "Where to fetch the file: its CDN URL when published, else a presigned URL valid for about an hour; "
    "null when the file is gone (deleted)."
)
THUMBNAIL_URL_DOC = "The thumbnail (`thumbnail_asset_id`) as a URL to show; null without one."


# --- a task with its outputs' URLs -----------------------------------------------------------------------
# The payload is tasks' document: these models name only the members the gateway adds to, and keep the
# rest as it is (extra="allow"), so a member tasks adds later still reaches the client.


class OutputAsset(Reply):
    model_config = ConfigDict(extra="allow")

    asset_id: str
    role: str | None = None
    url: str | None = Field(None, description=ASSET_URL_DOC)


class StepResult(Reply):
    model_config = ConfigDict(extra="allow")

    step_id: str
    assets: list[OutputAsset] = Field(default_factory=list)


class TaskResult(Reply):
    model_config = ConfigDict(extra="allow")

    assets: list[OutputAsset] = Field(default_factory=list)


class TaskPayload(Reply):
    model_config = ConfigDict(extra="allow")

    steps: list[StepResult] = Field(default_factory=list, description="Each completed step's outputs.")
    output: TaskResult | None = Field(None, description="The task's result, once it completed.")

    def output_assets(self) -> list[OutputAsset]:
        """Every output asset of the steps and of the result (one asset may be in both)."""
        of_steps = [asset for step in self.steps for asset in step.assets]
        return of_steps + (self.output.assets if self.output else [])


class TaskDetail(Task):
    payload: TaskPayload | None = Field(None, description="input, per-step outputs, output, error")
    children: list[TaskDetail] | None = Field(
        None, description="Its child tasks (the chained steps, and theirs), oldest first, with payloads."
    )

    def output_assets(self) -> list[OutputAsset]:
        """Every output asset of the task and of its children."""
        own = self.payload.output_assets() if self.payload else []
        return own + [asset for child in self.children or [] for asset in child.output_assets()]


# --- my creations ----------------------------------------------------------------------------------------


class CreationChild(Task):
    thumbnail_asset_id: str | None = Field(
        None, description="The child task's own thumbnail, when tasks names one."
    )
    thumbnail_url: str | None = Field(None, description=THUMBNAIL_URL_DOC)


class Creation(TaskListItem):
    thumbnail_url: str | None = Field(None, description=THUMBNAIL_URL_DOC)
    children: list[CreationChild] | None = Field(
        None, description="Its child tasks (the chained steps, and theirs), oldest first."
    )

    def with_children(self) -> list[Creation | CreationChild]:
        return [self, *(self.children or [])]


class CreationPage(Reply):
    items: list[Creation]
    next_cursor: str | None = None

    def thumbnail_asset_ids(self) -> list[str]:
        return [
            entry.thumbnail_asset_id
            for item in self.items
            for entry in item.with_children()
            if entry.thumbnail_asset_id
        ]


# --- an admin's view of a user ---------------------------------------------------------------------------


class AdminUserOverview(Reply):
    user: UserView = Field(description="The account, with `session_count`.")
    credits: Balance
    transactions: list[Transaction] = Field(description="The latest credit transactions, newest first.")
    tasks: list[TaskListItem] = Field(
        description="The latest tasks of the user (child tasks too), newest first."
    )


# --- the admin app's overview ----------------------------------------------------------------------------


class ProviderHealth(Reply):
    id: str
    name: str
    display_name: str | None = None
    type: str = Field(description="openai, fal, tripo or local")
    is_active: bool
    is_healthy: bool | None = Field(None, description="The last health check's result; null: never checked.")
    health_checked_at: datetime | None = Field(None, description="When it was last checked.")


class AdminStatsOverview(Reply):
    window: StatsWindow
    since: datetime = Field(description="The period's start (inclusive), the same for tasks and credits.")
    until: datetime = Field(description="The period's end (exclusive): the end of the current bucket.")
    tasks: TaskStats = Field(description="Tasks per bucket, outcomes, success rate, active users.")
    credits: CreditStats = Field(description="Credits sold (and what they paid), spent, refunded, granted.")
    providers: list[ProviderHealth] = Field(
        description="Every provider of user tools (web scope) with its last health check, by name."
    )
