"""A short in-process cache of public catalog answers (`GET /api/tools`, `/api/banners`, …).

Every visitor's home page asks for the same tools and banners; the tasks service need not be asked each
time. An entry lives `ttl_seconds`; the whole cache is emptied

- when an admin's change to the catalog goes through this gateway and succeeds (so the admin, and every
  visitor of this replica, sees it on the next read), and
- when the tasks service announces a change (`ToolChanged`, `ToolTypeChanged`, `BannerChanged`), which
  reaches one replica of the consumer group: the other replicas see the change within `ttl_seconds`.

Only successful answers are kept, as the bytes sent, so a hit costs no validation and no serialisation.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

__all__ = ["CachedReply", "ReplyCache"]


@dataclass(frozen=True)
class CachedReply:
    body: bytes
    content_type: str


class ReplyCache:
    def __init__(
        self,
        *,
        ttl_seconds: float = 5.0,
        max_entries: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        # key -> (expires at, reply), least recently stored first.
        self._entries: OrderedDict[Hashable, tuple[float, CachedReply]] = OrderedDict()
        # Bumped by every `clear`: an answer fetched across a clear is not kept (it may predate the change).
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def get(self, key: Hashable) -> CachedReply | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, reply = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return reply

    def put(self, key: Hashable, reply: CachedReply, *, fetched_in: int) -> None:
        """Keep `reply` unless the cache was cleared since it was fetched (generation `fetched_in`)."""
        if fetched_in != self._generation:
            return
        self._entries[key] = (self._clock() + self._ttl_seconds, reply)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
