"""Whether a session was revoked: asked of Redis on every request, or answered from a local view.

Identity records a revocation in Redis (`auth.mark_session_revoked`, `auth.mark_tokens_invalid_before`)
and announces the user's id on `REVOCATIONS_CHANNEL` in the same transaction. `RedisRevocations` reads the
two keys of a session with one MGET per request. `RevocationView` (the gateway's) keeps what MGET said per
session and answers from memory while it is provably current:

- it is subscribed to the channel (`funmagic_kit.announcements`), and drops a user's entries as soon as
  their id arrives;
- it is current while it has provably read every announcement published up to `max_staleness` ago
  (identity promises a revocation is seen within a second);
- every gap (a (re)subscription, a lost connection) empties it: announcements may have been lost;
- it pings (proves itself current) only while checks come: after `idle_after` seconds without one it stops,
  and the first check after the pause goes to Redis while the pings resume;
- an answer read while an announcement or a gap arrived is used but not kept.

When the view is not current (Redis slow or down, the subscription lost), every check goes to Redis again:
fail closed, never a stale "not revoked"; with Redis unreachable that is a 503, as without the view.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from funmagic_kit.announcements import Announcements
from funmagic_kit.errors import TransientError

__all__ = [
    "REVOCATIONS_CHANNEL",
    "RedisRevocations",
    "RevocationCheck",
    "RevocationView",
    "SessionRevocation",
    "revocation_keys",
]


REVOCATIONS_CHANNEL = "auth:revocations"


def revocation_keys(user_id: str, session_id: str) -> tuple[str, str]:
    """Redis keys: (this session revoked, the user's tokens invalid before). One hash tag: one slot."""
    return f"auth:{{{user_id}}}:revoked:{session_id}", f"auth:{{{user_id}}}:valid-after"


@dataclass(frozen=True)
class SessionRevocation:
    """What Redis says of one session: revoked outright, and the moment before which its user's tokens
    are invalid (None: no such moment)."""

    revoked: bool
    valid_after: float | None


class RevocationCheck(Protocol):
    async def session(self, user_id: str, session_id: str) -> SessionRevocation: ...


class RedisRevocations:
    """One MGET per check."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def session(self, user_id: str, session_id: str) -> SessionRevocation:
        try:
            revoked, valid_after = await self._redis.mget(*revocation_keys(user_id, session_id))
        except Exception as error:
            # Fail closed: without Redis we cannot know whether the session was revoked.
            raise TransientError("cannot check the session's revocation") from error
        return SessionRevocation(revoked is not None, None if valid_after is None else float(valid_after))


class RevocationView:
    """Sessions' revocation state kept in memory, current through the announcements (see the module)."""

    def __init__(
        self,
        redis: Redis,
        *,
        channel: str = REVOCATIONS_CHANNEL,
        max_staleness: float = 1.0,
        ping_interval: float = 0.5,
        idle_after: float | None = 5.0,
        retry_seconds: float = 0.5,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = RedisRevocations(redis)
        self._max_staleness = max_staleness
        self._max_users = max_users
        self._announcements = Announcements(
            redis,
            channel,
            on_message=self._revoked,
            on_gap=self._forget_all,
            ping_interval=ping_interval,
            idle_after=idle_after,
            retry_seconds=retry_seconds,
            clock=clock,
        )
        # user id -> session id -> state; users in least-recently-used order.
        self._users: OrderedDict[str, dict[str, SessionRevocation]] = OrderedDict()
        # Bumped by every announcement and every gap: an answer read across a bump is not kept.
        self._version = 0

    @property
    def current(self) -> bool:
        return self._announcements.current(self._max_staleness)

    async def session(self, user_id: str, session_id: str) -> SessionRevocation:
        if self.current:
            known = self._users.get(user_id, {}).get(session_id)
            if known is not None:
                self._users.move_to_end(user_id)
                return known
        version = self._version
        state = await self._source.session(user_id, session_id)
        if self.current and version == self._version:
            self._remember(user_id, session_id, state)
        return state

    async def run(self) -> None:
        await self._announcements.run()

    def stop(self) -> None:
        self._announcements.stop()

    def _revoked(self, user_id: str) -> None:
        self._version += 1
        self._users.pop(user_id, None)

    def _forget_all(self) -> None:
        self._version += 1
        self._users.clear()

    def _remember(self, user_id: str, session_id: str, state: SessionRevocation) -> None:
        self._users.setdefault(user_id, {})[session_id] = state
        self._users.move_to_end(user_id)
        if len(self._users) > self._max_users:
            self._users.popitem(last=False)
