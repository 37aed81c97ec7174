"""The provider registry and the step jobs on Postgres.

The two registry tables have one shape; `ProviderRecords` picks one by scope from a fixed map, never from
text a caller typed. Step-job claims use `FOR UPDATE SKIP LOCKED` so replicas never take the same job, and
every change a runner makes is fenced by its lease (`lease_owner`): a runner that lost its lease (it
stalled past the lease and another runner took the job) changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from funmagic_providers.domain.providers import Scope

__all__ = ["ProviderRecords", "StepJobRecords"]

_TABLES: dict[Scope, str] = {"web": "providers", "admin": "admin_providers"}
PROVIDER_COLUMNS = (
    "id::text, name, display_name, type, api_key_ciphertext, api_key_id, api_key_hint, base_url, config, "
    "is_active, is_healthy, health_checked_at, created_at, updated_at"
)
JOB_COLUMNS = (
    "id::text, task_id, user_id, step_id, attempt, step_type, provider, model, scope, input, deadline_at, "
    "correlation_id, causation_id, "
    "status, run_at, retries, delays, claims, lease_owner, lease_until, provider_request_id, error_code, "
    "error_message, created_at, finished_at"
)


class ProviderRecords:
    def __init__(self, conn: psycopg.AsyncConnection, scope: Scope) -> None:
        self._conn = conn
        self._table = _TABLES[scope]

    async def add(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """None when a live provider of that name exists."""
        cursor = await self._conn.execute(
            f"""INSERT INTO {self._table}
                  (id, name, display_name, type, api_key_ciphertext, api_key_id, api_key_hint, base_url,
                   config, is_active, created_at, updated_at)
                VALUES (%(id)s, %(name)s, %(display_name)s, %(type)s, %(api_key_ciphertext)s, %(api_key_id)s,
                        %(api_key_hint)s, %(base_url)s, %(config)s, %(is_active)s, %(now)s, %(now)s)
                ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING
                RETURNING {PROVIDER_COLUMNS}""",
            {**row, "config": Jsonb(row["config"])},
        )
        return await cursor.fetchone()

    async def get(self, provider_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        lock = " FOR UPDATE" if for_update else ""
        cursor = await self._conn.execute(
            f"SELECT {PROVIDER_COLUMNS} FROM {self._table} WHERE id = %s AND deleted_at IS NULL{lock}",
            (provider_id,),
        )
        return await cursor.fetchone()

    async def by_name(self, name: str) -> dict[str, Any] | None:
        cursor = await self._conn.execute(
            f"SELECT {PROVIDER_COLUMNS} FROM {self._table} WHERE name = %s AND deleted_at IS NULL",
            (name,),
        )
        return await cursor.fetchone()

    async def page(self, *, limit: int, after_name: str | None) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(
            f"""SELECT {PROVIDER_COLUMNS} FROM {self._table}
                WHERE deleted_at IS NULL AND (%(after)s::text IS NULL OR name > %(after)s)
                ORDER BY name LIMIT %(limit)s""",
            {"after": after_name, "limit": limit},
        )
        return await cursor.fetchall()

    async def all_live(self) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(
            f"SELECT {PROVIDER_COLUMNS} FROM {self._table} WHERE deleted_at IS NULL ORDER BY name"
        )
        return await cursor.fetchall()

    async def update(self, provider_id: str, changes: dict[str, Any], now: datetime) -> dict[str, Any]:
        allowed = {
            "display_name", "base_url", "config", "is_active", "api_key_ciphertext", "api_key_id",
            "api_key_hint", "is_healthy", "health_checked_at",
        }  # fmt: skip
        assert set(changes) <= allowed, set(changes) - allowed
        values = {k: Jsonb(v) if k == "config" else v for k, v in changes.items()}
        assignments = ", ".join(f"{column} = %({column})s" for column in values)
        cursor = await self._conn.execute(
            f"""UPDATE {self._table} SET {assignments}, updated_at = %(now)s
                WHERE id = %(id)s AND deleted_at IS NULL RETURNING {PROVIDER_COLUMNS}""",
            {**values, "id": provider_id, "now": now},
        )
        row = await cursor.fetchone()
        assert row is not None
        return row

    async def delete(self, provider_id: str, now: datetime) -> bool:
        # Soft delete: the row stays for audits, its key is erased and its name is free again.
        cursor = await self._conn.execute(
            f"""UPDATE {self._table}
                SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false,
                    api_key_ciphertext = NULL, api_key_id = NULL, api_key_hint = NULL
                WHERE id = %(id)s AND deleted_at IS NULL""",
            {"id": provider_id, "now": now},
        )
        return cursor.rowcount == 1

    async def set_health(self, provider_id: str, healthy: bool, now: datetime) -> bool | None:
        """Store a check's result; returns the previous health (None if never checked)."""
        cursor = await self._conn.execute(
            f"""UPDATE {self._table} AS p SET is_healthy = %(healthy)s, health_checked_at = %(now)s
                FROM (SELECT id, is_healthy FROM {self._table} WHERE id = %(id)s FOR UPDATE) AS before
                WHERE p.id = before.id RETURNING before.is_healthy AS previous""",
            {"id": provider_id, "healthy": healthy, "now": now},
        )
        row = await cursor.fetchone()
        return None if row is None else row["previous"]

    async def keys_not_under(self, key_id: str) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(
            f"""SELECT id::text, api_key_ciphertext, api_key_id FROM {self._table}
                WHERE api_key_ciphertext IS NOT NULL AND api_key_id <> %s FOR UPDATE""",
            (key_id,),
        )
        return await cursor.fetchall()

    async def all_keys(self) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(
            f"""SELECT id::text, api_key_ciphertext, api_key_id FROM {self._table}
                WHERE api_key_ciphertext IS NOT NULL"""
        )
        return await cursor.fetchall()


class StepJobRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add(self, job: dict[str, Any]) -> bool:
        """False when this (task, step, attempt) is already known: StepRequested was redelivered."""
        cursor = await self._conn.execute(
            """INSERT INTO step_jobs
                 (id, task_id, user_id, step_id, attempt, step_type, provider, model, scope, input,
                  deadline_at, correlation_id, causation_id, status, run_at)
               VALUES (%(id)s, %(task_id)s, %(user_id)s, %(step_id)s, %(attempt)s, %(step_type)s,
                       %(provider)s, %(model)s, %(scope)s, %(input)s, %(deadline_at)s, %(correlation_id)s,
                       %(causation_id)s, 'queued', now())
               ON CONFLICT (task_id, step_id, attempt) DO NOTHING""",
            {**job, "id": str(uuid.uuid4()), "input": Jsonb(job["input"])},
        )
        return cursor.rowcount == 1

    async def claim_due(self, owner: str, *, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
        """Take up to `limit` due jobs: queued ones whose time has come and running ones whose runner's
        lease ran out (it crashed). Database time throughout, so replicas agree on what is due."""
        cursor = await self._conn.execute(
            f"""UPDATE step_jobs SET status = 'running', lease_owner = %(owner)s,
                       lease_until = now() + make_interval(secs => %(lease)s), claims = claims + 1,
                       updated_at = now()
                WHERE id IN (
                    SELECT id FROM step_jobs
                    WHERE (status = 'queued' AND run_at <= now())
                       OR (status = 'running' AND lease_until < now())
                    ORDER BY run_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
                RETURNING {JOB_COLUMNS}""",
            {"owner": owner, "lease": lease_seconds, "limit": limit},
        )
        return await cursor.fetchall()

    async def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> str | None:
        """Extend my lease; returns the job's status, or None if the job is no longer mine."""
        cursor = await self._conn.execute(
            """UPDATE step_jobs SET lease_until = now() + make_interval(secs => %(lease)s)
               WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'running'
               RETURNING status""",
            {"id": job_id, "owner": owner, "lease": lease_seconds},
        )
        row = await cursor.fetchone()
        if row is not None:
            return row["status"]
        cursor = await self._conn.execute(
            "SELECT status, lease_owner FROM step_jobs WHERE id = %s", (job_id,)
        )
        row = await cursor.fetchone()
        return row["status"] if row is not None and row["lease_owner"] == owner else None

    async def postpone(
        self, job_id: str, owner: str, *, delay_seconds: float, retries: int | None, counts_as_delay: bool
    ) -> bool:
        """Back to the queue until `now + delay`; a retry records the retries used, a delay does not."""
        cursor = await self._conn.execute(
            """UPDATE step_jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL,
                      run_at = now() + make_interval(secs => %(delay)s),
                      retries = COALESCE(%(retries)s, retries),
                      delays = delays + CASE WHEN %(counts_as_delay)s THEN 1 ELSE 0 END,
                      updated_at = now()
               WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'running'""",
            {
                "id": job_id,
                "owner": owner,
                "delay": max(delay_seconds, 0.0),
                "retries": retries,
                "counts_as_delay": counts_as_delay,
            },
        )
        return cursor.rowcount == 1

    async def finish(
        self,
        job_id: str,
        owner: str,
        status: str,
        *,
        error_code: str | None = None,
        error_message: str | None = None,
        provider_request_id: str | None = None,
    ) -> bool:
        """End the job (completed/failed); False if it was not mine any more (or was cancelled)."""
        cursor = await self._conn.execute(
            """UPDATE step_jobs SET status = %(status)s, lease_owner = NULL, lease_until = NULL,
                      error_code = %(error_code)s, error_message = %(error_message)s,
                      provider_request_id = COALESCE(%(request_id)s, provider_request_id),
                      finished_at = now(), updated_at = now()
               WHERE id = %(id)s AND lease_owner = %(owner)s AND status = 'running'""",
            {
                "id": job_id,
                "owner": owner,
                "status": status,
                "error_code": error_code,
                "error_message": error_message,
                "request_id": provider_request_id,
            },
        )
        return cursor.rowcount == 1

    async def still_mine(self, job_id: str, owner: str) -> bool:
        cursor = await self._conn.execute(
            "SELECT 1 FROM step_jobs WHERE id = %s AND lease_owner = %s AND status = 'running'",
            (job_id, owner),
        )
        return await cursor.fetchone() is not None

    async def set_provider_request(self, job_id: str, owner: str, request_id: str) -> None:
        await self._conn.execute(
            "UPDATE step_jobs SET provider_request_id = %s WHERE id = %s AND lease_owner = %s",
            (request_id, job_id, owner),
        )

    async def cancel_task(self, task_id: str) -> list[dict[str, Any]]:
        """Cancel the task's unfinished jobs; returns them (with the runner that holds each, if any)."""
        cursor = await self._conn.execute(
            f"""UPDATE step_jobs SET status = 'cancelled', finished_at = now(), updated_at = now(),
                       lease_until = NULL
                WHERE task_id = %s AND status IN ('queued', 'running')
                RETURNING {JOB_COLUMNS}""",
            (task_id,),
        )
        return await cursor.fetchall()

    async def get(self, job_id: str) -> dict[str, Any] | None:
        cursor = await self._conn.execute(f"SELECT {JOB_COLUMNS} FROM step_jobs WHERE id = %s", (job_id,))
        return await cursor.fetchone()

    async def of_task(self, task_id: str) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM step_jobs WHERE task_id = %s ORDER BY created_at", (task_id,)
        )
        return await cursor.fetchall()
