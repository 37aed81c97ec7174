"""An announcements reader against a real Redis proves itself current with pings only while it is needed: an
idle process sends nothing on its subscription, and the first ask after a pause brings the pings back."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from funmagic_kit.announcements import Announcements
from funmagic_kit.testing import wait_until

from .conftest import holds

PING_INTERVAL = 0.05
IDLE_AFTER = 0.3


@pytest.fixture
async def reading(redis: Redis) -> AsyncIterator[Callable[..., Announcements]]:
    started: list[tuple[Announcements, asyncio.Task[None]]] = []

    def start(**options: object) -> Announcements:
        reader = Announcements(
            redis,
            f"test-announcements-{uuid.uuid4().hex[:8]}",
            on_message=lambda _: None,
            on_gap=lambda: None,
            ping_interval=PING_INTERVAL,
            **options,  # type: ignore[arg-type]
        )
        started.append((reader, asyncio.create_task(reader.run())))
        return reader

    yield start
    for reader, task in started:
        reader.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=10)


def _proof_older_than(reader: Announcements, seconds: float) -> Callable[[], bool]:
    return lambda: reader.synced_at is not None and time.monotonic() - reader.synced_at > seconds


async def test_a_reader_nobody_asks_stops_pinging_and_the_first_ask_brings_the_pings_back(reading) -> None:
    # Paused, it would look again only after a minute: the ask itself wakes it (and `stop` does, when the
    # fixture ends the test, well within its 10 s).
    reader: Announcements = reading(idle_after=IDLE_AFTER, paused_read_seconds=60.0)
    await wait_until(holds(lambda: reader.current(1.0)), timeout=10, what="the reader to become current")

    # Unasked, no newer proof arrives: the last one ages past the idle limit and several ping intervals.
    await wait_until(
        holds(_proof_older_than(reader, IDLE_AFTER + 4 * PING_INTERVAL)),
        timeout=10,
        what="the pings to stop",
    )

    assert not reader.current(IDLE_AFTER)
    await wait_until(holds(lambda: reader.current(IDLE_AFTER)), timeout=10, what="the pings to resume")


@pytest.mark.parametrize(
    "options",
    [{"idle_after": IDLE_AFTER, "in_use": lambda: True}, {}],
    ids=["in use though nobody asks", "without an idle limit"],
)
async def test_a_reader_in_use_or_without_an_idle_limit_keeps_pinging(reading, options: dict) -> None:
    reader: Announcements = reading(**options)
    await wait_until(holds(lambda: reader.current(1.0)), timeout=10, what="the reader to become current")
    asked_at = time.monotonic()

    # A proof sent well after the idle limit of the last ask: the pings went on.
    await wait_until(
        holds(lambda: (reader.synced_at or 0.0) > asked_at + IDLE_AFTER + 2 * PING_INTERVAL),
        timeout=10,
        what="a ping after the idle limit",
    )
