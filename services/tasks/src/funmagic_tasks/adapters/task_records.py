"""Tasks and their payloads on Postgres, mapped to and from the `Task` aggregate.

A task is two rows: `tasks` (the saga's state, small and indexed) and `task_payloads` (the request, the
step results, the output and the error text, JSON). Both are read with one join and written with one
statement (a data-modifying CTE), so a transition costs one round trip. Lists are keyset pages cut in SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb

from funmagic_kit.db import translate_db_error
from funmagic_kit.pagination import decode_cursor, page_of
from funmagic_kit.rows import from_row, to_row
from funmagic_tasks.domain.task import (
    ResolvedInput,
    StepResult,
    Task,
    TaskError,
    TaskResult,
    step_result_document,
    task_result_document,
)
from funmagic_tasks.domain.tasks import (
    PlannedStep,
    ProducedAsset,
    TaskInput,
    TaskRequest,
    TaskStatus,
    request_document,
)

__all__ = ["TaskRecords"]

Row = Mapping[str, Any]

# Named like `Task`'s fields (`from_row`); the rest is converted in `_task`.
TASK_COLUMNS = (
    "t.id::text AS id, t.user_id, t.tool_id::text AS tool_id, t.tool_slug, "
    "t.parent_task_id::text AS parent_task_id, t.status, t.plan, t.current_step_id, t.completed_steps, "
    "t.attempt, t.price, t.charged_credits, t.step_deadline_at, t.idempotency_key, t.request_hash, "
    "t.error_code, t.error_message, t.created_at, t.updated_at, t.started_at, t.finished_at, "
    "p.input, p.steps, p.output"
)
SELECT_TASK = f"SELECT {TASK_COLUMNS} FROM tasks t JOIN task_payloads p ON p.task_id = t.id"

INSERT_TASK = f"""
WITH t AS (
    INSERT INTO tasks
        (id, user_id, tool_id, tool_slug, parent_task_id, status, plan, step_ids, current_step_id,
         completed_steps, attempt, price, charged_credits, step_deadline_at, idempotency_key, request_hash,
         error_code, error_message, created_at, updated_at, started_at, finished_at)
    VALUES (%(id)s, %(user_id)s, %(tool_id)s, %(tool_slug)s, %(parent_task_id)s, %(status)s, %(plan)s,
            %(step_ids)s, %(current_step_id)s, %(completed_steps)s, %(attempt)s, %(price)s,
            %(charged_credits)s, %(step_deadline_at)s, %(idempotency_key)s, %(request_hash)s, %(error_code)s,
            %(error_message)s, %(created_at)s, %(updated_at)s, %(started_at)s, %(finished_at)s)
    RETURNING *
), p AS (
    INSERT INTO task_payloads (task_id, input, steps, output, error)
    SELECT t.id, %(input)s, %(steps)s, %(output)s, %(error)s FROM t
    RETURNING *
)
SELECT {TASK_COLUMNS} FROM t JOIN p ON p.task_id = t.id
"""

# Only what a transition can change; the rest of a task is fixed when it is requested.
SAVE_TASK = f"""
WITH t AS (
    UPDATE tasks SET status = %(status)s, current_step_id = %(current_step_id)s,
        completed_steps = %(completed_steps)s, attempt = %(attempt)s, charged_credits = %(charged_credits)s,
        step_deadline_at = %(step_deadline_at)s, error_code = %(error_code)s,
        error_message = %(error_message)s, started_at = %(started_at)s, finished_at = %(finished_at)s,
        updated_at = %(updated_at)s
    WHERE id = %(id)s
    RETURNING *
), p AS (
    UPDATE task_payloads SET steps = %(steps)s, output = %(output)s, error = %(error)s
    WHERE task_id = %(id)s
    RETURNING *
)
SELECT {TASK_COLUMNS} FROM t JOIN p ON p.task_id = t.id
"""

PAGE = f"""
{SELECT_TASK}
WHERE (%(user_id)s::text IS NULL OR t.user_id = %(user_id)s)
  AND (%(status)s::text IS NULL OR t.status = %(status)s)
  AND (%(tool)s::text IS NULL OR t.tool_slug = %(tool)s)
  AND (%(after_created)s::timestamptz IS NULL
       OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s
"""

OVERDUE = """
SELECT id::text FROM tasks
WHERE (status = 'running' AND step_deadline_at < %(now)s)
   OR (status = 'pending' AND created_at < %(pending_before)s)
ORDER BY created_at LIMIT %(limit)s
"""


class TaskRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, task_id: str) -> Task | None:
        return await self._one_by_id(task_id, lock=True)

    async def get(self, task_id: str) -> Task | None:
        return await self._one_by_id(task_id, lock=False)

    async def _one_by_id(self, task_id: str, *, lock: bool) -> Task | None:
        # None for an id that is not one of ours (not even a UUID: events of other producers on the
        # shared topics are passed over, not retried into the dead-letter topic).
        try:
            uuid.UUID(task_id)
        except ValueError:
            return None
        cursor = await self._conn.execute(
            f"{SELECT_TASK} WHERE t.id = %s{' FOR UPDATE OF t' if lock else ''}", (task_id,)
        )
        row = await cursor.fetchone()
        return None if row is None else _task(row)

    async def by_idempotency_key(self, user_id: str, key: str) -> Task | None:
        cursor = await self._conn.execute(
            f"{SELECT_TASK} WHERE t.user_id = %s AND t.idempotency_key = %s", (user_id, key)
        )
        row = await cursor.fetchone()
        return None if row is None else _task(row)

    async def hold_creations_of(self, user_id: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tasks:{user_id}",))

    async def active_count(self, user_id: str) -> int:
        cursor = await self._conn.execute(
            "SELECT count(*) AS n FROM tasks WHERE user_id = %s AND status IN ('pending', 'running')",
            (user_id,),
        )
        row = await cursor.fetchone()
        return int(row["n"]) if row else 0

    async def add(self, task: Task) -> Task:
        try:
            cursor = await self._conn.execute(INSERT_TASK, _columns(task))
        except psycopg.errors.UniqueViolation as error:  # (user_id, idempotency_key) taken
            raise translate_db_error(error) from error
        return _task(await _fetched(cursor))

    async def save(self, task: Task) -> Task:
        cursor = await self._conn.execute(SAVE_TASK, _columns(task))
        return _task(await _fetched(cursor))

    async def page(
        self,
        *,
        user_id: str | None,
        status: TaskStatus | None,
        tool_slug: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Task], str | None]:
        after_created, after_id = decode_cursor(cursor, datetime, uuid.UUID) if cursor else (None, None)
        params = {
            "user_id": user_id,
            "status": status,
            "tool": tool_slug,
            "after_created": after_created,
            "after_id": after_id,
            "limit": limit + 1,
        }
        rows = await (await self._conn.execute(PAGE, params)).fetchall()
        return page_of([_task(row) for row in rows], limit, key=lambda task: (task.created_at, task.id))

    async def overdue(self, now: datetime, *, pending_before: datetime, limit: int) -> list[str]:
        cursor = await self._conn.execute(
            OVERDUE, {"now": now, "pending_before": pending_before, "limit": limit}
        )
        return [row["id"] for row in await cursor.fetchall()]


async def _fetched(cursor: psycopg.AsyncCursor[Any]) -> Row:
    row = await cursor.fetchone()
    if row is None:
        raise LookupError("the task row to write is gone")
    return cast(Row, row)


# --- Task → row ----------------------------------------------------------------------------------------


def _columns(task: Task) -> dict[str, object]:
    """The task as the statements' parameters: `Task`'s fields under their own names (the columns are
    named alike), and converted here what is stored in another form. `add` writes them all, `save` what a
    transition changes."""
    return to_row(
        task,
        plan=Jsonb([to_row(step, options=dict(step.options)) for step in task.plan]),
        step_ids=list(task.step_ids),
        completed_steps=list(task.completed_steps),
        error_code=task.error.code if task.error else None,
        error_message=task.error.message if task.error else None,
        input=Jsonb({"request": request_document(task.request), "resolved": to_row(task.resolved)}),
        steps=Jsonb([step_result_document(result) for result in task.step_results]),
        output=Jsonb(task_result_document(task.output)) if task.output is not None else None,
        error=task.error.message if task.error else None,
    )


# --- row → Task ----------------------------------------------------------------------------------------


def _task(row: Row) -> Task:
    stored_input = row["input"]
    return from_row(
        Task,
        row,
        plan=tuple(_planned_step(step) for step in row["plan"]),
        request=_request(stored_input["request"]),
        resolved=from_row(ResolvedInput, stored_input["resolved"]),
        completed_steps=tuple(row["completed_steps"]),
        step_results=tuple(_step_result(result) for result in row["steps"]),
        output=_task_result(row["output"]) if row["output"] is not None else None,
        error=TaskError(row["error_code"], row["error_message"] or "") if row["error_code"] else None,
    )


def _planned_step(document: Row) -> PlannedStep:
    return from_row(
        PlannedStep,
        document,
        options=MappingProxyType(dict(document.get("options") or {})),
        cost=int(document["cost"]),
        timeout_seconds=int(document["timeout_seconds"]),
        prompt=document.get("prompt"),
    )


def _request(document: Row) -> TaskRequest:
    given = document.get("input") or {}
    return TaskRequest(
        tool_slug=document["toolSlug"],
        step_id=document.get("stepId"),
        parent_task_id=document.get("parentTaskId"),
        input=TaskInput(
            image_asset_id=given.get("imageAssetId"),
            prompt=given.get("prompt"),
            style_reference_id=given.get("styleReferenceId"),
        ),
    )


def _assets(documents: list[Row]) -> tuple[ProducedAsset, ...]:
    return tuple(ProducedAsset(asset_id=a["asset_id"], role=a["role"]) for a in documents)


def _step_result(document: Row) -> StepResult:
    return StepResult(
        step_id=document["step_id"],
        attempt=int(document["attempt"]),
        assets=_assets(document["assets"]),
        metadata=dict(document.get("metadata") or {}),
    )


def _task_result(document: Row) -> TaskResult:
    return TaskResult(
        assets=_assets(document["assets"]),
        steps=tuple(_step_result(step) for step in document["metadata"]["steps"]),
    )
