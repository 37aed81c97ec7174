"""Tasks and their payloads on Postgres, mapped to and from the `Task` aggregate.

A task is two rows: `tasks` (the saga's state, small and indexed) and `task_payloads` (the request, the
step results, the output and the error text, JSON). Both are read with one join and written with one
statement (a data-modifying CTE), so a transition costs one round trip. Lists are keyset pages cut in SQL.

A task's family is the task and its descendants (child tasks chain a tool's later steps on their parent's
output, and may have children of their own), found with a recursive query on `parent_task_id`. The
creations list (`families`) computes each family's effective status, credits and thumbnail in SQL, in a
lateral subquery per top-level task of the page, so a status filter and the keyset cut are the database's
and no page reads more than the families it shows (and those it passes over to fill a filtered page).

The admin overview's figures (`figures`) are one aggregate statement, so its totals and its series are of one
snapshot: never rows loaded into Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb

from funmagic_kit.db import translate_db_error
from funmagic_kit.pagination import decode_cursor, page_of
from funmagic_kit.pipelined import Sent
from funmagic_kit.rows import from_row, to_row
from funmagic_tasks.domain.stats import StatsBucket, TaskFigures
from funmagic_tasks.domain.task import (
    EffectiveStatus,
    ResolvedInput,
    StepResult,
    Task,
    TaskError,
    TaskFamily,
    TaskResult,
    step_result_document,
    task_result_document,
)
from funmagic_tasks.domain.tasks import (
    PlannedStep,
    ProducedAsset,
    ProviderPick,
    TaskInput,
    TaskRequest,
    TaskStatus,
    request_document,
)

__all__ = ["TaskRecords"]

Row = Mapping[str, Any]
STATUSES: tuple[TaskStatus, ...] = ("pending", "running", "completed", "failed", "cancelled")

# Named like `Task`'s fields (`from_row`); the rest is converted in `_task`.
TASK_COLUMNS = (
    "t.id::text AS id, t.user_id, t.tool_id::text AS tool_id, t.tool_slug, "
    "t.parent_task_id::text AS parent_task_id, t.status, t.plan, t.current_step_id, t.completed_steps, "
    "t.attempt, t.price, t.charged_credits, t.step_deadline_at, t.idempotency_key, t.request_hash, "
    "t.error_code, t.error_message, t.created_at, t.updated_at, t.started_at, t.finished_at, t.deleted_at, "
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
        deleted_at = %(deleted_at)s, updated_at = %(updated_at)s
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
  AND (%(include_deleted)s OR t.deleted_at IS NULL)
  AND (%(status)s::text IS NULL OR t.status = %(status)s)
  AND (%(tool)s::text IS NULL OR t.tool_slug = %(tool)s)
  AND (%(category)s::text IS NULL OR t.tool_id IN (
        SELECT tl.id FROM tools tl JOIN tool_types tt ON tt.id = tl.tool_type_id
        WHERE tt.name = %(category)s))
  AND (%(created_from)s::timestamptz IS NULL OR t.created_at >= %(created_from)s)
  AND (%(created_to)s::timestamptz IS NULL OR t.created_at < %(created_to)s)
  AND (%(after_created)s::timestamptz IS NULL
       OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s
"""

# The user's live top-level tasks, newest first, each with its family's values (see `TaskFamily` for the
# rules). `family` is the task and its live descendants; `done` its latest completed member; the tool's
# config says whether it is a pipeline and which step is its last.
FAMILIES = f"""
SELECT {TASK_COLUMNS}, tt.id::text AS tool_type_id, tt.name AS tool_type_name,
       f.effective_status, f.credits_total, f.thumbnail_asset_id
FROM tasks t
JOIN task_payloads p ON p.task_id = t.id
LEFT JOIN tools tl ON tl.id = t.tool_id
LEFT JOIN tool_types tt ON tt.id = tl.tool_type_id
CROSS JOIN LATERAL (
    WITH RECURSIVE family AS (
        SELECT t.id, t.status, t.completed_steps, t.charged_credits, t.created_at
        UNION ALL
        SELECT c.id, c.status, c.completed_steps, c.charged_credits, c.created_at
        FROM tasks c JOIN family m ON c.parent_task_id = m.id
        WHERE c.deleted_at IS NULL
    ), done AS (
        SELECT id, completed_steps FROM family WHERE status = 'completed'
        ORDER BY created_at DESC, id DESC LIMIT 1
    )
    SELECT
        CASE
            WHEN EXISTS (SELECT 1 FROM family WHERE status IN ('pending', 'running')) THEN 'running'
            WHEN NOT coalesce((tl.config ->> 'pipeline')::boolean, true) AND EXISTS (
                SELECT 1 FROM done
                WHERE done.completed_steps[cardinality(done.completed_steps)]
                      IS DISTINCT FROM tl.config -> 'steps' -> -1 ->> 'id'
            ) THEN 'action_required'
            ELSE (SELECT status FROM family ORDER BY created_at DESC, id DESC LIMIT 1)
        END AS effective_status,
        (SELECT coalesce(sum(charged_credits), 0) FROM family)::integer AS credits_total,
        (SELECT a.asset ->> 'asset_id'
         FROM done
         JOIN task_payloads dp ON dp.task_id = done.id
         CROSS JOIN LATERAL jsonb_array_elements(dp.steps) WITH ORDINALITY AS s (step, step_n)
         CROSS JOIN LATERAL jsonb_array_elements(s.step -> 'assets') WITH ORDINALITY AS a (asset, asset_n)
         WHERE a.asset ->> 'role' IN ('image', 'preview')
         ORDER BY (a.asset ->> 'role') = 'preview', s.step_n, a.asset_n
         LIMIT 1) AS thumbnail_asset_id
) f
WHERE t.user_id = %(user_id)s AND t.parent_task_id IS NULL AND t.deleted_at IS NULL
  AND (%(tool)s::text IS NULL OR t.tool_slug = %(tool)s)
  AND (%(category)s::text IS NULL OR tt.name = %(category)s)
  AND (%(status)s::text IS NULL OR f.effective_status = %(status)s)
  AND (%(after_created)s::timestamptz IS NULL
       OR (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid))
ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s
"""

# The live descendants of some tasks (`ancestor_id`: which of them each descends from), oldest first.
DESCENDANTS = f"""
WITH RECURSIVE family AS (
    SELECT c.id, c.parent_task_id AS ancestor_id FROM tasks c
    WHERE c.parent_task_id = ANY(%(ids)s::uuid[]) AND c.deleted_at IS NULL
    UNION ALL
    SELECT c.id, m.ancestor_id FROM tasks c JOIN family m ON c.parent_task_id = m.id
    WHERE c.deleted_at IS NULL
)
SELECT {TASK_COLUMNS}, f.ancestor_id::text AS ancestor_id
FROM family f JOIN tasks t ON t.id = f.id JOIN task_payloads p ON p.task_id = t.id
ORDER BY t.created_at, t.id
"""

# The admin overview: the tasks created in [since, until) (by `tasks_listing_idx`) and those that ended
# completed or failed in it (by `tasks_finished_idx`), totalled and counted per bucket; every bucket of the
# period is a row (`generate_series`), carrying the totals along.
FIGURES = """
WITH created AS (
    SELECT created_at, status, user_id FROM tasks
    WHERE created_at >= %(since)s AND created_at < %(until)s
), ended AS (
    SELECT finished_at, status FROM tasks
    WHERE finished_at >= %(since)s AND finished_at < %(until)s AND status IN ('completed', 'failed')
), totals AS (
    SELECT count(*) AS created,
           count(*) FILTER (WHERE status = 'pending') AS pending,
           count(*) FILTER (WHERE status = 'running') AS running,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
           count(DISTINCT user_id) AS active_users
    FROM created
), ended_totals AS (
    SELECT count(*) FILTER (WHERE status = 'completed') AS ended_completed,
           count(*) FILTER (WHERE status = 'failed') AS ended_failed
    FROM ended
), buckets AS (
    SELECT generate_series(%(since)s::timestamptz, %(until)s::timestamptz - %(bucket)s::interval,
                           %(bucket)s::interval) AS at
), created_per AS (
    SELECT date_bin(%(bucket)s::interval, created_at, %(since)s::timestamptz) AS at, count(*) AS n
    FROM created GROUP BY 1
), ended_per AS (
    SELECT date_bin(%(bucket)s::interval, finished_at, %(since)s::timestamptz) AS at,
           count(*) FILTER (WHERE status = 'completed') AS completed,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM ended GROUP BY 1
)
SELECT b.at, coalesce(c.n, 0) AS bucket_created, coalesce(e.completed, 0) AS bucket_completed,
       coalesce(e.failed, 0) AS bucket_failed, t.*, et.*
FROM buckets b
CROSS JOIN totals t
CROSS JOIN ended_totals et
LEFT JOIN created_per c ON c.at = b.at
LEFT JOIN ended_per e ON e.at = b.at
ORDER BY b.at
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
        if _uuid_or_none(task_id) is None:
            return None
        cursor = await self._conn.execute(
            f"{SELECT_TASK} WHERE t.id = %s{' FOR UPDATE OF t' if lock else ''}", (task_id,)
        )
        row = await cursor.fetchone()
        return None if row is None else _task(row)

    async def descendants(self, task_id: str, *, lock: bool = False) -> list[Task]:
        if _uuid_or_none(task_id) is None:
            return []
        return (await self._descendants_of([task_id], lock=lock)).get(task_id, [])

    async def _descendants_of(self, task_ids: list[str], *, lock: bool = False) -> dict[str, list[Task]]:
        """The live descendants of each task, oldest first."""
        if not task_ids:
            return {}
        cursor = await self._conn.execute(
            DESCENDANTS + (" FOR UPDATE OF t" if lock else ""), {"ids": task_ids}
        )
        found: dict[str, list[Task]] = {}
        for row in await cursor.fetchall():
            found.setdefault(row["ancestor_id"], []).append(_task(row))
        return found

    async def ran_tool(self, tool_id: str) -> bool:
        cursor = await self._conn.execute(
            "SELECT EXISTS (SELECT 1 FROM tasks WHERE tool_id = %s) AS ran", (tool_id,)
        )
        row = await cursor.fetchone()
        return bool(row and row["ran"])

    async def by_idempotency_key(self, user_id: str, key: str) -> Task | None:
        return await (await self.send_by_idempotency_key(user_id, key)).answer()

    async def send_by_idempotency_key(self, user_id: str, key: str) -> Sent[Task | None]:
        async def read(cursor: psycopg.AsyncCursor[Any]) -> Task | None:
            row = await cursor.fetchone()
            return None if row is None else _task(row)

        cursor = await self._conn.execute(
            f"{SELECT_TASK} WHERE t.user_id = %s AND t.idempotency_key = %s", (user_id, key)
        )
        return Sent(cursor, read)

    async def hold_creations_of(self, user_id: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tasks:{user_id}",))

    async def active_count(self, user_id: str) -> int:
        return await (await self.send_active_count(user_id)).answer()

    async def send_active_count(self, user_id: str) -> Sent[int]:
        async def read(cursor: psycopg.AsyncCursor[Any]) -> int:
            row = await cursor.fetchone()
            return int(row["n"]) if row else 0

        cursor = await self._conn.execute(
            "SELECT count(*) AS n FROM tasks WHERE user_id = %s AND status IN ('pending', 'running')",
            (user_id,),
        )
        return Sent(cursor, read)

    async def active_of(self, user_id: str) -> list[Task]:
        cursor = await self._conn.execute(
            f"{SELECT_TASK} WHERE t.user_id = %s AND t.status IN ('pending', 'running') "
            "ORDER BY t.created_at, t.id FOR UPDATE OF t",
            (user_id,),
        )
        return [_task(row) for row in await cursor.fetchall()]

    async def add(self, task: Task) -> Task:
        try:
            cursor = await self._conn.execute(INSERT_TASK, _columns(task))
        except psycopg.errors.UniqueViolation as error:  # (user_id, idempotency_key) taken
            raise translate_db_error(error) from error
        return _task(await _fetched(cursor))

    async def save(self, task: Task) -> Sent[Task]:
        async def read(cursor: psycopg.AsyncCursor[Any]) -> Task:
            return _task(await _fetched(cursor))

        return Sent(await self._conn.execute(SAVE_TASK, _columns(task)), read)

    async def page(
        self,
        *,
        user_id: str | None,
        status: TaskStatus | None,
        tool_slug: str | None,
        category: str | None = None,
        include_deleted: bool = False,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Task], str | None]:
        params = {
            "user_id": user_id,
            "status": status,
            "tool": tool_slug,
            "category": category,
            "include_deleted": include_deleted,
            "created_from": created_from,
            "created_to": created_to,
            **_after(cursor),
            "limit": limit + 1,
        }
        rows = await (await self._conn.execute(PAGE, params)).fetchall()
        return page_of([_task(row) for row in rows], limit, key=lambda task: (task.created_at, task.id))

    async def families(
        self,
        *,
        user_id: str,
        status: EffectiveStatus | None,
        tool_slug: str | None,
        category: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[TaskFamily], str | None]:
        params = {
            "user_id": user_id,
            "status": status,
            "tool": tool_slug,
            "category": category,
            **_after(cursor),
            "limit": limit + 1,
        }
        rows = await (await self._conn.execute(FAMILIES, params)).fetchall()
        rows, next_cursor = page_of(rows, limit, key=lambda row: (row["created_at"], row["id"]))
        children = await self._descendants_of([row["id"] for row in rows])
        return [_family(row, children.get(row["id"], [])) for row in rows], next_cursor

    async def figures(self, since: datetime, until: datetime, bucket: timedelta) -> TaskFigures:
        rows = await (
            await self._conn.execute(FIGURES, {"since": since, "until": until, "bucket": bucket})
        ).fetchall()
        if not rows:  # an empty period (since == until): no bucket, nothing counted
            return TaskFigures(0, dict.fromkeys(STATUSES, 0), 0, 0, 0, ())
        first = rows[0]
        return TaskFigures(
            created=int(first["created"]),
            by_status={status: int(first[status]) for status in STATUSES},
            completed=int(first["ended_completed"]),
            failed=int(first["ended_failed"]),
            active_users=int(first["active_users"]),
            series=tuple(
                StatsBucket(
                    at=row["at"],
                    created=int(row["bucket_created"]),
                    completed=int(row["bucket_completed"]),
                    failed=int(row["bucket_failed"]),
                )
                for row in rows
            ),
        )

    async def overdue(self, now: datetime, *, pending_before: datetime, limit: int) -> list[str]:
        cursor = await self._conn.execute(
            OVERDUE, {"now": now, "pending_before": pending_before, "limit": limit}
        )
        return [row["id"] for row in await cursor.fetchall()]


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _after(cursor: str | None) -> dict[str, object]:
    """The keyset of a newest-first page: the (created_at, id) of the last task of the previous page."""
    after_created, after_id = decode_cursor(cursor, datetime, uuid.UUID) if cursor else (None, None)
    return {"after_created": after_created, "after_id": after_id}


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


def _family(row: Row, children: list[Task]) -> TaskFamily:
    return from_row(
        TaskFamily,
        row,
        task=_task(row),
        children=tuple(children),
        effective_status=cast(EffectiveStatus, row["effective_status"]),
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
            provider=_pick(given.get("provider")),
        ),
    )


def _pick(document: Row | None) -> ProviderPick | None:
    if document is None:
        return None
    return ProviderPick(
        name=document["name"],
        model=document.get("model"),
        options=MappingProxyType(dict(document.get("options") or {})),
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
