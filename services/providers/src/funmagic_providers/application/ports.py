"""What the providers use cases need from the outside world, as Protocols; adapters implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Literal, Protocol

from funmagic_kit.ports import SentRead, UnitOfWork
from funmagic_providers.domain.health import HealthCheck
from funmagic_providers.domain.provider_calls import ProviderCall
from funmagic_providers.domain.providers import CredentialPart, Provider, Scope
from funmagic_providers.domain.queue import (
    ConsumerGroupOffsets,
    DeadLetterRecord,
    DueLook,
    LagSample,
    LimiterUsage,
    PartitionOffsets,
    Replay,
    ReplayRecord,
    StepJobCount,
)
from funmagic_providers.domain.rate_limit import RateLimitConfig
from funmagic_providers.domain.step_job import StepJob
from funmagic_providers.domain.steps import InputFile, LiveOutput, StoredAsset

__all__ = [
    "Admission",
    "CallOutcome",
    "ConfigCache",
    "DeadLetterReplayStore",
    "HealthCheckStore",
    "KafkaQueue",
    "Keyring",
    "LagTrend",
    "Limiter",
    "LimiterGauge",
    "LiveReplies",
    "ProviderCallRecorder",
    "ProviderCallStore",
    "ProviderStore",
    "ProvidersUnitOfWork",
    "QueueMetrics",
    "RunnerSettings",
    "StepJobStore",
    "StepMetrics",
    "Storage",
]


class StepJobStore(Protocol):
    async def add(self, job: StepJob, *, decided_at: datetime) -> SentRead[bool]:
        """Record a new job; the answer is False if its (task, step, attempt) is known already."""
        ...

    async def look(self) -> DueLook:
        """Which providers have jobs due now, and the seconds until the next job falls due — one read."""
        ...

    async def send_seconds_until_due(self) -> SentRead[float | None]:
        """Answers the seconds until the next queued job's time comes or a running job's lease runs out
        (≤ 0: one is due now); None when no job is queued or running."""
        ...

    async def claim_due(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        max_concurrency: Mapping[tuple[str, str], int] | None = None,
    ) -> list[StepJob]:
        """Claim up to `limit` due jobs for `owner` in one go; no two owners get the same job. Jobs are taken
        in turns per user and provider, and a provider in `max_concurrency` gets no more than its free
        slots (its limit minus its running jobs)."""
        ...

    async def send_claim_due(
        self,
        owner: str,
        *,
        limit: int,
        lease_seconds: float,
        max_concurrency: Mapping[tuple[str, str], int] | None = None,
    ) -> SentRead[list[StepJob]]:
        """`claim_due`, answered later (reads sent together share a round trip)."""
        ...

    async def lock(self, job_id: str) -> StepJob | None: ...

    async def save(self, job: StepJob, *, decided_at: datetime) -> None:
        """Write back a locked job as a transition decided at `decided_at` left it."""
        ...

    async def running_of_task(self, task_id: str) -> list[StepJob]:
        """The task's queued and running jobs, locked."""
        ...

    async def of_task(self, task_id: str) -> list[StepJob]:
        """Every job of the task (all its steps and attempts), oldest first; nothing locked."""
        ...

    async def queue_counts(self) -> list[StepJobCount]:
        """Unfinished jobs per scope, provider and monitor state (`domain.queue.queue_state`), counted by
        the database."""
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


class HealthCheckStore(Protocol):
    """The health history of the providers of both scopes."""

    async def add(self, scope: Scope, check: HealthCheck) -> None: ...

    async def forget_before(self, scope: Scope, provider_id: str, before: datetime) -> None:
        """Drop a provider's checks older than `before`."""
        ...

    async def page(
        self, scope: Scope, provider_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[HealthCheck], str | None]:
        """A provider's checks, newest first, and the cursor of the next page (None at the end)."""
        ...


class DeadLetterReplayStore(Protocol):
    """Which events were replayed from a dead-letter topic (one row per event id)."""

    async def add(self, replay: Replay, *, replayed_by: str, replayed_at: datetime) -> bool:
        """Record the replay; False when this event was replayed before (nothing is written then)."""
        ...

    async def publish_again(self, replay: Replay) -> None:
        """Put the original message in the outbox, bound for its origin topic."""
        ...

    async def of_events(self, event_ids: Sequence[str]) -> dict[str, ReplayRecord]:
        """The replays of those events that were replayed, by event id."""
        ...


class ProviderCallStore(Protocol):
    """The recorded provider calls of step jobs (redacted already: `domain.provider_calls`)."""

    async def add(self, job_id: str, calls: Sequence[ProviderCall]) -> None: ...

    async def of_jobs(self, job_ids: Sequence[str]) -> dict[str, list[ProviderCall]]:
        """Each job's calls in the order they were made (a job with none is left out)."""
        ...


class ProviderCallRecorder(Protocol):
    """Where the provider adapters' HTTP calls are seen: `with recorder.record() as calls:` collects the
    calls made inside the block (by the task running it and the tasks it starts)."""

    def record(self) -> AbstractContextManager[list[ProviderCall]]: ...


class ProvidersUnitOfWork(UnitOfWork, Protocol):
    jobs: StepJobStore
    provider_calls: ProviderCallStore
    providers: Mapping[Scope, ProviderStore]
    replays: DeadLetterReplayStore
    health_checks: HealthCheckStore


class Keyring(Protocol):
    """Seals provider keys at rest under the current master key; opens them with the key they name."""

    current: str

    def encrypt(self, api_key: str, *, row_id: str, part: CredentialPart = "key") -> tuple[str, bytes]: ...

    def decrypt(
        self, key_id: str, ciphertext: bytes, *, row_id: str, part: CredentialPart = "key"
    ) -> str: ...


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
    step_idle_poll_seconds: float
    step_progress_interval_seconds: float
    circuit_failure_threshold: int
    circuit_cooldown_seconds: float


CallOutcome = Literal["succeeded", "failed", "unavailable", "cancelled", "error"]
"""How a provider call ended: a result; a provider's refusal (bad input, content policy…); the provider
down, slow or past the step's deadline (what opens the circuit); cancelled (the task, or the runner
stopping); anything else (a bug of ours or the adapter's)."""


class StepMetrics(Protocol):
    """What the step runner tells the metrics (dashboards and alerts read them)."""

    def provider_call(self, provider: str, step_type: str, outcome: CallOutcome, seconds: float) -> None:
        """One provider call ended after `seconds`."""
        ...


class QueueMetrics(Protocol):
    """What the queue monitor's background round tells the metrics."""

    def queue_sampled(self, lags: Mapping[tuple[str, str], int], dead_letters: Mapping[str, int]) -> None:
        """The lag of every (consumer group, topic), and how many messages each dead-letter topic has
        received so far (its partitions' end offsets: they only grow, so growth is a new dead letter)."""
        ...


class LiveReplies(Protocol):
    """Where the studio's replies show as they are made (text deltas, partial images)."""

    def for_reply(self, user_id: str, message_id: str) -> LiveOutput: ...


class Storage(Protocol):
    """The storage service, as steps use it: read an input asset, store an output as an asset."""

    async def read_asset(self, user_id: str, asset_id: str) -> InputFile: ...

    async def read_catalog_image(self, asset_id: str) -> InputFile:
        """A published image of the catalog (a style reference's), whoever owns it."""
        ...

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


class KafkaQueue(Protocol):
    """Kafka as the queue monitor reads it: offsets and consumer groups through the admin API, and the
    messages of a partition."""

    async def offsets(self, topics: Sequence[str]) -> dict[str, list[PartitionOffsets] | None]:
        """Each topic's partitions with their beginning and end offsets; None for a topic that does not
        exist."""
        ...

    async def consumer_groups(self, topics: Sequence[str]) -> list[ConsumerGroupOffsets]:
        """The consumer groups with committed offsets on any of `topics` (only those offsets)."""
        ...

    async def read(self, topic: str, partition: int, start: int, stop: int) -> list[DeadLetterRecord]:
        """The messages of a partition at offsets `start` ≤ offset < `stop` (an offset may be missing)."""
        ...


class LagTrend(Protocol):
    """Recent lag samples per (group, topic), kept where every replica reads them."""

    async def record(
        self, lags: Mapping[tuple[str, str], int], at: datetime, *, spacing_seconds: float
    ) -> bool:
        """Keep a sample of each lag, unless a replica kept one less than `spacing_seconds` ago (False)."""
        ...

    async def recent(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], list[LagSample]]:
        """The kept samples of each (group, topic), oldest first."""
        ...


class LimiterGauge(Protocol):
    """The rate limiter, read: a provider's limits and what its keys hold now."""

    async def config(self, scope: str, provider: str) -> RateLimitConfig: ...

    async def usage(self, scope: str, provider: str) -> LimiterUsage: ...
