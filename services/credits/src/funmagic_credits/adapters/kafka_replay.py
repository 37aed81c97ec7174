"""The second rebuild path: read `credits.events` from offset 0 to its end, as another team would."""

from __future__ import annotations

from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer

from funmagic_contracts.topics import CREDITS_EVENTS
from funmagic_credits.adapters.rebuild import balances_from_published

__all__ = ["compare_with_topic", "read_topic_from_start"]


async def read_topic_from_start(bootstrap_servers: str, topic: str = CREDITS_EVENTS.name) -> list[bytes]:
    """Every record now in the topic, in per-partition order (a user's events share a partition)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = consumer.assignment()
        ends = await consumer.end_offsets(list(partitions))
        values: list[bytes] = []
        remaining = {p for p, end in ends.items() if end > 0}
        await consumer.seek_to_beginning(*partitions)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=10_000)
            for partition, records in batches.items():
                values += [r.value for r in records if r.offset < ends[partition]]
                if records and records[-1].offset >= ends[partition] - 1:
                    remaining.discard(partition)
        return values
    finally:
        await consumer.stop()


async def compare_with_topic(
    conn: psycopg.AsyncConnection, bootstrap_servers: str, topic: str = CREDITS_EVENTS.name
) -> tuple[list[tuple[str, Any, Any]], int]:
    """`topic` is the name on the cluster (with the deployment's prefix, if it has one)."""
    values = await read_topic_from_start(bootstrap_servers, topic)
    published = balances_from_published(iter(values))
    cursor = await conn.execute("SELECT user_id, balance, reserved_balance FROM credits")
    live = {
        row["user_id"]: {"balance": row["balance"], "reserved_balance": row["reserved_balance"]}
        for row in await cursor.fetchall()
    }
    differences = [
        (user_id, live.get(user_id), published.get(user_id))
        for user_id in sorted(set(live) | set(published))
        if live.get(user_id, {"balance": 0, "reserved_balance": 0})
        != published.get(user_id, {"balance": 0, "reserved_balance": 0})
    ]
    return differences, len(values)
