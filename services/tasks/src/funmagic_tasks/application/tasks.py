"""The task use cases (DESIGN §4): creation, reads, cancellation and deletion over HTTP, then the saga's
reactions to credits and providers events, and to identity's closed accounts, and the sweeper.

Every change is lock → load → decide → save → publish in one unit of work: the task row is locked, the
aggregate (`domain/task.py`) decides, the new state is saved and the change's events go to the outbox in
the same transaction, so a crash never leaves a task changed without its events or the other way round.
Reactions run in the consumer's unit of work (with its inbox row). A decision without events changed
nothing (stale or redelivered news), and nothing is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from funmagic_contracts.api.stats import StatsWindow, period_of
from funmagic_contracts.credits.events import CreditsReservationRejected, CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserDeleted, UserDisabled, UserEnabled
from funmagic_contracts.providers.events import StepCompleted, StepFailed
from funmagic_contracts.tasks.events import TaskCancelled, TaskCompleted, TaskFailed
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock
from funmagic_kit.logs import get_logger
from funmagic_kit.ports import SentRead
from funmagic_tasks.application.ports import Assets, TaskMetrics, TasksUnitOfWork, UnitOfWorkFactory
from funmagic_tasks.application.sweeping import sweep
from funmagic_tasks.domain import accounts  # what a closed account means for tasks
from funmagic_tasks.domain import task as rules  # the aggregate's transitions and rules
from funmagic_tasks.domain.json_values import JsonObject, JsonValue
from funmagic_tasks.domain.stats import success_rate
from funmagic_tasks.domain.task import EffectiveStatus, Task, TaskChange, TaskFamily, TaskPolicy
from funmagic_tasks.domain.tasks import (
    IdempotencyKeyReused,
    ParentNotFound,
    ProducedAsset,
    TaskNotFound,
    TaskRefused,
    TaskRequest,
    TaskStatus,
    ToolNotFound,
    TooManyTasks,
    fingerprint,
    plan_task,
    request_document,
)

__all__ = ["TaskService", "family_view", "task_view"]

log = get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class TaskService:
    uow: UnitOfWorkFactory
    assets: Assets
    clock: Clock
    policy: TaskPolicy
    metrics: TaskMetrics

    # --- HTTP: create, read, cancel, delete ----------------------------------------------------

    async def create(
        self, user_id: str, request: TaskRequest, idempotency_key: str | None
    ) -> tuple[JsonObject, bool]:
        """(task view, created?) — a retried request with the same key and body gets the same task."""
        # Reads of one statement each, outside a transaction (no BEGIN, no COMMIT): what they find is
        # checked again under the creation lock below.
        async with self.uow().reading() as uow:
            if idempotency_key and (existing := await uow.tasks.by_idempotency_key(user_id, idempotency_key)):
                return _replayed(existing, request), False
            tool = await uow.catalog.tool_by_slug(request.tool_slug)
            parent = await uow.tasks.get(request.parent_task_id) if request.parent_task_id else None
        if tool is None:
            raise ToolNotFound(request.tool_slug)
        if request.parent_task_id and (parent is None or not rules.visible_to(parent, user_id, admin=False)):
            raise ParentNotFound()
        plan = plan_task(tool, request.step_id, rules.parent_of(parent) if parent else None, request.input)
        # Every referenced asset must be the caller's: a task never works on another user's file.
        if plan.image_asset_id is not None and not await self.assets.owns(user_id, plan.image_asset_id):
            raise TaskRefused("no such asset of yours", code="asset_not_found", field="input.imageAssetId")
        change = rules.request_task(
            task_id=str(uuid.uuid4()),
            user_id=user_id,
            tool=tool,
            request=request,
            plan=plan,
            idempotency_key=idempotency_key,
            now=self.clock.now(),
        )
        # Pipelined: the lock and the checks under it go out together (one round trip), then the task's
        # insert, whose stored row the reply shows (one more), then the outbox rows with the COMMIT.
        async with self.uow().pipelined() as uow:
            # One creation per user at a time, so the cap on running tasks holds under concurrency.
            await uow.tasks.hold_creations_of(user_id)
            replayed = None
            if idempotency_key:
                replayed = await uow.tasks.send_by_idempotency_key(user_id, idempotency_key)
            standing = await uow.accounts.send_standing(user_id)
            active = await uow.tasks.send_active_count(user_id)
            # The tool stays until this commits: deleting it then sees this task and keeps the tool.
            tool_held = await uow.catalog.send_hold_tool(tool.id)
            if replayed and (existing := await replayed.answer()):
                return _replayed(existing, request), False
            # Under the creation lock, which the account's closing takes too: a request authenticated just
            # before the account closed creates nothing the closing would not end.
            accounts.check_may_request_tasks(await standing.answer())
            if not rules.may_request_another(await active.answer(), self.policy):
                raise TooManyTasks(self.policy.max_active_per_user)
            if not await tool_held.answer():
                raise ToolNotFound(request.tool_slug)
            # And the parent is still there: deleting it waits for this task, and deletes it too.
            if request.parent_task_id:
                held = await uow.tasks.lock(request.parent_task_id)
                if held is None or not rules.visible_to(held, user_id, admin=False):
                    raise ParentNotFound()
            created = await uow.tasks.add(change.task)
            self._publish(uow, change, None)
        log.info(
            "task requested", extra={"task_id": created.id, "tool": created.tool_slug, "price": created.price}
        )
        return task_view(created), True

    async def get(self, user_id: str, task_id: str, *, admin: bool = False) -> JsonObject:
        """The task with its payload and its child tasks (and theirs) with theirs, oldest first."""
        # Outside a transaction (two round trips fewer): a child read a moment after its parent is newer,
        # never inconsistent — a task's family only grows, and a deleted task is filtered either way.
        async with self.uow().reading() as uow:
            task = await uow.tasks.get(task_id)
            if task is None or not rules.visible_to(task, user_id, admin=admin):
                raise TaskNotFound("no such task")
            children = await uow.tasks.descendants(task_id)
        view = task_view(task, with_payload=True)
        view["children"] = [task_view(child, with_payload=True) for child in children]
        return view

    async def list_mine(
        self,
        user_id: str,
        *,
        status: EffectiveStatus | None = None,
        tool_slug: str | None = None,
        category: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JsonObject:
        """The creations page: the user's top-level tasks, newest first, each with its family folded in."""
        async with self.uow().reading() as uow:
            families, next_cursor = await uow.tasks.families(
                user_id=user_id, status=status, tool_slug=tool_slug, category=category, limit=limit,
                cursor=cursor,
            )  # fmt: skip
        return {"items": [family_view(family) for family in families], "next_cursor": next_cursor}

    async def search(
        self,
        *,
        user_id: str | None = None,
        status: TaskStatus | None = None,
        tool_slug: str | None = None,
        category: str | None = None,
        include_deleted: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JsonObject:
        """The admin search: every task as it is (child tasks too), newest first; deleted ones on request;
        those created in [`created_from`, `created_to`) when given."""
        async with self.uow() as uow:
            tasks, next_cursor = await uow.tasks.page(
                user_id=user_id, status=status, tool_slug=tool_slug, category=category,
                include_deleted=include_deleted, created_from=created_from, created_to=created_to,
                limit=limit, cursor=cursor,
            )  # fmt: skip
        items: list[JsonValue] = [{**task_view(task), "deleted_at": _iso(task.deleted_at)} for task in tasks]
        return {"items": items, "next_cursor": next_cursor}

    async def stats(self, window: StatsWindow) -> JsonObject:
        """The admin overview's figures of tasks over `window` up to now (`TaskStats`), counted in SQL."""
        period = period_of(window, self.clock.now())
        async with self.uow() as uow:
            figures = await uow.tasks.figures(period.since, period.until, period.bucket)
        series: list[JsonValue] = [
            {"at": _iso(b.at), "created": b.created, "completed": b.completed, "failed": b.failed}
            for b in figures.series
        ]
        return {
            "window": window,
            "since": _iso(period.since),
            "until": _iso(period.until),
            "bucket_seconds": period.bucket_seconds,
            "created": figures.created,
            "by_status": dict(figures.by_status),
            "finished": {"completed": figures.completed, "failed": figures.failed},
            "success_rate": success_rate(figures.completed, figures.failed),
            "active_users": figures.active_users,
            "series": series,
        }

    async def cancel(self, user_id: str, task_id: str, *, admin: bool = False) -> JsonObject:
        async with self.uow() as uow:
            task = await uow.tasks.lock(task_id)
            if task is None or not rules.visible_to(task, user_id, admin=admin):
                raise TaskNotFound("no such task")
            change = rules.cancel(task, by=user_id, now=self.clock.now())
            saved = await self._apply(uow, change, None)
            cancelled = change.task if saved is None else await saved.answer()
            if task.user_id != user_id and cancelled.status != task.status:  # an admin, on someone's task
                change = {"owner": task.user_id, "status": {"from": task.status, "to": cancelled.status}}
                uow.record(AdminAction("task.cancelled", "task", task_id, change, actor_id=user_id))
        return task_view(cancelled, with_payload=True)

    async def delete(self, user_id: str, task_id: str, *, admin: bool = False) -> None:
        """Soft-delete the task and its descendants, cancelling first any that still runs (what they did not
        use goes back to the user); one TaskDeleted tells storage to delete their outputs."""
        async with self.uow() as uow:
            task = await uow.tasks.lock(task_id)
            if task is None or not rules.visible_to(task, user_id, admin=admin):
                raise TaskNotFound("no such task")
            # Locked after the task, oldest first: a reaction locks one task, so no order deadlocks.
            descendants = await uow.tasks.descendants(task_id, lock=True)
            deletion = rules.delete(task, descendants=descendants, by=user_id, now=self.clock.now())
            for deleted in deletion.tasks:
                await uow.tasks.save(deleted)
            ended = {t.id: t for t in deletion.tasks}
            for event in deletion.events:
                uow.publish(event)
                if isinstance(event, TaskCancelled):
                    self._count_end(uow, ended[event.task_id])
            if task.user_id != user_id and deletion.tasks:  # an admin, on someone's task
                change = {"owner": task.user_id, "tasks": len(deletion.tasks)}
                uow.record(AdminAction("task.deleted", "task", task_id, change, actor_id=user_id))
        log.info(
            "task deleted",
            extra={"task_id": task_id, "tasks": len(deletion.tasks), "by_admin": task.user_id != user_id},
        )

    # --- reactions (in the consumer's unit of work) ---------------------------------------------

    async def credits_reserved(
        self, event: CreditsReserved, envelope: Envelope, uow: TasksUnitOfWork
    ) -> None:
        task = await uow.tasks.lock(event.reservation_id)
        if task is not None:
            change = rules.start(task, now=self.clock.now(), policy=self.policy)
            await self._apply(uow, change, envelope)
            if rules.is_a_use_of_its_tool(change):
                await uow.catalog.count_use(task.tool_id)

    async def reservation_rejected(
        self, event: CreditsReservationRejected, envelope: Envelope, uow: TasksUnitOfWork
    ) -> None:
        task = await uow.tasks.lock(event.reservation_id)
        if task is not None:
            change = rules.reject_reservation(task, reason=event.reason, now=self.clock.now())
            await self._apply(uow, change, envelope)

    async def step_completed(self, event: StepCompleted, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        task = await uow.tasks.lock(event.task_id)
        if task is not None:
            change = rules.complete_step(
                task,
                step_id=event.step_id,
                attempt=event.attempt,
                assets=[ProducedAsset(a.asset_id, a.role) for a in event.output.assets],
                metadata=event.output.metadata,
                now=self.clock.now(),
                policy=self.policy,
            )
            await self._apply(uow, change, envelope)

    async def step_failed(self, event: StepFailed, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        task = await uow.tasks.lock(event.task_id)
        if task is not None:
            change = rules.fail_step(
                task,
                step_id=event.step_id,
                attempt=event.attempt,
                code=event.error_code,
                message=event.error_message,
                now=self.clock.now(),
            )
            await self._apply(uow, change, envelope)

    # --- reactions to identity: a closed account (in the consumer's unit of work) -----------------------

    async def user_disabled(self, event: UserDisabled, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        """An admin disabled the account: it requests no task, and its tasks end as that admin's cancel
        would end them (credits releases what they did not use)."""
        now = self.clock.now()
        await self._set_standing(uow, event.user_id, lambda standing: accounts.disable(standing, now=now))
        await self._end_tasks_of(uow, event.user_id, by=event.by, now=now, caused_by=envelope)

    async def user_enabled(self, event: UserEnabled, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        """A disabled account may request tasks again (its ended tasks stay as they ended)."""
        await self._set_standing(uow, event.user_id, accounts.enable)

    async def user_deleted(self, event: UserDeleted, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        """The account is gone: it requests no task, and its tasks end as the user's own cancel would end
        them. The ended tasks stay (the ledger and the audit name them)."""
        now = self.clock.now()
        await self._set_standing(uow, event.user_id, lambda standing: accounts.delete(standing, now=now))
        await self._end_tasks_of(uow, event.user_id, by=event.user_id, now=now, caused_by=envelope)

    async def _set_standing(
        self,
        uow: TasksUnitOfWork,
        user_id: str,
        transition: Callable[[accounts.Standing], accounts.Standing],
    ) -> None:
        # The creation lock first, as `create` takes it: a creation either commits before (and its task is
        # ended below) or sees the account closed.
        await uow.tasks.hold_creations_of(user_id)
        standing = await uow.accounts.standing(user_id)
        changed = transition(standing)
        if changed != standing:
            await uow.accounts.save(changed)
            log.info("account standing changed", extra={"user_id": user_id, "closure": changed.closure})

    async def _end_tasks_of(
        self, uow: TasksUnitOfWork, user_id: str, *, by: str, now: datetime, caused_by: Envelope
    ) -> None:
        """Each pending or running task of the user, cancelled the way `cancel` cancels one (`rules.cancel`,
        saved and published by `_apply`). A redelivery finds them ended and changes nothing."""
        active = await uow.tasks.active_of(user_id)
        changes = accounts.end_tasks_of_closed_account(active, by=by, now=now)
        for change in changes:
            await self._apply(uow, change, caused_by)
        if changes:
            log.info("tasks of a closed account cancelled", extra={"user_id": user_id, "count": len(changes)})

    # --- the sweeper ------------------------------------------------------------------------------

    async def sweep_overdue(self, limit: int = 100) -> int:
        """End tasks that can no longer end by themselves; returns how many were ended."""
        now = self.clock.now()
        async with self.uow() as uow:
            overdue = await uow.tasks.overdue(
                now, pending_before=now - self.policy.pending_timeout, limit=limit
            )
        # Ended just below, normally: one still counted round after round is a task the sweep cannot end.
        self.metrics.overdue(len(overdue))
        ended = await sweep(overdue, lambda task_id: self._time_out(task_id, now), what="task")
        if ended:
            log.warning("overdue tasks ended", extra={"count": ended})
        return ended

    async def _time_out(self, task_id: str, now: datetime) -> bool:
        """One overdue task ended, in a transaction of its own; whether it changed."""
        async with self.uow() as uow:
            task = await uow.tasks.lock(task_id)
            if task is None:
                return False
            change = rules.time_out(task, now=now, policy=self.policy)
            await self._apply(uow, change, None)
        return change.changed

    async def _apply(
        self, uow: TasksUnitOfWork, change: TaskChange, caused_by: Envelope | None
    ) -> SentRead[Task] | None:
        """Save the decided task and put its events in the outbox, in the caller's transaction; the save's
        answer (the task as stored) for a caller that needs it, None when nothing changed. A reaction to an
        event does not wait for it: its write leaves with the COMMIT."""
        if not change.changed:
            return None
        saved = await uow.tasks.save(change.task)
        self._publish(uow, change, caused_by)
        return saved

    def _publish(self, uow: TasksUnitOfWork, change: TaskChange, caused_by: Envelope | None) -> None:
        for event in change.events:
            uow.publish(event, caused_by=caused_by)
            if isinstance(event, TaskCompleted | TaskFailed | TaskCancelled):
                log.info(
                    f"task {change.task.status}",
                    extra={
                        "task_id": change.task.id,
                        "charged": event.charged_credits,
                        "error_code": change.task.error.code if change.task.error else None,
                    },
                )
                self._count_end(uow, change.task)

    def _count_end(self, uow: TasksUnitOfWork, task: Task) -> None:
        """Once the transaction commits: the ended task's time from creation to its end, by tool."""
        if task.finished_at is None:
            return
        seconds = (task.finished_at - task.created_at).total_seconds()
        uow.after_commit(lambda: self.metrics.task_ended(task.tool_slug, task.status, seconds))


def _replayed(existing: Task, request: TaskRequest) -> JsonObject:
    if existing.request_hash != fingerprint(request):
        raise IdempotencyKeyReused()
    return task_view(existing)


# --- views ----------------------------------------------------------------------------------------------


def task_view(task: Task, *, with_payload: bool = False) -> JsonObject:
    """The task as the API shows it; with its payload (input, step results, output, error) for one task."""
    view: JsonObject = {
        "id": task.id,
        "user_id": task.user_id,
        "tool_id": task.tool_id,
        "tool_slug": task.tool_slug,
        "parent_task_id": task.parent_task_id,
        "status": task.status,
        "step_ids": list(task.step_ids),
        "current_step_id": task.current_step_id,
        "completed_step_ids": list(task.completed_steps),
        "price": task.price,
        "charged_credits": task.charged_credits,
        "error": {"code": task.error.code, "message": task.error.message} if task.error else None,
        "created_at": _iso(task.created_at),
        "started_at": _iso(task.started_at),
        "finished_at": _iso(task.finished_at),
    }
    if with_payload:
        view["payload"] = {
            "input": request_document(task.request)["input"],
            "steps": [rules.step_result_document(s) for s in task.step_results],
            "output": rules.task_result_document(task.output) if task.output else None,
            "error": task.error.message if task.error else None,
        }
    return view


def family_view(family: TaskFamily) -> JsonObject:
    """A top-level task of the creations page: its view, its child tasks', and the family's values."""
    tool_type = (
        {"id": family.tool_type_id, "name": family.tool_type_name}
        if family.tool_type_id is not None
        else None
    )
    return {
        **task_view(family.task),
        "children": [task_view(child) for child in family.children],
        "effective_status": family.effective_status,
        "credits_total": family.credits_total,
        "thumbnail_asset_id": family.thumbnail_asset_id,
        "tool_type": tool_type,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
