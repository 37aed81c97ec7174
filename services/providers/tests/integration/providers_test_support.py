"""Helpers shared by the providers integration tests: settings, step requests, the outbox and the jobs as
Postgres holds them, and a stand-in for the storage service (another service: its HTTP client's port)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import decode, parse_event
from funmagic_contracts.tasks.events import StepInput, StepRequested
from funmagic_kit.crypto import generate_secret_key
from funmagic_kit.settings import load_settings
from funmagic_providers.adapters.postgres import ProvidersUnitOfWork
from funmagic_providers.application.ports import ProvidersUnitOfWork as UnitOfWorkPort
from funmagic_providers.config import ProvidersSettings
from funmagic_providers.domain.errors import InvalidStepInput, OutputRefused
from funmagic_providers.domain.step_job import StepJob, StepJobChange
from funmagic_providers.domain.steps import InputFile, StoredAsset

__all__ = [
    "FakeStorage",
    "StoredOutput",
    "decide",
    "jobs_of",
    "outbox_events",
    "providers_settings",
    "step_requested",
]


def providers_settings(**env: str) -> ProvidersSettings:
    return load_settings(
        ProvidersSettings,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "REDIS_URL": "redis://unused", "DATABASE_URL": "postgresql://x",
            "INTERNAL_API_TOKEN": "t" * 32, "AUTH_JWKS_URL": "http://unused", "STORAGE_URL": "http://unused",
            "SECRET_KEY": generate_secret_key(), "STEP_POLL_INTERVAL_SECONDS": "0.05", **env,
        },
    )  # fmt: skip


def step_requested(
    *,
    task_id: str | None = None,
    step_id: str = "step-1",
    attempt: int = 1,
    step_type: str = "image-gen",
    provider: str = "local",
    prompt: str | None = "a lighthouse at dusk",
    options: dict[str, int | str] | None = None,
    asset_ids: tuple[str, ...] = (),
    reference_asset_ids: tuple[str, ...] = (),
    deadline_in: timedelta = timedelta(minutes=10),
) -> StepRequested:
    return StepRequested(
        task_id=task_id or str(uuid.uuid4()),
        user_id="user-1",
        step_id=step_id,
        step_type=step_type,
        provider=provider,
        model="local-v1",
        scope="web",
        input=StepInput(
            asset_ids=asset_ids,
            reference_asset_ids=reference_asset_ids,
            prompt=prompt,
            options=dict(options or {}),
        ),
        attempt=attempt,
        deadline_at=datetime.now(UTC) + deadline_in,
    )


async def outbox_events(pool: AsyncConnectionPool) -> list[IntegrationEvent]:
    """Every event the service has published so far, in order."""
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT payload FROM outbox ORDER BY id")
        rows = await cursor.fetchall()
    return [parse_event(decode(bytes(row["payload"]))) for row in rows]


async def jobs_of(pool: AsyncConnectionPool, task_id: str) -> list[StepJob]:
    async with ProvidersUnitOfWork(pool) as uow:
        return await uow.jobs.of_task(task_id)


async def decide(uow: UnitOfWorkPort, job_id: str, transition, now: datetime) -> StepJobChange | None:
    """What a runner does for every change of a job, in the caller's unit of work: lock, decide, save,
    publish."""
    job = await uow.jobs.lock(job_id)
    change = None if job is None else transition(job)
    if change is not None:
        await uow.jobs.save(change.job, decided_at=now)
        for event in change.events:
            uow.publish(event, correlation_id=change.job.correlation_id, causation_id=change.job.causation_id)
    return change


@dataclass(frozen=True)
class StoredOutput:
    asset_id: str
    user_id: str
    task_id: str
    module: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    visibility: str


@dataclass
class FakeStorage:
    """Implements the `Storage` port in memory: input assets by id, the outputs the runner stored."""

    inputs: dict[str, InputFile] = field(default_factory=dict)
    outputs: list[StoredOutput] = field(default_factory=list)
    # Published catalog images (style references'), by id.
    catalog_images: dict[str, InputFile] = field(default_factory=dict)
    # Set: every output is refused for good with this reason (as storage's 413 for one too large).
    refuse_outputs: str | None = None
    # How long storing an output takes (a slow storage: a large 3D model on a busy S3).
    store_seconds: float = 0.0

    async def read_asset(self, user_id: str, asset_id: str) -> InputFile:
        if asset_id not in self.inputs:
            raise InvalidStepInput(f"input asset {asset_id} does not exist or is not yours")
        return self.inputs[asset_id]

    async def read_catalog_image(self, asset_id: str) -> InputFile:
        if asset_id not in self.catalog_images:
            raise InvalidStepInput(f"input asset {asset_id} is not a published image")
        return self.catalog_images[asset_id]

    async def store_output(
        self,
        *,
        user_id: str,
        task_id: str,
        module: str,
        filename: str,
        content_type: str,
        data: bytes,
        visibility: str,
    ) -> StoredAsset:
        if self.refuse_outputs is not None:
            raise OutputRefused(self.refuse_outputs)
        if self.store_seconds:
            await asyncio.sleep(self.store_seconds)
        asset_id = str(uuid.uuid4())
        self.outputs.append(
            StoredOutput(asset_id, user_id, task_id, module, filename, content_type, data, visibility)
        )
        return StoredAsset(asset_id)
