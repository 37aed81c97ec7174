"""The operator's view of the ledger: rebuild the projections, verify them, compare them with what was
published. Each runs on a connection of its own from the service's pool."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.topics import CREDITS_EVENTS
from funmagic_credits.adapters.kafka_replay import compare_with_topic
from funmagic_credits.adapters.rebuild import (
    Difference,
    Progress,
    Replay,
    rebuild_projections,
    verify_projections,
)
from funmagic_kit.kafka import KafkaNames

__all__ = ["LedgerMaintenance"]


class LedgerMaintenance:
    def __init__(
        self, pool: AsyncConnectionPool, kafka_bootstrap_servers: str, names: KafkaNames | None = None
    ) -> None:
        self._pool = pool
        self._kafka_bootstrap_servers = kafka_bootstrap_servers
        self._names = names or KafkaNames()

    async def rebuild(self, *, progress: Progress | None = None) -> Replay:
        """Replaces both projections with a replay of the event store, in one transaction."""
        async with self._pool.connection() as conn, conn.transaction():
            return await rebuild_projections(conn, progress=progress)

    async def verify(self, *, progress: Progress | None = None) -> list[Difference]:
        """Every difference between the live projections and a replay; changes nothing."""
        async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            # One snapshot for the replay and the comparison.
            await cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return await verify_projections(conn, progress=progress)

    async def compare_with_topic(self) -> tuple[list[tuple[str, Any, Any]], int]:
        """The balances `credits.events` folds into that differ from the live ones, and how many events
        were folded."""
        async with self._pool.connection() as conn:
            return await compare_with_topic(
                conn, self._kafka_bootstrap_servers, self._names.topic(CREDITS_EVENTS.name)
            )
