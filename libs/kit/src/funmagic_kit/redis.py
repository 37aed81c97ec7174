"""The Redis client factory (redis-py asyncio), and what it does when Redis restarts.

Pooled connections die with a Redis that restarts; the first command on each then fails with a connection
error. Our client then closes the pool's idle connections (they died too; the next commands connect
afresh) and sends a command that is safe to send twice — a read, or a write whose second run changes
nothing — once more, on a fresh connection. Anything else (INCR, a Lua script that takes a rate-limit
slot, XADD) is not retried: the first try may have run before the connection broke. What still fails
reaches the HTTP edge as a 503 (`funmagic_kit.outages`).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["SAFE_TO_RETRY", "PlatformRedis", "create_redis", "safe_to_retry"]

log = logging.getLogger(__name__)

# Connections one process may open. The default pool of redis-py raises "Too many connections" at its
# limit instead of waiting; a blocking pool makes a burst wait its turn (up to `POOL_WAIT_SECONDS`).
MAX_CONNECTIONS = 256
POOL_WAIT_SECONDS = 5.0
# A Redis that does not answer a connect within this is down: fail (503) rather than hang the request.
CONNECT_TIMEOUT_SECONDS = 2.0

# Commands that may run twice with the outcome of once: reads, and writes that set rather than add.
SAFE_TO_RETRY = frozenset(
    {
        # reads
        "PING", "GET", "MGET", "EXISTS", "TTL", "PTTL", "TYPE", "STRLEN", "GETRANGE", "SCAN", "KEYS",
        "HGET", "HMGET", "HGETALL", "HEXISTS", "HKEYS", "HVALS", "HLEN", "HSCAN",
        "SMEMBERS", "SISMEMBER", "SMISMEMBER", "SCARD", "SSCAN",
        "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZSCORE", "ZMSCORE", "ZCARD", "ZCOUNT",
        "ZRANK", "ZREVRANK", "ZSCAN", "LRANGE", "LLEN", "LINDEX",
        "XRANGE", "XREVRANGE", "XLEN", "XREAD", "XINFO", "PFCOUNT", "EVALSHA_RO", "EVAL_RO",
        # idempotent writes
        "SET", "SETEX", "PSETEX", "MSET", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT",
        "PERSIST", "HSET", "HMSET", "HDEL", "SADD", "SREM", "ZREM", "ZREMRANGEBYSCORE", "XTRIM",
    }
)  # fmt: skip
# Options that make an otherwise idempotent write depend on what was there before.
_CONDITIONAL = frozenset({"NX", "XX", "GT", "LT", "GET", "KEEPTTL", "INCR"})


def safe_to_retry(args: tuple[Any, ...]) -> bool:
    """Whether the command `args` (name first) can be sent again after a connection error."""
    name = str(args[0]).upper()
    if name not in SAFE_TO_RETRY:
        return False
    if name == "SET":
        # SET k v NX/XX/GET: a second run sees the first one's write and answers differently.
        return not any(isinstance(a, str | bytes) and _option(a) in _CONDITIONAL for a in args[3:])
    return True


def _option(arg: str | bytes) -> str:
    return (arg.decode(errors="replace") if isinstance(arg, bytes) else arg).upper()


class PlatformRedis(Redis):
    """A redis-py client that sends a safe command once more after a connection error (see the module)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)
        except (RedisConnectionError, RedisTimeoutError) as error:
            # The idle connections most likely died with this one (a restarted server): close them so
            # that the next commands connect afresh instead of failing one by one.
            await self.connection_pool.disconnect(inuse_connections=False)
            if not safe_to_retry(args):
                raise
            log.info(
                "redis connection lost; retrying once", extra={"command": str(args[0]), "error": repr(error)}
            )
            return await super().execute_command(*args, **options)


async def create_redis(url: str, *, max_connections: int = MAX_CONNECTIONS) -> PlatformRedis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        # A connection idle this long is PINGed before use: a server that restarted meanwhile is noticed
        # there rather than by the command.
        health_check_interval=30,
    )
    client = PlatformRedis.from_pool(pool)  # the client owns the pool: closing it closes the connections
    await client.ping()
    return client
