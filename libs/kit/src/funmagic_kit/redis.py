"""The Redis client factory (redis-py asyncio)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

__all__ = ["create_redis"]

# Connections one process may open. The default pool of redis-py raises "Too many connections" at its
# limit instead of waiting; a blocking pool makes a burst wait its turn (up to `POOL_WAIT_SECONDS`).
MAX_CONNECTIONS = 256
POOL_WAIT_SECONDS = 5.0


async def create_redis(url: str, *, max_connections: int = MAX_CONNECTIONS) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, health_check_interval=30
    )
    client = Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections
    await client.ping()
    return client
