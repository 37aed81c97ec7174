"""Which failures mean "a dependency is down, try again later".

One classification for every edge: the HTTP edge answers them 503 with Retry-After (never 500), and the
consumer retries them for as long as the outage lasts instead of dead-lettering the event. They come from
our `TransientError`, or straight from a driver when a call was made outside the adapters that translate
(a pool checkout, a raw query, a Redis command): a lost Postgres connection, a Redis that restarted, an
S3 or Kafka that does not answer, an S3 that refuses writes (a full disk).
"""

from __future__ import annotations

import psycopg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RequestTimedOutError
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as S3ConnectionError
from botocore.exceptions import ReadTimeoutError as S3ReadTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from funmagic_kit.errors import ConcurrencyConflict, TransientError

__all__ = ["is_outage", "is_transient"]

# Drivers' errors for "the server is not there or stopped answering". psycopg's OperationalError covers a
# connection that broke (AdminShutdown, "server closed the connection unexpectedly"), a refused connect
# and the pool's PoolTimeout; Redis' ConnectionError covers BusyLoadingError (a restarted Redis loading
# its snapshot); builtin ConnectionError covers resets and refusals from any socket.
_OUTAGES: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    RedisConnectionError,
    RedisTimeoutError,
    S3ConnectionError,
    S3ReadTimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    ConnectionError,
)


def is_outage(error: BaseException) -> bool:
    """A dependency is unavailable: retrying later helps, however long it takes. A write conflict is not
    one (`ConcurrencyConflict`: another writer won; a few retries settle it, endless ones hide a bug)."""
    if isinstance(error, ConcurrencyConflict):
        return False
    return isinstance(error, (TransientError, *_OUTAGES)) or _s3_server_error(error)


def _s3_server_error(error: BaseException) -> bool:
    """An S3 answer in the 5xx range: the store cannot do it now (SeaweedFS answers a write to a full,
    read-only bucket with 500 InternalError; S3 itself says 503 SlowDown, 507 InsufficientStorage)."""
    if not isinstance(error, ClientError):
        return False
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500


def is_transient(error: BaseException) -> bool:
    """Worth answering 503 with Retry-After: an outage, or a conflict a retry settles."""
    return isinstance(error, TransientError) or is_outage(error)
