"""The catalog's changes, announced by tasks, empty the gateway's cache of public catalog answers; they
arrive on the task events' one subscription, beside the projector's handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from funmagic_contracts.ids import uuid7
from funmagic_contracts.tasks.events import BannerChanged, ToolChanged, ToolTypeChanged
from funmagic_contracts.topics import TASKS_EVENTS
from funmagic_gateway.adapters.reply_cache import CachedReply, ReplyCache
from funmagic_gateway.adapters.task_streams import TaskStreams
from funmagic_gateway.entrypoints.kafka import CatalogWatcher, SseProjector
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer


@pytest.fixture
async def cache_and_consumer() -> AsyncIterator[tuple[ReplyCache, InMemoryConsumer]]:
    # Catalog events never reach Redis: a client aimed at nothing shows it.
    unused = Redis.from_url("redis://127.0.0.1:1/0")
    cache = ReplyCache(ttl_seconds=60)
    subscriptions = SseProjector(TaskStreams(unused, unused)).subscriptions(CatalogWatcher(cache))
    async with in_memory_consumer("gateway", subscriptions) as consumer:
        yield cache, consumer
    await unused.aclose()


def test_the_task_events_are_one_subscription_whatever_watches_them() -> None:
    unused = Redis.from_url("redis://127.0.0.1:1/0")
    projector = SseProjector(TaskStreams(unused, unused))

    topics = [s.topic for s in projector.subscriptions(CatalogWatcher(ReplyCache()))]

    assert topics.count(TASKS_EVENTS.name) == 1


@pytest.mark.parametrize(
    "change",
    [
        ToolChanged(tool_id=str(uuid7()), slug="figme", action="updated"),
        ToolTypeChanged(tool_type_id=str(uuid7()), name="3d", change="created", is_active=True),
        BannerChanged(banner_id=str(uuid7()), action="deleted"),
    ],
)
async def test_a_catalog_change_empties_the_cache(
    cache_and_consumer: tuple[ReplyCache, InMemoryConsumer], change: ToolChanged
) -> None:
    cache, consumer = cache_and_consumer
    cache.put("tools", CachedReply(b"{}", "application/json"), fetched_in=cache.generation)

    await consumer.deliver_event(change)

    assert len(cache) == 0
