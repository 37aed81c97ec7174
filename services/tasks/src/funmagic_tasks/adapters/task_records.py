"""Tasks and their payloads on Postgres. Lists are cut in SQL with keyset cursors, never in memory."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

__all__ = ["TaskRecords", "decode_cursor", "encode_cursor"]

TASK_COLUMNS = (
    "t.id::text, t.user_id, t.tool_id::text, t.tool_slug, t.parent_task_id::text, t.status, t.plan, "
    "t.step_ids, "
    "t.current_step_id, t.completed_steps, t.attempt, t.price, t.charged_credits, t.step_deadline_at, "
    "t.idempotency_key, t.request_hash, t.error_code, t.error_message, t.created_at, t.updated_at, "
    "t.started_at, t.finished_at"
)
PAYLOAD_COLUMNS = "p.input, p.steps, p.output, p.error"


def encode_cursor(created_at: datetime, task_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), task_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, task_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created_at), str(uuid.UUID(str(task_id)))
    except (ValueError, TypeError) as error:
        raise ValueError("invalid cursor") from error


class TaskRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add(self, task: dict[str, Any], task_input: dict[str, Any]) -> bool:
        """False when this user already has a task with this idempotency key."""
        cursor = await self._conn.execute(
            """INSERT INTO tasks
                   (id, user_id, tool_id, tool_slug, parent_task_id, status, plan, step_ids, price,
                    idempotency_key, request_hash, created_at, updated_at)
               VALUES (%(id)s, %(user_id)s, %(tool_id)s, %(tool_slug)s, %(parent_task_id)s, 'pending',
                       %(plan)s, %(step_ids)s, %(price)s, %(idempotency_key)s, %(request_hash)s, %(now)s,
                       %(now)s)
               ON CONFLICT (user_id, idempotency_key) DO NOTHING""",
            {**task, "plan": Jsonb(task["plan"])},
        )
        if cursor.rowcount != 1:
            return False
        await self._conn.execute(
            "INSERT INTO task_payloads (task_id, input) VALUES (%s, %s)", (task["id"], Jsonb(task_input))
        )
        return True

    async def get(self, task_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        """The task and its payload; None for an id that is not one of ours (not even a UUID: events of
        other producers on the shared topics are passed over, not retried into the dead-letter topic)."""
        try:
            uuid.UUID(task_id)
        except ValueError:
            return None
        lock = " FOR UPDATE OF t" if for_update else ""
        cursor = await self._conn.execute(
            f"""SELECT {TASK_COLUMNS}, {PAYLOAD_COLUMNS} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
                WHERE t.id = %s{lock}""",
            (task_id,),
        )
        return await cursor.fetchone()

    async def by_idempotency_key(self, user_id: str, key: str) -> dict[str, Any] | None:
        cursor = await self._conn.execute(
            f"""SELECT {TASK_COLUMNS}, {PAYLOAD_COLUMNS} FROM tasks t JOIN task_payloads p ON p.task_id = t.id
                WHERE t.user_id = %s AND t.idempotency_key = %s""",
            (user_id, key),
        )
        return await cursor.fetchone()

    async def active_count(self, user_id: str) -> int:
        cursor = await self._conn.execute(
            "SELECT count(*) AS n FROM tasks WHERE user_id = %s AND status IN ('pending', 'running')",
            (user_id,),
        )
        row = await cursor.fetchone()
        return int(row["n"]) if row else 0

    async def page(
        self,
        *,
        user_id: str | None,
        status: str | None,
        tool_slug: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"user_id": user_id, "status": status, "tool": tool_slug, "limit": limit + 1}
        after = ""
        if cursor:
            params["after_created"], params["after_id"] = decode_cursor(cursor)
            after = "AND (t.created_at, t.id) < (%(after_created)s, %(after_id)s::uuid)"
        rows = await (
            await self._conn.execute(
                f"""SELECT {TASK_COLUMNS} FROM tasks t
                    WHERE (%(user_id)s::text IS NULL OR t.user_id = %(user_id)s)
                      AND (%(status)s::text IS NULL OR t.status = %(status)s)
                      AND (%(tool)s::text IS NULL OR t.tool_slug = %(tool)s)
                      {after}
                    ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s""",
                params,
            )
        ).fetchall()
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
        return items, next_cursor

    async def update(self, task_id: str, changes: dict[str, Any], now: datetime) -> None:
        allowed = {
            "status", "current_step_id", "completed_steps", "attempt", "charged_credits", "step_deadline_at",
            "error_code", "error_message", "started_at", "finished_at",
        }  # fmt: skip
        assert set(changes) <= allowed, set(changes) - allowed
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        await self._conn.execute(
            f"UPDATE tasks SET {assignments}, updated_at = %(now)s WHERE id = %(id)s",
            {**changes, "id": task_id, "now": now},
        )

    async def add_step_output(self, task_id: str, step_output: dict[str, Any]) -> None:
        await self._conn.execute(
            "UPDATE task_payloads SET steps = steps || %s WHERE task_id = %s", (Jsonb([step_output]), task_id)
        )

    async def finish_payload(self, task_id: str, *, output: dict[str, Any] | None, error: str | None) -> None:
        await self._conn.execute(
            "UPDATE task_payloads SET output = %s, error = %s WHERE task_id = %s",
            (Jsonb(output) if output is not None else None, error, task_id),
        )

    async def overdue(self, now: datetime, *, pending_before: datetime, limit: int) -> list[str]:
        """Tasks that should have moved by now: a running step past its deadline, or a task still
        waiting for its credits long after it was asked for."""
        cursor = await self._conn.execute(
            """SELECT id::text FROM tasks
               WHERE (status = 'running' AND step_deadline_at < %(now)s)
                  OR (status = 'pending' AND created_at < %(pending_before)s)
               ORDER BY created_at LIMIT %(limit)s""",
            {"now": now, "pending_before": pending_before, "limit": limit},
        )
        return [row["id"] for row in await cursor.fetchall()]
