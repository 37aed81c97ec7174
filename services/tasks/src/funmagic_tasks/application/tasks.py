"""The task saga (DESIGN §4): creation over HTTP, then reactions to credits and providers events.

Every transition locks the task row, applies the domain's decision, and writes the events it implies in
the same transaction (the outbox), so a crash never leaves a task changed without its events or the other
way round. Events about another step or attempt than the task's current one are stale and ignored, which
also makes redeliveries harmless. A sweeper ends tasks whose step ran past its deadline, or whose
credits never answered, so every task reaches a terminal state.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg

from funmagic_contracts.base import IntegrationEvent, OutputAsset
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.tasks.events import (
    StepInput,
    StepRequested,
    TaskCancelled,
    TaskCancelRequested,
    TaskCompleted,
    TaskFailed,
    TaskOutput,
    TaskRequested,
    TaskStarted,
)
from funmagic_kit.db import UnitOfWork
from funmagic_kit.logs import get_logger
from funmagic_tasks.domain.tasks import (
    ParentTask,
    TaskInput,
    TaskRefused,
    charged_for,
    next_step,
    plan_steps,
    plan_task,
    primary_asset,
    resolve_prompt,
    step_input,
)

__all__ = ["TaskNotFound", "TaskPolicy", "TaskService"]

log = get_logger(__name__)

Publish = Callable[[psycopg.AsyncConnection, Sequence[IntegrationEvent], Envelope | None], Awaitable[None]]


class TaskNotFound(LookupError):
    """No such task for this caller (another user's task looks exactly like a missing one)."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class Assets(Protocol):
    async def owns(self, user_id: str, asset_id: str) -> bool: ...


@dataclass(frozen=True)
class TaskPolicy:
    max_active_per_user: int = 10
    # Tasks' own deadline is the provider's plus this, so a provider's StepFailed normally comes first.
    deadline_grace: timedelta = timedelta(seconds=30)
    # A task whose credits have not answered after this is failed (nothing was charged).
    pending_timeout: timedelta = timedelta(minutes=10)


class TaskService:
    def __init__(
        self,
        *,
        uow: Callable[[], UnitOfWork],
        tasks: Callable[[psycopg.AsyncConnection], Any],
        catalog: Callable[[psycopg.AsyncConnection], Any],
        assets: Assets,
        publish: Publish,
        clock: Clock,
        policy: TaskPolicy,
    ) -> None:
        self._uow = uow
        self._tasks = tasks
        self._catalog = catalog
        self._assets = assets
        self._publish = publish
        self._clock = clock
        self._policy = policy

    # --- HTTP: create, read, cancel ------------------------------------------------------------

    async def create(
        self, user_id: str, request: Mapping[str, Any], idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """(task view, created?) — a retried request with the same key and body gets the same task."""
        request_hash = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        if idempotency_key:
            async with self._uow() as uow:
                existing = await self._tasks(uow.conn).by_idempotency_key(user_id, idempotency_key)
            if existing is not None:
                return self._replayed(existing, request_hash), False
        raw_input = request.get("input") or {}
        task_input = TaskInput(
            image_asset_id=raw_input.get("imageAssetId"),
            prompt=raw_input.get("prompt"),
            style_reference_id=raw_input.get("styleReferenceId"),
        )
        async with self._uow() as uow:
            tool = await self._catalog(uow.conn).tool_by_slug(request["toolSlug"])
            parent_row = None
            if request.get("parentTaskId"):
                parent_row = await self._tasks(uow.conn).get(request["parentTaskId"])
        if tool is None:
            raise TaskRefused(
                "tool_not_found", f"no tool {request['toolSlug']!r}", field="toolSlug", status=404
            )
        parent = None
        if request.get("parentTaskId"):
            if parent_row is None or parent_row["user_id"] != user_id:
                raise TaskRefused("parent_not_found", "no such parent task", field="parentTaskId", status=404)
            parent = ParentTask(
                id=parent_row["id"],
                tool_id=parent_row["tool_id"],
                status=parent_row["status"],
                step_ids=tuple(parent_row["completed_steps"]),
                output_assets=tuple((parent_row["output"] or {}).get("assets", ())),
            )
        plan = plan_task(tool, request.get("stepId"), parent, task_input)
        # Every referenced asset must be the caller's: a task never works on another user's file.
        if plan.image_asset_id is not None and not await self._assets.owns(user_id, plan.image_asset_id):
            raise TaskRefused("asset_not_found", "no such asset of yours", field="input.imageAssetId")
        now = self._clock.now()
        task_id = str(uuid.uuid4())
        steps = plan_steps(tool, plan.step_ids)
        task = {
            "id": task_id,
            "user_id": user_id,
            "tool_id": tool.id,
            "tool_slug": tool.slug,
            "parent_task_id": parent.id if parent else None,
            "plan": steps,
            "step_ids": list(plan.step_ids),
            "price": plan.price,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "now": now,
        }
        stored_input = {
            "request": dict(request),
            "resolved": {"prompt": resolve_prompt(tool, task_input), "image_asset_id": plan.image_asset_id},
        }
        async with self._uow() as uow:
            records = self._tasks(uow.conn)
            # One creation per user at a time, so the cap on running tasks holds under concurrency.
            await uow.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tasks:{user_id}",))
            if idempotency_key and (existing := await records.by_idempotency_key(user_id, idempotency_key)):
                return self._replayed(existing, request_hash), False
            if await records.active_count(user_id) >= self._policy.max_active_per_user:
                raise TaskRefused(
                    "too_many_tasks",
                    f"at most {self._policy.max_active_per_user} tasks may run at once; wait for one to end",
                    status=429,
                )
            await records.add(task, stored_input)
            requested = TaskRequested(
                task_id=task_id,
                user_id=user_id,
                tool_id=tool.id,
                tool_slug=tool.slug,
                step_ids=plan.step_ids,
                price=plan.price,
                parent_task_id=task["parent_task_id"],
                idempotency_key=idempotency_key,
            )
            await self._publish(uow.conn, [requested], None)
            created = await records.get(task_id)
        log.info("task requested", extra={"task_id": task_id, "tool": tool.slug, "price": plan.price})
        return task_view(created), True

    def _replayed(self, existing: Mapping[str, Any], request_hash: str) -> dict[str, Any]:
        if existing["request_hash"] != request_hash:
            raise TaskRefused(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
                field="Idempotency-Key",
                status=409,
            )
        return task_view(existing)

    async def get(self, user_id: str, task_id: str, *, admin: bool = False) -> dict[str, Any]:
        async with self._uow() as uow:
            row = await self._tasks(uow.conn).get(task_id)
        if row is None or (row["user_id"] != user_id and not admin):
            raise TaskNotFound("no such task")
        return task_view(row, with_payload=True)

    async def list(
        self,
        *,
        user_id: str | None,
        status: str | None,
        tool_slug: str | None,
        limit: int,
        cursor: str | None,
    ) -> dict[str, Any]:
        async with self._uow() as uow:
            rows, next_cursor = await self._tasks(uow.conn).page(
                user_id=user_id, status=status, tool_slug=tool_slug, limit=limit, cursor=cursor
            )
        return {"items": [task_view(row) for row in rows], "next_cursor": next_cursor}

    async def cancel(self, user_id: str, task_id: str, *, admin: bool = False) -> dict[str, Any]:
        now = self._clock.now()
        async with self._uow() as uow:
            records = self._tasks(uow.conn)
            row = await records.get(task_id, for_update=True)
            if row is None or (row["user_id"] != user_id and not admin):
                raise TaskNotFound("no such task")
            if row["status"] in ("pending", "running"):
                charged = charged_for(row["plan"], row["completed_steps"])
                await records.update(
                    task_id,
                    {
                        "status": "cancelled",
                        "charged_credits": charged,
                        "finished_at": now,
                        "step_deadline_at": None,
                    },
                    now,
                )
                await self._publish(
                    uow.conn,
                    [
                        TaskCancelRequested(task_id=task_id, user_id=row["user_id"], by=user_id),
                        TaskCancelled(task_id=task_id, user_id=row["user_id"], charged_credits=charged),
                    ],
                    None,
                )
                log.info("task cancelled", extra={"task_id": task_id, "charged": charged})
            row = await records.get(task_id)
        return task_view(row, with_payload=True)

    # --- reactions ------------------------------------------------------------------------------

    async def credits_reserved(
        self, conn: psycopg.AsyncConnection, task_id: str, caused_by: Envelope
    ) -> None:
        records = self._tasks(conn)
        row = await records.get(task_id, for_update=True)
        if row is None or row["status"] != "pending":
            return  # cancelled or timed out meanwhile: its settlement releases the hold
        now = self._clock.now()
        first = row["plan"][0]
        resolved = row["input"]["resolved"]
        await records.update(
            task_id,
            {
                "status": "running",
                "started_at": now,
                "current_step_id": first["id"],
                "step_deadline_at": self._deadline(first, now) + self._policy.deadline_grace,
            },
            now,
        )
        await self._publish(
            conn,
            [
                TaskStarted(task_id=task_id, user_id=row["user_id"], reservation_id=task_id),
                self._step_requested(
                    row, first, now, step_input(first, resolved["prompt"], resolved["image_asset_id"])
                ),
            ],
            caused_by,
        )

    async def reservation_rejected(
        self, conn: psycopg.AsyncConnection, task_id: str, reason: str, caused_by: Envelope
    ) -> None:
        row = await self._tasks(conn).get(task_id, for_update=True)
        if row is None or row["status"] != "pending":
            return
        message = (
            f"not enough credits: this task costs {row['price']}"
            if reason == "insufficient_credits"
            else reason
        )
        await self._fail(
            conn,
            row,
            "insufficient_credits" if reason == "insufficient_credits" else reason,
            message,
            caused_by,
        )

    async def step_completed(
        self,
        conn: psycopg.AsyncConnection,
        task_id: str,
        step_id: str,
        attempt: int,
        output: Mapping[str, Any],
        caused_by: Envelope,
    ) -> None:
        records = self._tasks(conn)
        row = await records.get(task_id, for_update=True)
        if not _is_current(row, step_id, attempt):
            return
        assert row is not None
        now = self._clock.now()
        assets = [{"asset_id": a["asset_id"], "role": a["role"]} for a in output.get("assets", ())]
        step_output = {
            "step_id": step_id,
            "attempt": attempt,
            "assets": assets,
            "metadata": dict(output.get("metadata") or {}),
        }
        await records.add_step_output(task_id, step_output)
        completed_steps = [*row["completed_steps"], step_id]
        following = next_step(row["plan"], step_id)
        if following is not None:
            await records.update(
                task_id,
                {
                    "completed_steps": completed_steps,
                    "current_step_id": following["id"],
                    "attempt": 1,
                    "step_deadline_at": self._deadline(following, now) + self._policy.deadline_grace,
                },
                now,
            )
            request = step_input(following, None, primary_asset(assets))
            await self._publish(
                conn, [self._step_requested(row, following, now, request, attempt=1)], caused_by
            )
            return
        charged = charged_for(row["plan"], completed_steps)
        steps = [*row["steps"], step_output]
        final = {"assets": assets, "metadata": {"steps": steps}}
        await records.update(
            task_id,
            {
                "status": "completed",
                "completed_steps": completed_steps,
                "charged_credits": charged,
                "finished_at": now,
                "step_deadline_at": None,
            },
            now,
        )
        await records.finish_payload(task_id, output=final, error=None)
        await self._publish(
            conn,
            [
                TaskCompleted(
                    task_id=task_id,
                    user_id=row["user_id"],
                    charged_credits=charged,
                    output=TaskOutput(
                        assets=tuple(OutputAsset(**a) for a in assets), metadata={"steps": steps}
                    ),
                )
            ],
            caused_by,
        )
        log.info("task completed", extra={"task_id": task_id, "charged": charged})

    async def step_failed(
        self,
        conn: psycopg.AsyncConnection,
        task_id: str,
        step_id: str,
        attempt: int,
        code: str,
        message: str,
        caused_by: Envelope,
    ) -> None:
        row = await self._tasks(conn).get(task_id, for_update=True)
        if not _is_current(row, step_id, attempt):
            return
        assert row is not None
        await self._fail(conn, row, code, f"step {step_id!r} failed: {message}", caused_by)

    # --- the sweeper ------------------------------------------------------------------------------

    async def sweep_overdue(self, limit: int = 100) -> int:
        """End tasks that can no longer end by themselves; returns how many were ended."""
        now = self._clock.now()
        async with self._uow() as uow:
            overdue = await self._tasks(uow.conn).overdue(
                now, pending_before=now - self._policy.pending_timeout, limit=limit
            )
        ended = 0
        for task_id in overdue:
            async with self._uow() as uow:
                row = await self._tasks(uow.conn).get(task_id, for_update=True)
                if row is None:
                    continue
                if row["status"] == "running" and row["step_deadline_at"] and row["step_deadline_at"] < now:
                    step = next(s for s in row["plan"] if s["id"] == row["current_step_id"])
                    message = f"step {step['id']!r} did not finish within {step['timeout_seconds']} s"
                    await self._publish(
                        uow.conn,
                        [TaskCancelRequested(task_id=task_id, user_id=row["user_id"], by=row["user_id"])],
                        None,
                    )
                    await self._fail(uow.conn, row, "step_timeout", message, None)
                    ended += 1
                elif row["status"] == "pending" and row["created_at"] < now - self._policy.pending_timeout:
                    await self._fail(
                        uow.conn, row, "reservation_timeout", "credits did not answer in time", None
                    )
                    ended += 1
        if ended:
            log.warning("overdue tasks ended", extra={"count": ended})
        return ended

    # --- helpers --------------------------------------------------------------------------------

    async def _fail(
        self,
        conn: psycopg.AsyncConnection,
        row: Mapping[str, Any],
        code: str,
        message: str,
        caused_by: Envelope | None,
    ) -> None:
        now = self._clock.now()
        charged = charged_for(row["plan"], row["completed_steps"])
        records = self._tasks(conn)
        await records.update(
            row["id"],
            {
                "status": "failed",
                "charged_credits": charged,
                "error_code": code,
                "error_message": message[:1000],
                "finished_at": now,
                "step_deadline_at": None,
            },
            now,
        )
        await records.finish_payload(row["id"], output=None, error=message[:1000])
        await self._publish(
            conn,
            [
                TaskFailed(
                    task_id=row["id"],
                    user_id=row["user_id"],
                    error_code=code,
                    error_message=message[:1000],
                    charged_credits=charged,
                )
            ],
            caused_by,
        )
        log.info("task failed", extra={"task_id": row["id"], "error_code": code, "charged": charged})

    def _deadline(self, plan_step: Mapping[str, Any], now: datetime) -> datetime:
        return now + timedelta(seconds=int(plan_step["timeout_seconds"]))

    def _step_requested(
        self,
        row: Mapping[str, Any],
        plan_step: Mapping[str, Any],
        now: datetime,
        request: Mapping[str, Any],
        attempt: int = 1,
    ) -> StepRequested:
        return StepRequested(
            task_id=row["id"],
            user_id=row["user_id"],
            step_id=plan_step["id"],
            step_type=plan_step["type"],
            provider=plan_step["provider"],
            model=plan_step["model"],
            scope="web",
            input=StepInput(
                asset_ids=tuple(request["asset_ids"]), prompt=request["prompt"], options=request["options"]
            ),
            attempt=attempt,
            deadline_at=self._deadline(plan_step, now),
        )


def _is_current(row: Mapping[str, Any] | None, step_id: str, attempt: int) -> bool:
    return (
        row is not None
        and row["status"] == "running"
        and row["current_step_id"] == step_id
        and row["attempt"] == attempt
    )


def task_view(row: Mapping[str, Any], *, with_payload: bool = False) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    view: dict[str, Any] = {
        "id": row["id"],
        "user_id": row["user_id"],
        "tool_id": row["tool_id"],
        "tool_slug": row["tool_slug"],
        "parent_task_id": row["parent_task_id"],
        "status": row["status"],
        "step_ids": list(row["step_ids"]),
        "current_step_id": row["current_step_id"],
        "completed_step_ids": list(row["completed_steps"]),
        "price": row["price"],
        "charged_credits": row["charged_credits"],
        "error": {"code": row["error_code"], "message": row["error_message"]} if row["error_code"] else None,
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "finished_at": iso(row["finished_at"]),
    }
    if with_payload and "input" in row:
        view["payload"] = {
            "input": row["input"]["request"].get("input", {}),
            "steps": row["steps"],
            "output": row["output"],
            "error": row["error"],
        }
    return view
