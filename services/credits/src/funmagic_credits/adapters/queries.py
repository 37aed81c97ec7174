"""Reads for the API: balances, transaction history and the raw ledger, newest first, keyset-paginated."""

from __future__ import annotations

from typing import Any

import psycopg

__all__ = ["balance_of", "ledger_page", "transactions_page"]


async def balance_of(conn: psycopg.AsyncConnection, user_id: str) -> dict[str, Any]:
    cursor = await conn.execute(
        "SELECT balance, reserved_balance, lifetime_earned, lifetime_spent FROM credits WHERE user_id = %s",
        (user_id,),
    )
    row = await cursor.fetchone()
    zero = {"balance": 0, "reserved_balance": 0, "lifetime_earned": 0, "lifetime_spent": 0}
    return {"user_id": user_id, **(row or zero)}


async def transactions_page(
    conn: psycopg.AsyncConnection, user_id: str, *, limit: int, before: int | None
) -> dict[str, Any]:
    cursor = await conn.execute(
        "SELECT position, type, amount, balance_after, reference_id, description, created_at "
        "FROM credit_transactions WHERE user_id = %s AND position < %s ORDER BY position DESC LIMIT %s",
        (user_id, before if before is not None else 2**62, limit + 1),
    )
    rows = await cursor.fetchall()
    items = [{**r, "id": str(r["position"]), "created_at": r["created_at"].isoformat()} for r in rows[:limit]]
    for item in items:
        del item["position"]
    return {"items": items, "next_cursor": str(rows[limit - 1]["position"]) if len(rows) > limit else None}


async def ledger_page(
    conn: psycopg.AsyncConnection, user_id: str, *, limit: int, before: int | None
) -> dict[str, Any]:
    cursor = await conn.execute(
        "SELECT position, event_id::text, version, event_type, data, occurred_at FROM ledger_events "
        "WHERE user_id = %s AND position < %s ORDER BY position DESC LIMIT %s",
        (user_id, before if before is not None else 2**62, limit + 1),
    )
    rows = await cursor.fetchall()
    items = [
        {
            "position": r["position"],
            "event_id": r["event_id"],
            "version": r["version"],
            "type": r["event_type"],
            "data": r["data"],
            "occurred_at": r["occurred_at"].isoformat(),
        }
        for r in rows[:limit]
    ]
    return {"items": items, "next_cursor": str(rows[limit - 1]["position"]) if len(rows) > limit else None}
