"""Background loops of identity."""

from __future__ import annotations

import asyncio
import logging

from funmagic_identity.adapters.signing_keys import SigningKeyRing
from funmagic_identity.application.ports import Clock

__all__ = ["SigningKeyReloader"]

log = logging.getLogger(__name__)


class SigningKeyReloader:
    """Picks up keys rotated by another process (the CLI or another replica)."""

    def __init__(self, keys: SigningKeyRing, clock: Clock, *, interval_seconds: float = 30.0) -> None:
        self._keys = keys
        self._clock = clock
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
            except TimeoutError:
                try:
                    await self._keys.load(self._clock.now())
                except Exception:
                    log.exception("reloading signing keys failed; keeping the current ones")
