"""The queue monitor's Postgres side: the dead-letter replays (one row per event id) with the original message
put back in the kit's outbox.

A replay is one transaction of the service's unit of work: `add` (INSERT … ON CONFLICT DO NOTHING on the
event id), and only when that inserted the row, `publish_again` (the outbox row) and the audit record
(`uow.record`, the kit's audit log). Two replays of one event at once: the second INSERT waits for the
first transaction, then finds the row and does nothing, so the event is published again exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from funmagic_kit.outbox import OutboxMessage, add_raw_to_outbox
from funmagic_kit.rows import from_row
from funmagic_providers.domain.queue import Replay, ReplayRecord

__all__ = ["DeadLetterReplayRecords"]

_ADD_REPLAY = """
INSERT INTO dead_letter_replays (event_id, dead_letter_topic, dead_letter_partition, dead_letter_offset,
                                 origin_topic, replayed_by, replayed_at)
VALUES (%(event_id)s, %(dead_letter_topic)s, %(partition)s, %(offset)s, %(origin_topic)s, %(replayed_by)s,
        %(replayed_at)s)
ON CONFLICT (event_id) DO NOTHING
RETURNING 1
"""
_REPLAYS_OF = """
SELECT event_id::text AS event_id, dead_letter_topic, dead_letter_partition AS partition,
       dead_letter_offset AS "offset", origin_topic, replayed_by, replayed_at
FROM dead_letter_replays WHERE event_id = ANY(%s::uuid[])
"""


class DeadLetterReplayRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add(self, replay: Replay, *, replayed_by: str, replayed_at: datetime) -> bool:
        cursor = await self._conn.execute(
            _ADD_REPLAY,
            {
                "event_id": replay.event_id,
                "dead_letter_topic": replay.dead_letter_topic,
                "partition": replay.partition,
                "offset": replay.offset,
                "origin_topic": replay.origin_topic,
                "replayed_by": replayed_by,
                "replayed_at": replayed_at,
            },
        )
        return await cursor.fetchone() is not None

    async def publish_again(self, replay: Replay) -> None:
        message = OutboxMessage(
            event_id=replay.event_id,
            topic=replay.origin_topic,
            key=replay.key,
            payload=replay.value,
            headers=replay.headers,
        )
        await add_raw_to_outbox(self._conn, [message])

    async def of_events(self, event_ids: Sequence[str]) -> dict[str, ReplayRecord]:
        if not event_ids:
            return {}
        cursor = await self._conn.execute(_REPLAYS_OF, (list(event_ids),))
        rows: list[dict[str, Any]] = await cursor.fetchall()
        return {row["event_id"]: from_row(ReplayRecord, row) for row in rows}
