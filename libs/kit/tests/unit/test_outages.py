"""Which failures are outages (503 at the edge, retried without limit by a consumer) and which are not."""

from __future__ import annotations

import psycopg
import pytest
from aiokafka.errors import KafkaConnectionError
from botocore.exceptions import ClientError, EndpointConnectionError
from psycopg_pool import PoolTimeout
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError

from funmagic_kit.errors import ConcurrencyConflict, PermanentError, TransientError
from funmagic_kit.outages import is_outage, is_transient


def _s3_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    "error",
    [
        TransientError("storage is not reachable"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        PoolTimeout("couldn't get a connection after 5.00 sec"),
        RedisConnectionError("Connection reset by peer"),
        BusyLoadingError("Redis is loading the dataset in memory"),
        ConnectionResetError(104, "Connection reset by peer"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:8333/funmagic-private"),
        KafkaConnectionError("no broker"),
        _s3_error("InternalError", 500),  # SeaweedFS' answer to a write into a full (read-only) bucket
        _s3_error("InsufficientStorage", 507),
    ],
)
def test_a_dependency_that_is_down_is_an_outage(error: Exception) -> None:
    assert is_outage(error)
    assert is_transient(error)


def test_a_write_conflict_is_transient_but_not_an_outage() -> None:
    conflict = ConcurrencyConflict("duplicate key")
    assert is_transient(conflict)
    assert not is_outage(conflict)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("a bug"),
        PermanentError("bad event"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.UndefinedColumn("column does not exist"),
        ValueError("not a number"),
        _s3_error("NoSuchKey", 404),
    ],
)
def test_a_bug_or_a_refusal_is_neither(error: Exception) -> None:
    assert not is_outage(error)
    assert not is_transient(error)
