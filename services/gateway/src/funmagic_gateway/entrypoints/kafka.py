"""Kafka subscriptions of gateway (consumer group `gateway`): the SSE projector and the purchases watcher.

Step events (providers.events) and task and studio-reply outcomes (tasks.events) become entries of the
task's (or reply's) and the owner's Redis streams, which `entrypoints.sse_routes` serves (mapping:
`domain.sse.project`). One batch handler for every projected event type: the kit's consumer parses each
event (one that does not match its contract is dead-lettered there), skips every other type, and hands the
projector each run of consecutive projected events at once, whose appends then cost two Redis round trips
whatever their number. The gateway has no database, hence no inbox: the appends are idempotent by
themselves (see `adapters.task_streams`), so a redelivered event changes nothing — nor does a run retried
one event at a time after it failed halfway.

A change to the catalog (tasks.events `ToolChanged`, `ToolTypeChanged`, `BannerChanged`) empties the cache
of public catalog answers (`adapters.reply_cache`); it is handled on the task events' one subscription, since
a second subscription of the group to the same topic would split its partitions with the projector.

A purchase (credits.events `CreditsPurchased`) refreshes the buyer's cached lifetime purchases, so their
higher rate-limit tier applies within seconds; refreshing again changes nothing either.
"""

from __future__ import annotations

from collections.abc import Sequence

from funmagic_contracts.credits.events import CreditsPurchased
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepDelayed, StepProgressed, StepStarted
from funmagic_contracts.tasks.events import (
    BannerChanged,
    StudioReplyCancelled,
    StudioReplyCompleted,
    StudioReplyFailed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    ToolChanged,
    ToolTypeChanged,
)
from funmagic_contracts.topics import CREDITS_EVENTS, PROVIDERS_EVENTS, TASKS_EVENTS
from funmagic_gateway.adapters.rate_limiter import PurchasedCredits
from funmagic_gateway.adapters.reply_cache import ReplyCache
from funmagic_gateway.adapters.task_streams import TaskStreams
from funmagic_gateway.domain.sse import project
from funmagic_kit.consumer import Subscription

__all__ = ["CatalogWatcher", "ProjectedEvent", "PurchasesWatcher", "SseProjector"]

ProjectedEvent = (
    StepStarted
    | StepProgressed
    | StepDelayed
    | StepCompleted
    | TaskCompleted
    | TaskFailed
    | TaskCancelled
    | StudioReplyCompleted
    | StudioReplyFailed
    | StudioReplyCancelled
)


class SseProjector:
    def __init__(self, streams: TaskStreams) -> None:
        self._streams = streams

    async def project(self, deliveries: Sequence[tuple[ProjectedEvent, Envelope]], uow: None) -> None:
        projections = [project(str(envelope.id), event) for event, envelope in deliveries]
        kept = [projection for projection in projections if projection is not None]
        if kept:
            await self._streams.append_all(kept)  # StreamUnavailable (Redis down): retried

    def subscriptions(self, catalog: CatalogWatcher | None = None) -> Sequence[Subscription[None]]:
        task_events = (
            Subscription[None](TASKS_EVENTS)
            .on_batch(TaskCompleted, self.project)
            .on_batch(TaskFailed, self.project)
            .on_batch(TaskCancelled, self.project)
            .on_batch(StudioReplyCompleted, self.project)
            .on_batch(StudioReplyFailed, self.project)
            .on_batch(StudioReplyCancelled, self.project)
        )
        return (
            task_events if catalog is None else catalog.handled_on(task_events),
            Subscription[None](PROVIDERS_EVENTS)
            .on_batch(StepStarted, self.project)
            .on_batch(StepProgressed, self.project)
            .on_batch(StepDelayed, self.project)
            .on_batch(StepCompleted, self.project),
        )


class CatalogWatcher:
    def __init__(self, cache: ReplyCache) -> None:
        self._cache = cache

    async def changed(
        self, event: ToolChanged | ToolTypeChanged | BannerChanged, envelope: Envelope, uow: None
    ) -> None:
        self._cache.clear()

    def handled_on(self, task_events: Subscription[None]) -> Subscription[None]:
        return (
            task_events.on(ToolChanged, self.changed)
            .on(ToolTypeChanged, self.changed)
            .on(BannerChanged, self.changed)
        )


class PurchasesWatcher:
    def __init__(self, purchased: PurchasedCredits) -> None:
        self._purchased = purchased

    async def purchased(self, event: CreditsPurchased, envelope: Envelope, uow: None) -> None:
        await self._purchased.refresh(event.user_id)  # RateLimiterUnavailable (Redis down): retried

    def subscriptions(self) -> Sequence[Subscription[None]]:
        return (Subscription[None](CREDITS_EVENTS).on(CreditsPurchased, self.purchased),)
