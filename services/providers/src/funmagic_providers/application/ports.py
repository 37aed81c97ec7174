"""What the providers use cases need from the outside world, as Protocols; adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from funmagic_kit.ports import UnitOfWork
from funmagic_providers.domain.providers import Provider, Scope
from funmagic_providers.domain.rate_limit import RateLimitConfig
from funmagic_providers.domain.step_job import StepJob
from funmagic_providers.domain.steps import InputFile, StoredAsset

__all__ = [
    "Admission",
    "ConfigCache",
    "Keyring",
    "Limiter",
    "ProviderStore",
    "ProvidersUnitOfWork",
    "RunnerSettings",
    "StepJobStore",
    "Storage",
]


class StepJobStore(Protocol):
    async def add(self, job: StepJob, *, decided_at: datetime) -> bool:
        """Record a new job; False if its (task, step, attempt) is known already."""
        ...

    async def claim_due(self, owner: str, *, limit: int, lease_seconds: float) -> list[StepJob]:
        """Claim up to `limit` due jobs for `owner` in one go; no two owners get the same job."""
        ...

    async def lock(self, job_id: str) -> StepJob | None: ...

    async def save(self, job: StepJob, *, decided_at: datetime) -> None:
        """Write back a locked job as a transition decided at `decided_at` left it."""
        ...

    async def running_of_task(self, task_id: str) -> list[StepJob]:
        """The task's queued and running jobs, locked."""
        ...


class ProviderStore(Protocol):
    """The live providers of one scope."""

    async def add(self, provider: Provider) -> Provider | None:
        """None when a live provider has that name already."""
        ...

    async def get(self, provider_id: str, *, for_update: bool = False) -> Provider | None: ...

    async def by_name(self, name: str) -> Provider | None: ...

    async def page(self, *, limit: int, after_name: str | None) -> list[Provider]: ...

    async def all_live(self) -> list[Provider]: ...

    async def with_keys(self, *, not_under: str | None = None) -> list[Provider]: ...

    async def save(self, provider: Provider) -> None: ...

    async def delete(self, provider_id: str, now: datetime) -> bool: ...


class ProvidersUnitOfWork(UnitOfWork, Protocol):
    jobs: StepJobStore
    providers: Mapping[Scope, ProviderStore]


class Keyring(Protocol):
    """Seals provider keys at rest under the current master key; opens them with the key they name."""

    current: str

    def encrypt(self, api_key: str, *, row_id: str) -> tuple[str, bytes]: ...

    def decrypt(self, key_id: str, ciphertext: bytes, *, row_id: str) -> str: ...


class ConfigCache(Protocol):
    async def forget_config(self, scope: str, provider: str) -> None:
        """Drop the cached limits of a provider, so an edit applies at once."""
        ...


class Admission(Protocol):
    @property
    def admitted(self) -> bool: ...

    @property
    def retry_after(self) -> float:
        """Seconds until a slot may be free (when denied)."""
        ...


class Limiter(Protocol):
    """The per-provider rate limiter: a slot per call, held by a lease the caller renews."""

    async def config(self, scope: str, provider: str) -> RateLimitConfig: ...

    async def acquire(self, scope: str, provider: str, lease_id: str) -> Admission: ...

    async def release(self, scope: str, provider: str, lease_id: str) -> None: ...

    async def renew(self, scope: str, provider: str, lease_id: str) -> bool: ...


class RunnerSettings(Protocol):
    """What a step runner reads of the service's settings (their meanings, defaults and bounds are in
    `ProvidersSettings`)."""

    step_concurrency: int
    step_lease_seconds: float
    step_poll_interval_seconds: float
    circuit_failure_threshold: int
    circuit_cooldown_seconds: float


class Storage(Protocol):
    """The storage service, as steps use it: read an input asset, store an output as an asset."""

    async def read_asset(self, user_id: str, asset_id: str) -> InputFile: ...

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
    ) -> StoredAsset: ...
