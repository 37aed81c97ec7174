"""A task as an aggregate: frozen state and the transitions of its saga, each returning the events it
implies.

Pure: no I/O. The application locks the task, calls one transition, saves `change.task` and publishes
`change.events` in one transaction. The task is stored as state, not event-sourced: the events are the
contract events other services react to (credits holds and settles, providers runs steps).

    request_task ──► pending ──start──► running ──complete_step──► (next step) … ──► completed
                        │                  │
                        │                  ├─fail_step / time_out (step deadline) ──► failed
                        ├─reject_reservation / time_out (credits never answered) ──► failed
                        └───────────── cancel (pending or running) ──► cancelled

    delete (any state, with the task's child tasks): a pending or running one is cancelled first, then
    each is marked deleted (`deleted_at`; kept for the ledger and the audit) and one TaskDeleted says so.

News that is not about the task's current state — a step event of another step or attempt, anything
after the task ended, a redelivery of what was already applied — leaves the task unchanged, so
redeliveries are harmless. The one thing such news may still say: a step completion the task did not take
brought outputs that nobody pays for (a cancel or a timeout won the race), so `StepOutputDiscarded` has
storage delete them. Every state a transition produces satisfies
`check_invariants`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.tasks.events import (
    StepInput,
    StepOutputDiscarded,
    StepRequested,
    TaskCancelled,
    TaskCancelRequested,
    TaskCompleted,
    TaskDeleted,
    TaskFailed,
    TaskOutput,
    TaskRequested,
    TaskStarted,
)
from funmagic_tasks.domain.catalog import Tool
from funmagic_tasks.domain.json_values import JsonObject, JsonValue
from funmagic_tasks.domain.tasks import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    ParentTask,
    PlannedStep,
    ProducedAsset,
    TaskPlan,
    TaskRequest,
    TaskStatus,
    charged_for,
    fingerprint,
    next_step,
    plan_steps,
    primary_asset,
    resolve_prompt,
    resolve_style_image,
    step_input,
)

__all__ = [
    "MAX_ERROR_LENGTH",
    "EffectiveStatus",
    "InvariantViolated",
    "ResolvedInput",
    "StepResult",
    "Task",
    "TaskChange",
    "TaskDeletion",
    "TaskError",
    "TaskEvent",
    "TaskFamily",
    "TaskPolicy",
    "TaskResult",
    "cancel",
    "charged_is_the_cost_of_completed_steps",
    "check_invariants",
    "complete_step",
    "credits_are_overdue",
    "delete",
    "event_is_about_the_current_step",
    "fail_step",
    "is_a_use_of_its_tool",
    "may_request_another",
    "outputs_nobody_pays_for",
    "parent_of",
    "reject_reservation",
    "request_task",
    "start",
    "step_is_overdue",
    "step_result_document",
    "task_result_document",
    "time_out",
    "visible_to",
]

# Error texts are cut here: they come from providers and end up in events and in the task's row.
MAX_ERROR_LENGTH = 1000

TaskEvent = (
    TaskRequested
    | TaskStarted
    | StepRequested
    | TaskCompleted
    | TaskFailed
    | TaskCancelRequested
    | TaskCancelled
    | TaskDeleted
    | StepOutputDiscarded
)


@dataclass(frozen=True)
class TaskPolicy:
    max_active_per_user: int = 10
    # Tasks' own deadline is the provider's plus this, so a provider's StepFailed normally comes first.
    deadline_grace: timedelta = timedelta(seconds=30)
    # A task whose credits have not answered after this is failed (nothing was charged).
    pending_timeout: timedelta = timedelta(minutes=10)


# --- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedInput:
    """What the first step works on, decided when the task was created."""

    prompt: str | None
    image_asset_id: str | None
    # The chosen style reference's image, for the first step (decided now: a later edit of the tool's
    # styles changes nothing for the task).
    style_asset_id: str | None = None


@dataclass(frozen=True)
class StepResult:
    """What one completed step produced."""

    step_id: str
    attempt: int
    assets: tuple[ProducedAsset, ...]
    metadata: Mapping[str, JsonValue]


@dataclass(frozen=True)
class TaskResult:
    """What a completed task produced: its last step's assets, and every step's result."""

    assets: tuple[ProducedAsset, ...]
    steps: tuple[StepResult, ...]


@dataclass(frozen=True)
class TaskError:
    """Why a task failed: a stable `code` clients read, and a message (at most MAX_ERROR_LENGTH)."""

    code: str
    message: str


@dataclass(frozen=True)
class Task:
    id: str
    user_id: str
    tool_id: str
    tool_slug: str
    parent_task_id: str | None
    plan: tuple[PlannedStep, ...]
    price: int
    request: TaskRequest
    resolved: ResolvedInput
    idempotency_key: str | None
    request_hash: str | None
    created_at: datetime
    updated_at: datetime
    status: TaskStatus = "pending"
    current_step_id: str | None = None
    attempt: int = 1
    completed_steps: tuple[str, ...] = ()
    step_results: tuple[StepResult, ...] = ()
    output: TaskResult | None = None
    charged_credits: int | None = None
    error: TaskError | None = None
    # When tasks gives up on the current step (the provider's deadline plus a grace).
    step_deadline_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Set when the owner or an admin deleted it: no list or read shows it, the ledger and the audit keep it.
    deleted_at: datetime | None = None

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(step.id for step in self.plan)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def current_step(self) -> PlannedStep | None:
        return next((step for step in self.plan if step.id == self.current_step_id), None)


EffectiveStatus = Literal["pending", "running", "completed", "failed", "cancelled", "action_required"]


@dataclass(frozen=True)
class TaskFamily:
    """A top-level task as the user's list shows it: with its child tasks (chained steps, and theirs; oldest
    first) and what the family adds up to. Read as it is stored; the store computes the family's values in
    SQL (the list filters on `effective_status`), by these rules:

    - `effective_status`: `running` while any member is pending or running; `action_required` when the
      tool is not a pipeline and the last step the family completed (of its latest completed member) is
      not the tool's last step, so the next step waits for the user; else the latest member's status.
    - `credits_total`: what the members were charged (0 while nothing is).
    - `thumbnail_asset_id`: the first `image` output of the latest completed member, else its `preview`.
    """

    task: Task
    children: tuple[Task, ...]
    effective_status: EffectiveStatus
    credits_total: int
    thumbnail_asset_id: str | None
    # The type of the tool it ran (its category on the creations page); None once the tool is gone.
    tool_type_id: str | None
    tool_type_name: str | None


@dataclass(frozen=True)
class TaskDeletion:
    """The tasks a delete marked deleted (the task first, then its descendants) and the events of it: each
    cancellation of a member that was still active, then one `TaskDeleted`. No tasks: nothing changed."""

    tasks: tuple[Task, ...]
    events: tuple[TaskEvent, ...] = ()


@dataclass(frozen=True)
class TaskChange:
    """The task after a transition and the events of the change; no events: nothing changed."""

    task: Task
    events: tuple[TaskEvent, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.events)


# --- rules ---------------------------------------------------------------------------------------------


def is_a_use_of_its_tool(change: TaskChange) -> bool:
    """A tool is used once per top-level task that starts (a child task continues a use, it is not one)."""
    started = any(isinstance(event, TaskStarted) for event in change.events)
    return started and change.task.parent_task_id is None


def event_is_about_the_current_step(task: Task, step_id: str, attempt: int) -> bool:
    """A step event counts only for the step the task runs now, in its current attempt: anything else is
    stale (an earlier attempt, another step) or a redelivery of news already applied."""
    return task.status == "running" and task.current_step_id == step_id and task.attempt == attempt


def outputs_nobody_pays_for(task: Task, assets: Sequence[ProducedAsset]) -> tuple[str, ...]:
    """A step completion the task did not take: its assets that the task does not hold (its recorded
    results, its input) were made for nothing it charges. A redelivery of a completion it took has none."""
    held = {asset.asset_id for result in task.step_results for asset in result.assets}
    held.update(a for a in (task.resolved.image_asset_id, task.resolved.style_asset_id) if a is not None)
    return tuple(dict.fromkeys(asset.asset_id for asset in assets if asset.asset_id not in held))


def charged_is_the_cost_of_completed_steps(task: Task) -> int:
    """What a task that ends now pays: its completed steps, nothing for the rest."""
    return charged_for(task.plan, task.completed_steps)


def step_is_overdue(task: Task, now: datetime) -> bool:
    return task.status == "running" and task.step_deadline_at is not None and task.step_deadline_at < now


def credits_are_overdue(task: Task, now: datetime, policy: TaskPolicy) -> bool:
    return task.status == "pending" and task.created_at < now - policy.pending_timeout


def visible_to(task: Task, user_id: str, *, admin: bool) -> bool:
    """A user sees their own tasks; an admin sees every task. A deleted task is seen by no one (only the
    admin search that asks for deleted tasks lists it)."""
    return not task.is_deleted and (admin or task.user_id == user_id)


def may_request_another(active_tasks: int, policy: TaskPolicy) -> bool:
    return active_tasks < policy.max_active_per_user


def parent_of(task: Task) -> ParentTask:
    """The task as the parent of a chained task sees it."""
    return ParentTask(
        id=task.id,
        tool_id=task.tool_id,
        status=task.status,
        step_ids=task.completed_steps,
        output_assets=task.output.assets if task.output is not None else (),
    )


# --- transitions ---------------------------------------------------------------------------------------


def request_task(
    *,
    task_id: str,
    user_id: str,
    tool: Tool,
    request: TaskRequest,
    plan: TaskPlan,
    idempotency_key: str | None,
    now: datetime,
) -> TaskChange:
    """A new pending task for `plan` (see `plan_task`); credits is asked to hold its price."""
    task = Task(
        id=task_id,
        user_id=user_id,
        tool_id=tool.id,
        tool_slug=tool.slug,
        parent_task_id=request.parent_task_id,
        plan=plan_steps(tool, plan.step_ids, plan.provider),
        price=plan.price,
        request=request,
        resolved=ResolvedInput(
            resolve_prompt(tool, request.input),
            plan.image_asset_id,
            resolve_style_image(tool, request.input),
        ),
        idempotency_key=idempotency_key,
        request_hash=fingerprint(request),
        created_at=now,
        updated_at=now,
    )
    requested = TaskRequested(
        task_id=task.id,
        user_id=task.user_id,
        tool_id=task.tool_id,
        tool_slug=task.tool_slug,
        step_ids=task.step_ids,
        price=task.price,
        parent_task_id=task.parent_task_id,
        idempotency_key=task.idempotency_key,
    )
    return _changed(task, requested)


def start(task: Task, *, now: datetime, policy: TaskPolicy) -> TaskChange:
    """Credits held the price: the task runs its first step. A task that is no longer pending (cancelled
    or timed out meanwhile, or started already) stays as it is; its settlement releases the hold."""
    if task.status != "pending":
        return TaskChange(task)
    first = task.plan[0]
    running = replace(
        task,
        status="running",
        started_at=now,
        current_step_id=first.id,
        attempt=1,
        step_deadline_at=_deadline(first, now) + policy.deadline_grace,
        updated_at=now,
    )
    resolved = task.resolved
    request = step_input(first, resolved.prompt, resolved.image_asset_id, resolved.style_asset_id)
    return _changed(
        running,
        TaskStarted(task_id=task.id, user_id=task.user_id, reservation_id=task.id),
        _step_requested(running, first, request, now),
    )


def reject_reservation(task: Task, *, reason: str, now: datetime) -> TaskChange:
    """Credits would not hold the price: the task fails, nothing charged."""
    if task.status != "pending":
        return TaskChange(task)
    if reason == "insufficient_credits":
        return _fail(task, "insufficient_credits", f"not enough credits: this task costs {task.price}", now)
    return _fail(task, reason, reason, now)


def complete_step(
    task: Task,
    *,
    step_id: str,
    attempt: int,
    assets: Sequence[ProducedAsset],
    metadata: Mapping[str, JsonValue],
    now: datetime,
    policy: TaskPolicy,
) -> TaskChange:
    """The current step succeeded: the next step works on its output, or the task is complete and pays for
    every step. A completion the task no longer waits for changes nothing but discards what it made."""
    if not event_is_about_the_current_step(task, step_id, attempt):
        return _discard(task, step_id, attempt, assets)
    result = StepResult(step_id, attempt, tuple(assets), dict(metadata))
    done = replace(
        task,
        completed_steps=(*task.completed_steps, step_id),
        step_results=(*task.step_results, result),
        updated_at=now,
    )
    following = next_step(task.plan, step_id)
    if following is not None:
        moved = replace(
            done,
            current_step_id=following.id,
            attempt=1,
            step_deadline_at=_deadline(following, now) + policy.deadline_grace,
        )
        request = step_input(following, None, primary_asset(result.assets))
        return _changed(moved, _step_requested(moved, following, request, now))
    output = TaskResult(result.assets, done.step_results)
    completed = replace(
        done,
        status="completed",
        output=output,
        charged_credits=charged_is_the_cost_of_completed_steps(done),
        finished_at=now,
        step_deadline_at=None,
    )
    return _changed(
        completed,
        TaskCompleted(
            task_id=task.id,
            user_id=task.user_id,
            charged_credits=completed.charged_credits or 0,
            output=TaskOutput(
                assets=tuple(OutputAsset(asset_id=a.asset_id, role=a.role) for a in output.assets),
                metadata={"steps": [step_result_document(s) for s in output.steps]},
            ),
        ),
    )


def fail_step(
    task: Task, *, step_id: str, attempt: int, code: str, message: str, now: datetime
) -> TaskChange:
    """The current step failed: so does the task, paying for the steps it completed."""
    if not event_is_about_the_current_step(task, step_id, attempt):
        return TaskChange(task)
    return _fail(task, code, f"step {step_id!r} failed: {message}", now)


def cancel(task: Task, *, by: str, now: datetime) -> TaskChange:
    """The owner or an admin stops the task; it pays for the steps it completed. Providers are asked to
    stop the running step. An ended task stays as it ended."""
    if not task.is_active:
        return TaskChange(task)
    cancelled = replace(
        task,
        status="cancelled",
        charged_credits=charged_is_the_cost_of_completed_steps(task),
        finished_at=now,
        step_deadline_at=None,
        updated_at=now,
    )
    return _changed(
        cancelled,
        TaskCancelRequested(task_id=task.id, user_id=task.user_id, by=by),
        TaskCancelled(task_id=task.id, user_id=task.user_id, charged_credits=cancelled.charged_credits or 0),
    )


def delete(task: Task, *, descendants: Sequence[Task], by: str, now: datetime) -> TaskDeletion:
    """The owner or an admin deletes a task with its descendants (child tasks, and theirs). A member still
    pending or running is cancelled first (`cancel`: it pays for the steps it completed, providers are asked
    to stop, credits releases the rest of its hold); then each is marked deleted, and one `TaskDeleted`
    names them all. A descendant deleted before stays as it is; a deleted task is not deleted twice."""
    if task.is_deleted:
        return TaskDeletion(())
    deleted: list[Task] = []
    events: list[TaskEvent] = []
    for member in (task, *(d for d in descendants if not d.is_deleted)):
        cancelled = cancel(member, by=by, now=now)
        gone = replace(cancelled.task, deleted_at=now, updated_at=now)
        check_invariants(gone)
        deleted.append(gone)
        events.extend(cancelled.events)
    events.append(
        TaskDeleted(
            task_id=task.id,
            user_id=task.user_id,
            deleted_task_ids=tuple(member.id for member in deleted),
            by=by,
        )
    )
    return TaskDeletion(tuple(deleted), tuple(events))


def time_out(task: Task, *, now: datetime, policy: TaskPolicy) -> TaskChange:
    """End a task that can no longer end by itself: its step ran past the deadline (providers are asked to
    stop it), or credits never answered. Any other task stays as it is."""
    step = task.current_step
    if step_is_overdue(task, now) and step is not None:
        failed = _fail(
            task, "step_timeout", f"step {step.id!r} did not finish within {step.timeout_seconds} s", now
        )
        stop = TaskCancelRequested(task_id=task.id, user_id=task.user_id, by=task.user_id)
        return TaskChange(failed.task, (stop, *failed.events))
    if credits_are_overdue(task, now, policy):
        return _fail(task, "reservation_timeout", "credits did not answer in time", now)
    return TaskChange(task)


def _fail(task: Task, code: str, message: str, now: datetime) -> TaskChange:
    error = TaskError(code, message[:MAX_ERROR_LENGTH])
    failed = replace(
        task,
        status="failed",
        error=error,
        charged_credits=charged_is_the_cost_of_completed_steps(task),
        finished_at=now,
        step_deadline_at=None,
        updated_at=now,
    )
    return _changed(
        failed,
        TaskFailed(
            task_id=task.id,
            user_id=task.user_id,
            error_code=error.code,
            error_message=error.message,
            charged_credits=failed.charged_credits or 0,
        ),
    )


def _discard(task: Task, step_id: str, attempt: int, assets: Sequence[ProducedAsset]) -> TaskChange:
    unpaid = outputs_nobody_pays_for(task, assets)
    if not unpaid:
        return TaskChange(task)
    discarded = StepOutputDiscarded(
        task_id=task.id, user_id=task.user_id, step_id=step_id, attempt=attempt, asset_ids=unpaid
    )
    return TaskChange(task, (discarded,))


def _changed(task: Task, *events: TaskEvent) -> TaskChange:
    check_invariants(task)
    return TaskChange(task, events)


def _deadline(step: PlannedStep, now: datetime) -> datetime:
    return now + timedelta(seconds=step.timeout_seconds)


def _step_requested(task: Task, step: PlannedStep, request: StepInput, now: datetime) -> StepRequested:
    return StepRequested(
        task_id=task.id,
        user_id=task.user_id,
        step_id=step.id,
        step_type=step.type,
        provider=step.provider,
        model=step.model,
        scope="web",
        input=request,
        attempt=task.attempt,
        deadline_at=_deadline(step, now),
    )


# --- documents -----------------------------------------------------------------------------------------


def step_result_document(result: StepResult) -> JsonObject:
    """A step's result as it is stored with the task and listed in the completed task's metadata."""
    return {
        "step_id": result.step_id,
        "attempt": result.attempt,
        "assets": [{"asset_id": a.asset_id, "role": a.role} for a in result.assets],
        "metadata": dict(result.metadata),
    }


def task_result_document(result: TaskResult) -> JsonObject:
    return {
        "assets": [{"asset_id": a.asset_id, "role": a.role} for a in result.assets],
        "metadata": {"steps": [step_result_document(s) for s in result.steps]},
    }


# --- invariants ----------------------------------------------------------------------------------------


class InvariantViolated(AssertionError):
    """A state a task must never reach; raised even under `python -O` (not an `assert`)."""


def check_invariants(task: Task) -> None:
    """Raises InvariantViolated naming the broken invariant."""
    step_ids = task.step_ids
    done = task.completed_steps
    terminal = task.status in TERMINAL_STATUSES
    running = task.status == "running"
    broken = [
        (not task.plan, "a task runs at least one step"),
        (task.price != sum(step.cost for step in task.plan), "the price is the cost of the planned steps"),
        (done != step_ids[: len(done)], "completed steps are the plan's first steps, in order"),
        (tuple(r.step_id for r in task.step_results) != done, "one step result per completed step"),
        (task.attempt < 1, "attempts count from 1"),
        (
            task.status == "pending" and (task.started_at is not None or task.current_step_id is not None),
            "a pending task has not started",
        ),
        (
            running and (len(done) >= len(step_ids) or task.current_step_id != step_ids[len(done)]),
            "a running task runs the step after its completed ones",
        ),
        (
            running and (task.started_at is None or task.step_deadline_at is None),
            "a running task has started and has a deadline",
        ),
        (terminal and task.finished_at is None, "an ended task has finished_at"),
        (terminal and task.step_deadline_at is not None, "an ended task has no deadline"),
        (not terminal and task.charged_credits is not None, "only an ended task is charged"),
        (
            terminal and task.charged_credits != charged_is_the_cost_of_completed_steps(task),
            "charged is the cost of the completed steps",
        ),
        (terminal and not 0 <= (task.charged_credits or 0) <= task.price, "charged is at most the price"),
        ((task.status == "failed") != (task.error is not None), "a failed task, and only one, has an error"),
        (
            task.error is not None and len(task.error.message) > MAX_ERROR_LENGTH,
            f"an error message has at most {MAX_ERROR_LENGTH} characters",
        ),
        (
            (task.status == "completed") != (task.output is not None),
            "a completed task, and only one, has output",
        ),
        (task.status == "completed" and done != step_ids, "a completed task completed every step"),
        (task.is_deleted and not terminal, "a deleted task has ended (an active one is cancelled first)"),
    ]
    for is_broken, message in broken:
        if is_broken:
            raise InvariantViolated(message)
