"""Whether a session was revoked: asked of Redis on every request, or answered from a local view.

Identity records a revocation in Redis (`auth.mark_session_revoked`, `auth.mark_tokens_invalid_before`)
and announces the user's id on `REVOCATIONS_CHANNEL` in the same transaction. `RedisRevocations` reads the
two keys of a session with one MGET per request. `RevocationView` (the gateway's) keeps what MGET said per
session and answers from memory while it is provably current:

- it is subscribed to the channel, and drops a user's entries as soon as their id arrives;
- it pings on the subscription every `ping_interval` with the send time as the payload; a pong proves that
  every announcement published before that time has been read (one connection delivers in order), so the
  view is current while the newest pong's send time is at most `max_staleness` old (identity promises a
  revocation is seen within a second);
- a (re)subscription confirmation empties the view: announcements may have been lost while the
  connection was down, and redis-py reconnects and resubscribes by itself;
- an answer read while an announcement or a resubscription arrived is used but not kept.

When the view is not current (Redis slow or down, the subscription lost), every check goes to Redis again:
fail closed, never a stale "not revoked"; with Redis unreachable that is a 503, as without the view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from funmagic_kit.errors import TransientError

__all__ = [
    "REVOCATIONS_CHANNEL",
    "RedisRevocations",
    "RevocationCheck",
    "RevocationView",
    "SessionRevocation",
    "revocation_keys",
]

log = logging.getLogger(__name__)

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
        ping_interval: float = 0.25,
        retry_seconds: float = 0.5,
        max_users: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._source = RedisRevocations(redis)
        self._channel = channel
        self._max_staleness = max_staleness
        self._ping_interval = ping_interval
        self._retry_seconds = retry_seconds
        self._max_users = max_users
        self._clock = clock
        # user id -> session id -> state; users in least-recently-used order.
        self._users: OrderedDict[str, dict[str, SessionRevocation]] = OrderedDict()
        # Bumped by every announcement and every (re)subscription: an answer read across a bump is not kept.
        self._version = 0
        # Send time of the newest ping whose pong arrived after the current subscription (None: none yet).
        self._synced_at: float | None = None
        self._subscribed = False
        self._stopping = asyncio.Event()
        self._last_warning: float | None = None

    @property
    def current(self) -> bool:
        return self._synced_at is not None and self._clock() - self._synced_at <= self._max_staleness

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

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Keep the view current until `stop`: subscribe, read announcements and pongs, ping, and start
        over after a connection error."""
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub()
            self._subscribed = False
            try:
                await pubsub.subscribe(self._channel)
                await self._listen(pubsub)
            except (RedisError, OSError) as error:
                self._forget_all()
                self._warn(error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._retry_seconds)
            finally:
                self._forget_all()
                self._subscribed = False
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> None:
        next_ping = self._clock()
        while not self._stopping.is_set():
            now = self._clock()
            if now >= next_ping:
                await pubsub.ping(message=repr(now))
                next_ping = now + self._ping_interval
            message = await pubsub.get_message(timeout=max(0.0, next_ping - self._clock()))
            if message is not None:
                self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind, data = message["type"], message["data"]
        if kind == "message":
            self._version += 1
            self._users.pop(_text(data), None)
        elif kind == "subscribe":
            # Announcements may have been lost before this subscription (redis-py resubscribes by itself
            # after a reconnect): nothing known before it counts.
            self._forget_all()
            self._subscribed = True
        elif kind == "pong" and self._subscribed:
            # Pings are sent after the subscription, so their pongs follow its confirmation.
            with contextlib.suppress(ValueError):
                self._synced_at = max(self._synced_at or float("-inf"), float(_text(data)))

    def _forget_all(self) -> None:
        self._version += 1
        self._users.clear()
        self._synced_at = None

    def _remember(self, user_id: str, session_id: str, state: SessionRevocation) -> None:
        self._users.setdefault(user_id, {})[session_id] = state
        self._users.move_to_end(user_id)
        if len(self._users) > self._max_users:
            self._users.popitem(last=False)

    def _warn(self, error: BaseException) -> None:
        # Once a minute at most: while Redis is down every reconnect attempt fails.
        now = self._clock()
        if self._last_warning is None or now - self._last_warning >= 60.0:
            self._last_warning = now
            log.warning(
                "revocation announcements unavailable; checking Redis on every request",
                extra={"error": str(error) or type(error).__name__},
            )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
