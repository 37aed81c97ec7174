"""The `task_roots` table: each task's root task (`domain.task_roots`), written in the consumer's unit of
work."""

from __future__ import annotations

import psycopg

from funmagic_credits.domain.task_roots import TaskRoot

__all__ = ["PostgresTaskRootStore"]

SELECT_ROOT = "SELECT task_id, user_id, root_task_id, tool_slug FROM task_roots WHERE task_id = %s"
# A redelivered TaskRequested (the inbox already stops it) would record the same root again: kept as is.
INSERT_ROOT = """
INSERT INTO task_roots (task_id, user_id, root_task_id, tool_slug) VALUES (%s, %s, %s, %s)
ON CONFLICT (task_id) DO NOTHING
"""


class PostgresTaskRootStore:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def get(self, task_id: str) -> TaskRoot | None:
        row = await (await self._conn.execute(SELECT_ROOT, (task_id,))).fetchone()
        return TaskRoot(**row) if row else None

    async def add(self, root: TaskRoot) -> None:
        await self._conn.execute(INSERT_ROOT, (root.task_id, root.user_id, root.root_task_id, root.tool_slug))
