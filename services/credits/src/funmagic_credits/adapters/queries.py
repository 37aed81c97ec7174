"""Reads for the API: balances, transaction history and the raw ledger, newest first, keyset-paginated.

Straight from the projections and the event store, as the JSON the API answers with: a read applies no
rule, so no use case stands between the routes and these queries. A page's cursor is the position of its
last row (`before` the next page's first).
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

__all__ = ["CreditsReads"]

BALANCE = """
SELECT balance, reserved_balance, lifetime_earned, lifetime_spent FROM credits WHERE user_id = %s
"""
TRANSACTIONS = """
SELECT position, type, amount, balance_after, reference_id, description, created_at
FROM credit_transactions WHERE user_id = %s AND position < %s ORDER BY position DESC LIMIT %s
"""
# What the user ever bought: the amounts of their ledger's purchases (bonus credits of a package included).
LIFETIME_PURCHASED = """
SELECT coalesce(sum((data->>'amount')::bigint), 0) AS lifetime_purchased
FROM ledger_events WHERE user_id = %s AND event_type = 'Purchased'
"""
LEDGER = """
SELECT position, event_id::text, version, event_type, data, occurred_at
FROM ledger_events WHERE user_id = %s AND position < %s ORDER BY position DESC LIMIT %s
"""
# Before every position: the first page.
_FIRST = 2**62
_NO_CREDITS = {"balance": 0, "reserved_balance": 0, "lifetime_earned": 0, "lifetime_spent": 0}


class CreditsReads:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def balance(self, user_id: str) -> dict[str, Any]:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(BALANCE, (user_id,))).fetchone()
        return {"user_id": user_id, **(row or _NO_CREDITS)}

    async def purchases(self, user_id: str) -> dict[str, Any]:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(LIFETIME_PURCHASED, (user_id,))).fetchone()
        return {"user_id": user_id, "lifetime_purchased": int(row["lifetime_purchased"]) if row else 0}

    async def transactions(self, user_id: str, *, limit: int, before: int | None) -> dict[str, Any]:
        rows = await self._newest(TRANSACTIONS, user_id, limit=limit, before=before)
        items = [
            {
                "id": str(r["position"]),
                "type": r["type"],
                "amount": r["amount"],
                "balance_after": r["balance_after"],
                "reference_id": r["reference_id"],
                "description": r["description"],
                "created_at": r["created_at"].isoformat(),
            }
            for r in rows[:limit]
        ]
        return {"items": items, "next_cursor": _next_cursor(rows, limit)}

    async def ledger(self, user_id: str, *, limit: int, before: int | None) -> dict[str, Any]:
        rows = await self._newest(LEDGER, user_id, limit=limit, before=before)
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
        return {"items": items, "next_cursor": _next_cursor(rows, limit)}

    async def _newest(
        self, query: str, user_id: str, *, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, (user_id, _FIRST if before is None else before, limit + 1))
            return await cursor.fetchall()


def _next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    return str(rows[limit - 1]["position"]) if len(rows) > limit else None
