"""What identity keeps in Redis: revocation marks every gateway reads, and started OAuth flows."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from redis.asyncio import Redis

from funmagic_kit.auth import mark_session_revoked, mark_tokens_invalid_before

__all__ = ["RedisOAuthStates", "RedisRevocations", "RedisSignInGuard"]


class RedisRevocations:
    def __init__(self, redis: Redis, *, access_token_ttl_seconds: int) -> None:
        self._redis = redis
        # Kept a minute past the longest access token's life: after that the token is refused as expired.
        self._ttl = access_token_ttl_seconds + 60

    async def session_revoked(self, user_id: str, session_id: str) -> None:
        await mark_session_revoked(self._redis, user_id, session_id, self._ttl)

    async def tokens_invalid_before(self, user_id: str, moment: datetime) -> None:
        await mark_tokens_invalid_before(self._redis, user_id, moment.timestamp(), self._ttl)


class RedisSignInGuard:
    """At most `max_failures` wrong passwords per account per `window_seconds` (a fixed window)."""

    def __init__(self, redis: Redis, *, max_failures: int = 10, window_seconds: int = 900) -> None:
        self._redis = redis
        self._max_failures = max_failures
        self._window = window_seconds

    def _key(self, email: str) -> str:
        # Hashed: Redis never holds the address itself.
        return "signin-failures:{" + hashlib.sha256(email.encode()).hexdigest()[:32] + "}"

    async def retry_after(self, email: str) -> int | None:
        key = self._key(email)
        failures, ttl = await self._redis.pipeline(transaction=False).get(key).ttl(key).execute()
        if failures is not None and int(failures) >= self._max_failures:
            return max(1, int(ttl))
        return None

    async def failed(self, email: str) -> None:
        key = self._key(email)
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.incr(key).expire(key, self._window, nx=True).execute()

    async def succeeded(self, email: str) -> None:
        await self._redis.delete(self._key(email))


class RedisOAuthStates:
    def __init__(self, redis: Redis, *, prefix: str = "oauth:state:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def put(self, state: str, value: dict[str, str | None], ttl_seconds: int) -> None:
        await self._redis.set(self._prefix + state, json.dumps(value), ex=ttl_seconds)

    async def take(self, state: str) -> dict[str, str | None] | None:
        raw = await self._redis.getdel(self._prefix + state)  # single use, even with concurrent callbacks
        return json.loads(raw) if raw else None
