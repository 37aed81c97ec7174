"""The Redis client factory (redis-py asyncio)."""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["create_redis"]


async def create_redis(url: str) -> Redis:
    client = Redis.from_url(url, decode_responses=False, health_check_interval=30)
    await client.ping()
    return client
