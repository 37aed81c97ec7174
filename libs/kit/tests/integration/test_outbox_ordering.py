"""Per-key order survives the whole path: outbox → relay → Kafka (several partitions) → consumer."""

import asyncio

import pytest

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.outbox import add_to_outbox

from .conftest import make_envelope, running_consumer, running_relay, scalar, typed_subscription, wait_for

KEYS = [f"aggregate-{n}" for n in range(10)]
EVENTS_PER_KEY = 100
WRITERS = 5


async def record_arrival(event, envelope, uow) -> None:
    await uow.conn.execute(
        "INSERT INTO received (key, seq) VALUES (%s, %s)", (envelope.subject, envelope.data["seq"])
    )


async def write_events_for(pool, topic: str, keys: list[str]) -> None:
    """One writer per group of aggregates, several events per transaction, interleaving its keys."""
    for start in range(0, EVENTS_PER_KEY, 10):
        async with PostgresUnitOfWork(pool) as uow:
            await add_to_outbox(
                uow.conn,
                [
                    (topic, make_envelope("Sequenced", key, {"seq": seq}))
                    for seq in range(start, start + 10)
                    for key in keys
                ],
            )


@pytest.mark.parametrize("workers", [1, 3])
async def test_a_thousand_events_over_ten_keys_arrive_in_per_key_order(
    stack, database_url, pool, producer, topic, workers
):
    subscription = typed_subscription(topic, {"Sequenced": record_arrival})
    # page_size 97 is not a divisor of anything above, so pages split transactions.
    async with (
        running_relay(database_url, pool, producer, page_size=97),
        running_consumer(stack, pool, producer, subscription, concurrency=workers),
    ):
        groups = [KEYS[i::WRITERS] for i in range(WRITERS)]
        await asyncio.gather(*(write_events_for(pool, topic, group) for group in groups))
        await wait_for(
            lambda: _received(pool, len(KEYS) * EVENTS_PER_KEY), timeout=60, what="all 1,000 events"
        )

    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT key, seq FROM received ORDER BY id")
        rows = await cursor.fetchall()
    arrivals: dict[str, list[int]] = {}
    for row in rows:
        arrivals.setdefault(row["key"], []).append(row["seq"])
    assert sorted(arrivals) == sorted(KEYS)
    for key, seqs in arrivals.items():
        assert seqs == list(range(EVENTS_PER_KEY)), f"{key} arrived out of order or incomplete"
    partitions = await scalar(pool, "SELECT count(DISTINCT kafka_partition) FROM processed_events")
    assert partitions >= 3, "the keys should spread over several partitions"


async def _received(pool, expected: int) -> bool:
    return await scalar(pool, "SELECT count(*) FROM received") >= expected
