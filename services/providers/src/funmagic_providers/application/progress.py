"""A step's progress reports, coalesced: at most one published per interval, none once the call ended.

Progress is there to watch a long call (a 3D model takes minutes). Each published report is a transaction, a
Kafka message and an entry on the user's live stream; a call that ends within a fraction of a second has
nothing to watch, and its two reports cost about a fifth of a fast task's CPU at one client (e2e_tasks,
December 6). So a report waits until the interval since the call started (or since the last published
report) has passed; a newer report that comes in the meantime replaces it; and when the call ends, a report
still waiting is dropped — the step's outcome says more. Reports stay in order, and none is published after
the call returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from funmagic_kit.logs import get_logger

__all__ = ["ProgressCoalescer"]

log = get_logger(__name__)

Publish = Callable[[int, str], Awaitable[object]]


class ProgressCoalescer:
    """`report` is what an adapter calls (it never waits for a publication); `close` when the call ended.

    An interval of 0 publishes every report as it comes, before `report` returns (the former behaviour).
    """

    def __init__(self, publish: Publish, *, interval_seconds: float) -> None:
        self._publish = publish
        self._interval = interval_seconds
        loop = asyncio.get_running_loop()
        self._time = loop.time
        self._due = self._time() + interval_seconds
        self._waiting: tuple[int, str] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._publishing = False
        self._closed = False

    async def report(self, percent: int, message: str) -> None:
        if self._closed:
            return
        if self._interval <= 0:
            await self._publish_one(percent, message)
            return
        self._waiting = (percent, message)
        if self._publisher is None:
            self._publisher = asyncio.create_task(self._publish_when_due(), name="step-progress")

    async def close(self) -> None:
        """Drop a report still waiting; let one being published finish (so it commits before the outcome)."""
        self._closed = True
        self._waiting = None
        publisher = self._publisher
        if publisher is None:
            return
        if not self._publishing:
            publisher.cancel()
        # `wait`, not `await publisher`: the publisher's cancellation must not pass for this caller's own.
        await asyncio.wait({publisher})

    async def _publish_when_due(self) -> None:
        try:
            while self._waiting is not None:
                await asyncio.sleep(max(self._due - self._time(), 0.0))
                if self._waiting is None:
                    break
                (percent, message), self._waiting = self._waiting, None
                self._publishing = True
                try:
                    await self._publish_one(percent, message)
                finally:
                    self._publishing = False
                self._due = self._time() + self._interval
        finally:
            self._publisher = None

    async def _publish_one(self, percent: int, message: str) -> None:
        try:
            await self._publish(percent, message)
        except Exception:  # a lost report is not worth failing the call for: the next one says more
            log.warning("a step's progress report was not published", exc_info=True)
