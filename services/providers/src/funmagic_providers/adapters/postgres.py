"""The provider registry and the step jobs on Postgres, and the service's unit of work binding them.

The two registry tables have one shape; `ProviderRecords` picks one by scope from a fixed map, never from
text a caller typed. Step-job claims use `FOR UPDATE SKIP LOCKED` so replicas never take the same job;
every other change to a job is made on the row locked with `lock`, decided by `domain.step_job` (which
fences it by the lease) and written back with `save`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.pagination import decode_cursor, page_of
from funmagic_kit.pipelined import Sent
from funmagic_kit.rows import from_row, to_row
from funmagic_providers.adapters.queue_records import DeadLetterReplayRecords
from funmagic_providers.domain.health import HealthCheck
from funmagic_providers.domain.provider_calls import ProviderCall
from funmagic_providers.domain.providers import SCOPES, Provider, Scope, SealedKey
from funmagic_providers.domain.queue import DueLook, StepJobCount
from funmagic_providers.domain.step_job import StepError, StepJob, StepJobInput

__all__ = [
    "HealthCheckRecords",
    "ProviderCallRecords",
    "ProviderRecords",
    "ProvidersUnitOfWork",
    "StepJobRecords",
]

Row = dict[str, Any]  # a row as psycopg's dict_row gives it, mapped to a domain object right away

_TABLES: dict[Scope, str] = {"web": "providers", "admin": "admin_providers"}
# Under the names of `Provider`'s fields; the key's (and the secret's) two columns become a `SealedKey`.
PROVIDER_COLUMNS = (
    "id::text AS id, name, display_name, type, api_key_ciphertext, api_key_id, api_key_hint AS key_hint, "
    "api_secret_ciphertext, api_secret_id, api_secret_hint AS secret_hint, "
    "base_url, config, is_active, is_healthy, health_checked_at, created_at, updated_at"
)


def _provider(row: Row) -> Provider:
    return from_row(
        Provider,
        row,
        config=row["config"] or {},
        key=_sealed(row["api_key_ciphertext"], row["api_key_id"]),
        secret=_sealed(row["api_secret_ciphertext"], row["api_secret_id"]),
    )


def _sealed(ciphertext: bytes | None, key_id: str | None) -> SealedKey | None:
    return None if ciphertext is None or key_id is None else SealedKey(key_id, bytes(ciphertext))


def _provider_values(provider: Provider) -> Row:
    key, secret = provider.key, provider.secret
    return to_row(
        provider,
        config=Jsonb(dict(provider.config)),
        api_key_ciphertext=key.ciphertext if key else None,
        api_key_id=key.key_id if key else None,
        api_secret_ciphertext=secret.ciphertext if secret else None,
        api_secret_id=secret.key_id if secret else None,
    )


class ProviderRecords:
    """The live (not deleted) providers of one scope."""

    def __init__(self, conn: psycopg.AsyncConnection, scope: Scope) -> None:
        self._conn = conn
        self._table = _TABLES[scope]

    async def add(self, provider: Provider) -> Provider | None:
        """None when a live provider of that name exists."""
        cursor = await self._conn.execute(
            f"""INSERT INTO {self._table}
                  (id, name, display_name, type, api_key_ciphertext, api_key_id, api_key_hint,
                   api_secret_ciphertext, api_secret_id, api_secret_hint, base_url, config, is_active,
                   created_at, updated_at)
                VALUES (%(id)s, %(name)s, %(display_name)s, %(type)s, %(api_key_ciphertext)s, %(api_key_id)s,
                        %(key_hint)s, %(api_secret_ciphertext)s, %(api_secret_id)s, %(secret_hint)s,
                        %(base_url)s, %(config)s, %(is_active)s, %(created_at)s, %(updated_at)s)
                ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING
                RETURNING {PROVIDER_COLUMNS}""",
            _provider_values(provider),
        )
        return await self._one(cursor)

    async def get(self, provider_id: str, *, for_update: bool = False) -> Provider | None:
        lock = " FOR UPDATE" if for_update else ""
        cursor = await self._conn.execute(
            f"SELECT {PROVIDER_COLUMNS} FROM {self._table} WHERE id = %s AND deleted_at IS NULL{lock}",
            (provider_id,),
        )
        return await self._one(cursor)

    async def by_name(self, name: str) -> Provider | None:
        cursor = await self._conn.execute(
            f"SELECT {PROVIDER_COLUMNS} FROM {self._table} WHERE name = %s AND deleted_at IS NULL",
            (name,),
        )
        return await self._one(cursor)

    async def page(self, *, limit: int, after_name: str | None) -> list[Provider]:
        cursor = await self._conn.execute(
            f"""SELECT {PROVIDER_COLUMNS} FROM {self._table}
                WHERE deleted_at IS NULL AND (%(after)s::text IS NULL OR name > %(after)s)
                ORDER BY name LIMIT %(limit)s""",
            {"after": after_name, "limit": limit},
        )
        return [_provider(row) for row in await cursor.fetchall()]

    async def all_live(self) -> list[Provider]:
        cursor = await self._conn.execute(
            f"SELECT {PROVIDER_COLUMNS} FROM {self._table} WHERE deleted_at IS NULL ORDER BY name"
        )
        return [_provider(row) for row in await cursor.fetchall()]

    async def with_keys(self, *, not_under: str | None = None) -> list[Provider]:
        """Providers holding a key or secret (those with one not under master key `not_under`, locked,
        when it is given)."""
        if not_under is None:
            cursor = await self._conn.execute(
                f"""SELECT {PROVIDER_COLUMNS} FROM {self._table}
                    WHERE deleted_at IS NULL
                      AND (api_key_ciphertext IS NOT NULL OR api_secret_ciphertext IS NOT NULL)
                    ORDER BY name"""
            )
        else:
            cursor = await self._conn.execute(
                f"""SELECT {PROVIDER_COLUMNS} FROM {self._table}
                    WHERE deleted_at IS NULL
                      AND (api_key_id <> %(current)s OR api_secret_id <> %(current)s)
                    ORDER BY name FOR UPDATE""",
                {"current": not_under},
            )
        return [_provider(row) for row in await cursor.fetchall()]

    async def save(self, provider: Provider) -> None:
        """Write what may change of a provider (its name, type and creation are fixed)."""
        await self._conn.execute(
            f"""UPDATE {self._table} SET display_name = %(display_name)s, base_url = %(base_url)s,
                       config = %(config)s, is_active = %(is_active)s,
                       api_key_ciphertext = %(api_key_ciphertext)s, api_key_id = %(api_key_id)s,
                       api_key_hint = %(key_hint)s, api_secret_ciphertext = %(api_secret_ciphertext)s,
                       api_secret_id = %(api_secret_id)s, api_secret_hint = %(secret_hint)s,
                       is_healthy = %(is_healthy)s,
                       health_checked_at = %(health_checked_at)s, updated_at = %(updated_at)s
                WHERE id = %(id)s AND deleted_at IS NULL""",
            _provider_values(provider),
        )

    async def delete(self, provider_id: str, now: datetime) -> bool:
        # Soft delete: the row stays for audits, its key is erased and its name is free again.
        cursor = await self._conn.execute(
            f"""UPDATE {self._table}
                SET deleted_at = %(now)s, updated_at = %(now)s, is_active = false,
                    api_key_ciphertext = NULL, api_key_id = NULL, api_key_hint = NULL,
                    api_secret_ciphertext = NULL, api_secret_id = NULL, api_secret_hint = NULL
                WHERE id = %(id)s AND deleted_at IS NULL
                RETURNING 1""",
            {"id": provider_id, "now": now},
        )
        return await cursor.fetchone() is not None

    @staticmethod
    async def _one(cursor: psycopg.AsyncCursor[Row]) -> Provider | None:
        row = await cursor.fetchone()
        return None if row is None else _provider(row)


# --- step jobs -----------------------------------------------------------------------------------------

# Under the names of `StepJob`'s fields; the error's two columns become its `StepError`.
JOB_COLUMNS = (
    "id::text AS id, task_id, user_id, step_id, attempt, step_type, provider, model, scope, input, "
    "deadline_at, correlation_id, causation_id, status, run_at, retries, delays, claims, progress, "
    "lease_owner, lease_until, provider_request_id, error_code, error_message, traceparent"
)

# Leases and due times are on the database's clock, so every replica reads them alike (`claim_due`
# compares them with `now()`). A transition is decided on the runner's clock, though (a ManualClock in
# tests), so a time it sets is written as the same distance from the database's `now()` as it was from
# the runner's `decided_at`: "lease for 30 s", "retry in 2 s" mean the same on both clocks and no replica
# trusts its own wall clock against another's. A time the transition left alone stays as stored.
_REBASED = """CASE WHEN %({name})s::timestamptz IS NULL THEN NULL
                   WHEN %({name})s::timestamptz = {name} THEN {name}
                   ELSE now() + (%({name})s::timestamptz - %(decided_at)s::timestamptz) END"""

_INSERT_JOB = """
INSERT INTO step_jobs
  (id, task_id, user_id, step_id, attempt, step_type, provider, model, scope, input, deadline_at,
   correlation_id, causation_id, status, run_at, traceparent)
VALUES (%(id)s, %(task_id)s, %(user_id)s, %(step_id)s, %(attempt)s, %(step_type)s, %(provider)s, %(model)s,
        %(scope)s, %(input)s, %(deadline_at)s, %(correlation_id)s, %(causation_id)s, %(status)s,
        now() + (%(run_at)s::timestamptz - %(decided_at)s::timestamptz), %(traceparent)s)
ON CONFLICT (task_id, step_id, attempt) DO NOTHING
RETURNING 1
"""

_DUE_WHERE = "(j.status = 'queued' AND j.run_at <= now()) OR (j.status = 'running' AND j.lease_until < now())"

# Fair shares under providers' limits. Due jobs are taken in turns per user and provider, counting what
# each user has in flight there: a user with k calls running takes their next place at turn k + 1, so a
# burst of hundreds takes one place per turn like a single step, and a freed slot goes to whoever has the
# fewest calls in flight. A provider with a concurrency limit gets no more jobs than it has free slots (its
# limit minus its jobs running, on every replica): the others stay queued — not claimed, not delayed — and
# the next claim, when a call ends, takes them in turn. (Two replicas may both see one free slot; the
# limiter then turns one away and delays it, as before.) FOR UPDATE cannot sit beside window functions:
# the places are numbered first, then the rows locked (and checked again), returned in turn order.
_CLAIM_DUE = f"""
WITH busy AS (
    SELECT scope, provider, user_id, count(*) AS running FROM step_jobs
    WHERE status = 'running' AND lease_until >= now() GROUP BY scope, provider, user_id
), due AS (
    SELECT j.id, j.scope, j.provider, j.run_at,
           row_number() OVER (PARTITION BY j.scope, j.provider, j.user_id ORDER BY j.run_at, j.id)
             + coalesce(busy.running, 0) AS turn
    FROM step_jobs j LEFT JOIN busy USING (scope, provider, user_id)
    WHERE {_DUE_WHERE}
), placed AS (
    SELECT due.*, row_number() OVER (PARTITION BY scope, provider ORDER BY turn, run_at, id) AS place
    FROM due
), capped AS (
    SELECT placed.* FROM placed
    LEFT JOIN unnest(%(cap_scopes)s::text[], %(cap_providers)s::text[], %(cap_limits)s::int[])
         AS cap (scope, provider, max_concurrency) USING (scope, provider)
    LEFT JOIN (SELECT scope, provider, sum(running) AS running FROM busy GROUP BY scope, provider)
         AS in_flight USING (scope, provider)
    WHERE cap.max_concurrency IS NULL
       OR placed.place <= cap.max_concurrency - coalesce(in_flight.running, 0)
), picked AS (
    SELECT j.id, capped.turn, capped.run_at FROM step_jobs j JOIN capped ON capped.id = j.id
    WHERE {_DUE_WHERE}
    ORDER BY capped.turn, capped.run_at, capped.id LIMIT %(limit)s FOR UPDATE OF j SKIP LOCKED
), claimed AS (
    UPDATE step_jobs SET status = 'running', lease_owner = %(owner)s,
           lease_until = now() + make_interval(secs => %(lease)s), claims = claims + 1, updated_at = now()
    WHERE id IN (SELECT id FROM picked)
    RETURNING {JOB_COLUMNS}
)
SELECT claimed.* FROM claimed JOIN picked ON picked.id::text = claimed.id
ORDER BY picked.turn, picked.run_at, picked.id
"""

# Both minimums come from the partial indexes on queued run_at and running lease_until.
_UNTIL_DUE = """EXTRACT(EPOCH FROM least(
    (SELECT min(run_at) FROM step_jobs WHERE status = 'queued'),
    (SELECT min(lease_until) FROM step_jobs WHERE status = 'running')
) - now())::float8"""
_SECONDS_UNTIL_DUE = f"SELECT {_UNTIL_DUE} AS seconds"
# A row per (scope, provider) with a job due now, and one row without a provider: the seconds until due.
_LOOK = f"""
SELECT scope, provider, NULL::float8 AS seconds
FROM (SELECT DISTINCT scope, provider FROM step_jobs j WHERE {_DUE_WHERE}) AS due
UNION ALL
SELECT NULL, NULL, {_UNTIL_DUE}
"""

_SAVE_JOB = f"""
UPDATE step_jobs SET status = %(status)s,
       run_at = {_REBASED.format(name="run_at")},
       lease_until = {_REBASED.format(name="lease_until")},
       lease_owner = %(lease_owner)s, retries = %(retries)s, delays = %(delays)s, claims = %(claims)s,
       progress = %(progress)s, provider_request_id = %(provider_request_id)s,
       error_code = %(error_code)s, error_message = %(error_message)s,
       finished_at = CASE WHEN %(status)s IN ('completed', 'failed', 'cancelled')
                          THEN COALESCE(finished_at, now()) END,
       updated_at = now()
WHERE id = %(id)s
"""


_QUEUE_COUNTS = """
SELECT scope, provider,
       CASE WHEN status = 'running' THEN 'running'
            WHEN delays > 0 THEN 'delayed'
            WHEN retries > 0 THEN 'retrying'
            ELSE 'queued' END AS state,
       count(*)::int AS count,
       EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest_age_seconds
FROM step_jobs
WHERE status IN ('queued', 'running')
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""


def _job(row: Row) -> StepJob:
    stored_input = row["input"]
    job_input = StepJobInput(
        asset_ids=tuple(stored_input.get("asset_ids") or ()),
        reference_asset_ids=tuple(stored_input.get("reference_asset_ids") or ()),
        history_asset_ids=tuple(stored_input.get("history_asset_ids") or ()),
        prompt=stored_input.get("prompt"),
        options=stored_input.get("options") or {},
    )
    error = None if row["error_code"] is None else StepError(row["error_code"], row["error_message"] or "")
    return from_row(StepJob, row, input=job_input, error=error)


def _job_values(job: StepJob, decided_at: datetime) -> Row:
    job_input = {
        "asset_ids": list(job.input.asset_ids),
        "reference_asset_ids": list(job.input.reference_asset_ids),
        "history_asset_ids": list(job.input.history_asset_ids),
        "prompt": job.input.prompt,
        "options": dict(job.input.options),
    }
    error = job.error
    return to_row(
        job,
        input=Jsonb(job_input),
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        decided_at=decided_at,
    )


class StepJobRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add(self, job: StepJob, *, decided_at: datetime) -> Sent[bool]:
        """Answers False when this (task, step, attempt) is already known: StepRequested came again."""

        async def read(cursor: psycopg.AsyncCursor[Any]) -> bool:
            return await cursor.fetchone() is not None

        return Sent(await self._conn.execute(_INSERT_JOB, _job_values(job, decided_at)), read)

    async def look(self) -> DueLook:
        cursor = await self._conn.execute(_LOOK)
        providers: list[tuple[str, str]] = []
        seconds: float | None = None
        for row in await cursor.fetchall():
            if row["provider"] is None:
                seconds = row["seconds"]
            else:
                providers.append((row["scope"], row["provider"]))
        return DueLook(providers, seconds)

    async def send_seconds_until_due(self) -> Sent[float | None]:
        async def read(cursor: psycopg.AsyncCursor[Any]) -> float | None:
            row = await cursor.fetchone()
            return None if row is None or row["seconds"] is None else float(row["seconds"])

        return Sent(await self._conn.execute(_SECONDS_UNTIL_DUE), read)

    async def claim_due(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        max_concurrency: Mapping[tuple[str, str], int] | None = None,
    ) -> list[StepJob]:
        claim = await self.send_claim_due(
            owner, limit=limit, lease_seconds=lease_seconds, max_concurrency=max_concurrency
        )
        return await claim.answer()

    async def send_claim_due(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        max_concurrency: Mapping[tuple[str, str], int] | None = None,
    ) -> Sent[list[StepJob]]:
        """Take up to `limit` due jobs (`step_job.claim` for many jobs in one statement): queued ones whose
        time has come and running ones whose runner's lease ran out (it crashed), in turns per user and
        provider, and for a provider in `max_concurrency` no more than its free slots. Database time
        throughout, so replicas agree on what is due; SKIP LOCKED, so two never take the same job."""
        caps = sorted((max_concurrency or {}).items())
        cursor = await self._conn.execute(
            _CLAIM_DUE,
            {
                "owner": owner, "lease": lease_seconds, "limit": limit,
                "cap_scopes": [scope for (scope, _), _ in caps],
                "cap_providers": [provider for (_, provider), _ in caps],
                "cap_limits": [limit_ for _, limit_ in caps],
            },
        )  # fmt: skip

        async def read(cursor: psycopg.AsyncCursor[Any]) -> list[StepJob]:
            return [_job(row) for row in await cursor.fetchall()]

        return Sent(cursor, read)

    async def lock(self, job_id: str) -> StepJob | None:
        """The job, locked until the transaction ends."""
        cursor = await self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM step_jobs WHERE id = %s FOR UPDATE", (job_id,)
        )
        row = await cursor.fetchone()
        return None if row is None else _job(row)

    async def save(self, job: StepJob, *, decided_at: datetime) -> None:
        """Write a job `lock` loaded and a transition changed at `decided_at` (the runner's clock)."""
        await self._conn.execute(_SAVE_JOB, _job_values(job, decided_at))

    async def running_of_task(self, task_id: str) -> list[StepJob]:
        """The task's unfinished jobs (queued or running), locked: the ones a cancel stops."""
        cursor = await self._conn.execute(
            f"""SELECT {JOB_COLUMNS} FROM step_jobs
                WHERE task_id = %s AND status IN ('queued', 'running') ORDER BY created_at FOR UPDATE""",
            (task_id,),
        )
        return [_job(row) for row in await cursor.fetchall()]

    async def queue_counts(self) -> list[StepJobCount]:
        """Unfinished jobs per scope, provider and monitor state, counted and aged by the database (the
        partial indexes on queued and running jobs find them); the CASE is `domain.queue.queue_state`."""
        cursor = await self._conn.execute(_QUEUE_COUNTS)
        return [from_row(StepJobCount, row) for row in await cursor.fetchall()]

    async def of_task(self, task_id: str) -> list[StepJob]:
        """Every job of the task, oldest first (for operators and tests; nothing is locked)."""
        cursor = await self._conn.execute(
            f"SELECT {JOB_COLUMNS} FROM step_jobs WHERE task_id = %s ORDER BY created_at", (task_id,)
        )
        return [_job(row) for row in await cursor.fetchall()]


# --- health history --------------------------------------------------------------------------------

HEALTH_CHECK_COLUMNS = (
    "id::text AS id, provider_id::text AS provider_id, checked_at, healthy, latency_ms, error, trigger"
)
_INSERT_HEALTH_CHECK = """
INSERT INTO provider_health_checks (id, scope, provider_id, checked_at, healthy, latency_ms, error, trigger)
VALUES (%(id)s, %(scope)s, %(provider_id)s, %(checked_at)s, %(healthy)s, %(latency_ms)s, %(error)s,
        %(trigger)s)
"""
_FORGET_HEALTH_CHECKS = """
DELETE FROM provider_health_checks
WHERE scope = %(scope)s AND provider_id = %(provider_id)s AND checked_at < %(before)s
"""
_HEALTH_HISTORY = f"""
SELECT {HEALTH_CHECK_COLUMNS} FROM provider_health_checks
WHERE scope = %(scope)s AND provider_id = %(provider_id)s
  AND (%(after_at)s::timestamptz IS NULL OR (checked_at, id) < (%(after_at)s, %(after_id)s::uuid))
ORDER BY checked_at DESC, id DESC
LIMIT %(limit)s
"""


class HealthCheckRecords:
    """Every health check of every provider (both scopes), newest first."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add(self, scope: Scope, check: HealthCheck) -> None:
        await self._conn.execute(_INSERT_HEALTH_CHECK, to_row(check, scope=scope))

    async def forget_before(self, scope: Scope, provider_id: str, before: datetime) -> None:
        """Drop a provider's checks older than `before` (the history is kept for a while, not forever)."""
        await self._conn.execute(
            _FORGET_HEALTH_CHECKS, {"scope": scope, "provider_id": provider_id, "before": before}
        )

    async def page(
        self, scope: Scope, provider_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[HealthCheck], str | None]:
        after_at, after_id = decode_cursor(cursor, datetime, uuid.UUID) if cursor else (None, None)
        cursor_rows = await self._conn.execute(
            _HEALTH_HISTORY,
            {
                "scope": scope,
                "provider_id": provider_id,
                "after_at": after_at,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        checks = [from_row(HealthCheck, row) for row in await cursor_rows.fetchall()]
        return page_of(checks, limit, key=lambda check: (check.checked_at, check.id))


# --- provider calls (diagnostics) -------------------------------------------------------------------------

_INSERT_PROVIDER_CALL = """
INSERT INTO provider_calls
  (job_id, started_at, method, url, status, duration_ms, request_ids, request_body, response_body, error)
VALUES (%(job_id)s, %(started_at)s, %(method)s, %(url)s, %(status)s, %(duration_ms)s, %(request_ids)s,
        %(request_body)s, %(response_body)s, %(error)s)
"""
_PROVIDER_CALLS_OF_JOBS = """
SELECT job_id::text AS job_id, started_at, method, url, status, duration_ms, request_ids, request_body,
       response_body, error
FROM provider_calls WHERE job_id = ANY(%(job_ids)s::uuid[]) ORDER BY job_id, id
"""


def _optional_json(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class ProviderCallRecords:
    """The calls each step job made to its provider, redacted before they get here."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add(self, job_id: str, calls: Sequence[ProviderCall]) -> None:
        if not calls:
            return
        async with self._conn.cursor() as cursor:
            await cursor.executemany(
                _INSERT_PROVIDER_CALL,
                [
                    to_row(
                        call,
                        job_id=job_id,
                        request_ids=Jsonb(dict(call.request_ids)),
                        request_body=_optional_json(call.request_body),
                        response_body=_optional_json(call.response_body),
                        error=call.error[:300] if call.error else None,
                    )
                    for call in calls
                ],
            )

    async def of_jobs(self, job_ids: Sequence[str]) -> dict[str, list[ProviderCall]]:
        cursor = await self._conn.execute(_PROVIDER_CALLS_OF_JOBS, {"job_ids": list(job_ids)})
        calls: dict[str, list[ProviderCall]] = {}
        for row in await cursor.fetchall():
            job_id = row.pop("job_id")
            calls.setdefault(job_id, []).append(from_row(ProviderCall, row))
        return calls


class ProvidersUnitOfWork(PostgresUnitOfWork):
    """One transaction of providers, with its stores: `uow.jobs`, `uow.providers[scope]`,
    `uow.health_checks`, `uow.replays` (dead letters replayed) and `uow.provider_calls` (diagnostics)."""

    jobs: StepJobRecords
    provider_calls: ProviderCallRecords
    providers: Mapping[Scope, ProviderRecords]
    health_checks: HealthCheckRecords
    replays: DeadLetterReplayRecords

    def bind(self, conn: psycopg.AsyncConnection) -> None:
        self.jobs = StepJobRecords(conn)
        self.provider_calls = ProviderCallRecords(conn)
        self.providers = {scope: ProviderRecords(conn, scope) for scope in SCOPES}
        self.health_checks = HealthCheckRecords(conn)
        self.replays = DeadLetterReplayRecords(conn)
