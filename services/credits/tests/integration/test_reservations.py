"""Reservations against one account under heavy concurrency: never below zero, never twice."""

from __future__ import annotations

import asyncio
import uuid

from credits_test_support import credits_service
from psycopg_pool import AsyncConnectionPool

from funmagic_credits.domain.ledger import GrantCredits, ReserveCredits, SettleReservation


async def _run(pool: AsyncConnectionPool, command) -> list:
    return await credits_service(pool).ledger.apply(command)


async def _scalar(pool: AsyncConnectionPool, sql: str, *params: object) -> object:
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
        return next(iter(row.values()))


async def test_200_concurrent_reservations_against_a_balance_for_50_hold_exactly_50(pool) -> None:
    user = str(uuid.uuid4())
    await _run(pool, GrantCredits(user, 50, "promotion", "start"))

    results = await asyncio.gather(*(_run(pool, ReserveCredits(user, f"task-{i}", 1)) for i in range(200)))

    kinds = [type(stored[0].event).__name__ for stored in results]
    assert kinds.count("Reserved") == 50
    assert kinds.count("ReservationRejected") == 150
    assert await _scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 0
    assert await _scalar(pool, "SELECT reserved_balance FROM credits WHERE user_id = %s", user) == 50
    assert await _scalar(pool, "SELECT count(*) FROM outbox") == 1 + 200, "one published event per decision"


async def test_the_same_task_reserves_once_however_often_it_is_requested(pool) -> None:
    user = str(uuid.uuid4())
    await _run(pool, GrantCredits(user, 100, "promotion", "start"))

    results = await asyncio.gather(*(_run(pool, ReserveCredits(user, "task-1", 30)) for _ in range(3)))

    assert sorted(len(r) for r in results) == [0, 0, 1]
    assert await _scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 70


async def test_a_partly_used_reservation_spends_what_was_used_and_releases_the_rest(pool) -> None:
    user = str(uuid.uuid4())
    await _run(pool, GrantCredits(user, 100, "promotion", "start"))
    await _run(pool, ReserveCredits(user, "task-1", 30))

    settled = await _run(pool, SettleReservation(user, "task-1", 10, "failed"))
    again = await _run(pool, SettleReservation(user, "task-1", 30, "completed"))

    assert [type(s.event).__name__ for s in settled] == ["Spent", "Released"]
    assert again == [], "a reservation is settled at most once"
    assert await _scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 90
    assert await _scalar(pool, "SELECT lifetime_spent FROM credits WHERE user_id = %s", user) == 10
