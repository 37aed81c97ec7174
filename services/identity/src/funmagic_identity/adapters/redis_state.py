"""What identity keeps in Redis: revocation marks every gateway reads, and started OAuth flows."""

from __future__ import annotations

import json
from datetime import datetime

from redis.asyncio import Redis

from funmagic_kit.auth import mark_session_revoked, mark_tokens_invalid_before

__all__ = ["RedisOAuthStates", "RedisRevocations"]


class RedisRevocations:
    def __init__(self, redis: Redis, *, access_token_ttl_seconds: int) -> None:
        self._redis = redis
        # Kept a minute past the longest access token's life: after that the token is refused as expired.
        self._ttl = access_token_ttl_seconds + 60

    async def session_revoked(self, user_id: str, session_id: str) -> None:
        await mark_session_revoked(self._redis, user_id, session_id, self._ttl)

    async def tokens_invalid_before(self, user_id: str, moment: datetime) -> None:
        await mark_tokens_invalid_before(self._redis, user_id, moment.timestamp(), self._ttl)


class RedisOAuthStates:
    def __init__(self, redis: Redis, *, prefix: str = "oauth:state:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def put(self, state: str, value: dict[str, str | None], ttl_seconds: int) -> None:
        await self._redis.set(self._prefix + state, json.dumps(value), ex=ttl_seconds)

    async def take(self, state: str) -> dict[str, str | None] | None:
        raw = await self._redis.getdel(self._prefix + state)  # single use, even with concurrent callbacks
        return json.loads(raw) if raw else None
