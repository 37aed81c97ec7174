"""Helpers of storage's integration tests: the test clock, the fixture's bundle, the publish function."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_kit.outbox import add_to_outbox
from funmagic_kit.settings import S3Settings
from funmagic_storage.adapters.s3 import S3ObjectStore
from funmagic_storage.application.assets import AssetService, StoragePolicy

__all__ = ["Storage", "TestClock", "publish"]


class TestClock:
    """The system clock, shifted by whatever a test advanced it by; `freeze` stops it."""

    __test__ = False

    def __init__(self) -> None:
        self.offset = timedelta()
        self.frozen: datetime | None = None

    def now(self) -> datetime:
        return self.frozen if self.frozen is not None else datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        if self.frozen is not None:
            self.frozen += delta
        else:
            self.offset += delta

    def freeze(self) -> None:
        self.frozen = self.now()


@dataclass
class Storage:
    """What a test needs: the service, its parts, and fresh user ids (whose objects are removed later)."""

    assets: AssetService
    policy: StoragePolicy
    objects: S3ObjectStore
    s3: Any  # the connecting aiobotocore client
    presigner: Any  # the signing one
    pool: AsyncConnectionPool
    clock: TestClock
    settings: S3Settings
    build: Callable[..., AssetService]
    users: list[str] = field(default_factory=list)

    def new_user(self) -> str:
        user_id = str(uuid.uuid4())
        self.users.append(user_id)
        return user_id

    async def outbox(self) -> list[Envelope]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT payload FROM outbox ORDER BY id")
            rows = await cursor.fetchall()
        return [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]


async def publish(conn: psycopg.AsyncConnection, events: Sequence[IntegrationEvent]) -> None:
    """As bootstrap publishes: each event in an envelope, in the caller's transaction, to the outbox."""
    await add_to_outbox(conn, [(e.TOPIC, Envelope.wrap(e)) for e in events])
