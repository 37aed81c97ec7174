"""A background loop a service runs beside HTTP and Kafka: one step every so often, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Periodic"]

log = logging.getLogger(__name__)


class Periodic:
    """Awaits `step` every `interval_seconds` (a `BackgroundWorker` for `ServiceSpec.workers`).

    A failing step is logged and the loop goes on: the next step retries. `stop()` ends the wait at once.
    """

    def __init__(self, name: str, step: Callable[[], Awaitable[object]], interval_seconds: float) -> None:
        self.name = name
        self._step = step
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
            if self._stopping.is_set():
                return
            try:
                await self._step()
            except Exception:
                log.exception("background step failed; retrying next time", extra={"worker": self.name})
