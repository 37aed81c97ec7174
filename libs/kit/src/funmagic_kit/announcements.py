"""A Redis pub/sub channel read by one background task, which knows how current it is.

Pub/sub delivers a message only to those subscribed at that moment, and redis-py reconnects and resubscribes
by itself: whatever was published in between is lost without a sign. So a reader that keeps state from the
announcements (a cache to drop, waiters to wake) must know when it may have missed one:

- every (re)subscription confirmation calls `on_gap` (announcements may have been lost before it), as does
  a connection error;
- it pings on the subscription every `ping_interval` with the send time as the payload; one connection
  delivers in order, so a pong proves that everything published before its ping was read: `synced_at` is
  the newest such time, and `current(max_staleness)` says whether it is recent enough;
- it pings only while it is needed: while `current` was asked within the last `idle_after` seconds, or while
  `in_use()` says a reader relies on it (`idle_after` None: always). An idle process then sends nothing and
  keeps only the subscription; the first ask after a pause finds it not current (its last pong is old),
  the caller does what it does without the channel, and that ask sends a ping at once (its pong is the
  next proof) while the pings resume. A paused reader waits up to `paused_read_seconds` for a message
  before looking again: each timed read costs redis-py ~2 ms, so waking twice a second was 0.3 % of a core
  in every idle process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

__all__ = ["Announcements"]

log = logging.getLogger(__name__)


class Announcements:
    def __init__(
        self,
        redis: Redis,
        channel: str,
        *,
        on_message: Callable[[str], None],
        on_gap: Callable[[], None],
        ping_interval: float = 0.25,
        idle_after: float | None = None,
        in_use: Callable[[], bool] = lambda: False,
        retry_seconds: float = 0.5,
        paused_read_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._channel = channel
        self._on_message = on_message
        self._on_gap = on_gap
        self._ping_interval = ping_interval
        self._idle_after = idle_after
        self._in_use = in_use
        self._retry_seconds = retry_seconds
        self._paused_read_seconds = paused_read_seconds
        self._clock = clock
        # Send time of the newest ping whose pong arrived after the current subscription (None: none yet).
        self._synced_at: float | None = None
        self._asked_at = float("-inf")
        self._subscribed = False
        self._stopping = asyncio.Event()
        # The subscription being read, while there is one, and whether its reader waits paused.
        self._pubsub: Any = None
        self._paused = False
        self._waking: asyncio.Future[None] | None = None
        self._last_warning: float | None = None

    @property
    def synced_at(self) -> float | None:
        """The send time of the newest ping answered on the current subscription (None: none yet)."""
        return self._synced_at

    def current(self, max_staleness: float) -> bool:
        """Whether every announcement published up to `max_staleness` seconds ago has been read."""
        now = self._asked_at = self._clock()
        if self._paused:
            self._wake()
        return self._synced_at is not None and now - self._synced_at <= max_staleness

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    def _wake(self) -> None:
        """A ping on the subscription now: its pong ends the paused reader's wait (and proves the channel
        read up to now)."""
        if self._pubsub is None or self._waking is not None:
            return
        self._paused = False
        self._waking = asyncio.ensure_future(self._ping(self._pubsub))

    async def _ping(self, pubsub: Any) -> None:
        try:
            # A failure here is the reader's to see: its own read fails on the same connection.
            with contextlib.suppress(RedisError, OSError):
                await pubsub.ping(message=repr(self._clock()))
        finally:
            self._waking = None

    async def run(self) -> None:
        """Read until `stop`: subscribe, read announcements and pongs, ping, and start over after an error."""
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub()
            self._subscribed = False
            try:
                await pubsub.subscribe(self._channel)
                self._pubsub = pubsub
                await self._listen(pubsub)
            except (RedisError, OSError) as error:
                self._gap()
                self._warn(error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._retry_seconds)
            finally:
                self._pubsub, self._paused = None, False
                self._gap()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> None:
        next_ping = self._clock()
        while not self._stopping.is_set():
            now = self._clock()
            needed = self._needed(now)
            if now >= next_ping:
                if needed:
                    await pubsub.ping(message=repr(now))
                next_ping = now + self._ping_interval
            self._paused = not needed
            wait = next_ping - self._clock() if needed else self._paused_read_seconds
            message = await pubsub.get_message(timeout=max(0.0, wait))
            self._paused = False
            if message is not None:
                self._read(message)

    def _needed(self, now: float) -> bool:
        return self._idle_after is None or now - self._asked_at <= self._idle_after or self._in_use()

    def _read(self, message: dict[str, Any]) -> None:
        kind, data = message["type"], message["data"]
        if kind == "message":
            self._on_message(_text(data))
        elif kind == "subscribe":
            self._gap()
            self._subscribed = True
        elif kind == "pong" and self._subscribed:
            # Pings are sent after the subscription, so their pongs follow its confirmation.
            with contextlib.suppress(ValueError):
                self._synced_at = max(self._synced_at or float("-inf"), float(_text(data)))

    def _gap(self) -> None:
        self._synced_at = None
        self._subscribed = False
        self._on_gap()

    def _warn(self, error: BaseException) -> None:
        # Once a minute at most: while Redis is down every reconnect attempt fails.
        now = self._clock()
        if self._last_warning is None or now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning(
                "announcements unavailable; falling back to asking Redis",
                extra={"channel": self._channel, "error": str(error) or type(error).__name__},
            )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
