"""The second rebuild path: what credits published on the real `credits.events`, folded from offset 0 as
another team would, gives the balances of the `credits` table.

`credits.events` is shared with other tests and services, so assertions are restricted to this test's
users (their ids are fresh UUIDs).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

import pytest
from credits_test_support import every_kind_of_activity, random_activity, rows, scalar
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import decode
from funmagic_contracts.topics import CREDITS_EVENTS
from funmagic_credits.adapters.kafka_replay import compare_with_topic, read_topic_from_start
from funmagic_credits.adapters.rebuild import balances_from_published
from funmagic_kit.kafka import create_topics
from funmagic_kit.metrics import Metrics
from funmagic_kit.outbox import OutboxRelay


async def publish_outbox(database_url: str, pool: AsyncConnectionPool, producer: Any) -> int:
    """What the service's relay does in the background, run to completion."""
    relay = OutboxRelay(dsn=database_url, pool=pool, producer=producer, metrics=Metrics("credits-tests"))
    published = await relay.publish_all()
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 0, "the outbox is empty once relayed"
    return published


async def live_balances(pool: AsyncConnectionPool) -> dict[str, dict[str, int]]:
    return {
        r["user_id"]: {"balance": r["balance"], "reserved_balance": r["reserved_balance"]}
        for r in await rows(pool, "SELECT user_id, balance, reserved_balance FROM credits")
    }


@pytest.fixture
async def credits_topic(kafka: str) -> str:
    # The stack creates it; make sure it exists (with its real settings) when this test runs first.
    await create_topics(kafka, [CREDITS_EVENTS.name], config=CREDITS_EVENTS.kafka_config())
    return CREDITS_EVENTS.name


async def test_the_published_ledger_folds_into_the_live_balances(
    kafka, database_url, pool, producer, credits_topic
) -> None:
    users = [str(uuid.uuid4()) for _ in range(4)]
    for user in users[:2]:
        await every_kind_of_activity(pool, user)
    await random_activity(pool, users, seed=21, steps=200)
    # The ledger's own bookkeeping (ReservationClosed: a task ended with nothing held) moves no credits and
    # is not published; every other ledger event is.
    ledger = await rows(
        pool,
        "SELECT event_id, user_id FROM ledger_events WHERE event_type <> 'ReservationClosed'"
        " ORDER BY user_id, version",
    )

    published = await publish_outbox(database_url, pool, producer)

    assert published == len(ledger)
    values = await read_topic_from_start(kafka, credits_topic)
    ours = [value for value in values if decode(value).subject in users]
    # Every ledger event exactly once, and each user's in the order of its stream.
    in_topic: dict[str, list[uuid.UUID]] = defaultdict(list)
    for value in ours:
        envelope = decode(value)
        in_topic[envelope.subject].append(envelope.id)
    in_ledger: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row in ledger:
        in_ledger[row["user_id"]].append(row["event_id"])
    assert in_topic == in_ledger

    live = await live_balances(pool)
    assert set(live) == set(users)
    assert balances_from_published(iter(ours)) == live

    async with pool.connection() as conn:
        differences, folded = await compare_with_topic(conn, kafka)
    assert folded >= len(ours)
    assert [d for d in differences if d[0] in users] == []


async def test_the_topic_comparison_finds_a_balance_the_topic_does_not_explain(
    kafka, database_url, pool, producer, credits_topic
) -> None:
    user = str(uuid.uuid4())
    await every_kind_of_activity(pool, user)
    await publish_outbox(database_url, pool, producer)
    async with pool.connection() as conn:
        await conn.execute("UPDATE credits SET balance = balance + 3 WHERE user_id = %s", (user,))

    async with pool.connection() as conn:
        differences, _ = await compare_with_topic(conn, kafka)

    assert [d for d in differences if d[0] == user] == [
        (user, {"balance": 78, "reserved_balance": 25}, {"balance": 75, "reserved_balance": 25})
    ]
