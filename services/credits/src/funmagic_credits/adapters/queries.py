"""Reads for the API: balances, transaction history and the raw ledger, newest first, keyset-paginated;
and the admin overview's figures of a period, aggregated in SQL.

Straight from the projections and the event store, as the JSON the API answers with: a read applies no
rule, so no use case stands between the routes and these queries. A page's cursor is the position of its
last row (`before` the next page's first).
"""

from __future__ import annotations

from datetime import datetime
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
TRANSACTIONS_OF_TYPE = """
SELECT position, type, amount, balance_after, reference_id, description, created_at
FROM credit_transactions WHERE user_id = %s AND type = %s AND position < %s ORDER BY position DESC LIMIT %s
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
# The admin overview: the transactions of [since, until) totalled by type (`credit_transactions_time_idx`).
# A spend is what a task was charged; a refund the unused part of a hold given back (a hold itself is no
# transaction), so spends are already net of it.
PERIOD_TOTALS = """
SELECT coalesce(sum(amount) FILTER (WHERE type = 'purchase'), 0) AS credits_sold,
       count(*) FILTER (WHERE type = 'purchase') AS purchases,
       coalesce(-sum(amount) FILTER (WHERE type = 'spend'), 0) AS credits_spent,
       coalesce(sum(amount) FILTER (WHERE type = 'refund'), 0) AS credits_refunded,
       coalesce(sum(amount) FILTER (WHERE type = 'bonus'), 0) AS bonus_granted,
       coalesce(sum(amount) FILTER (WHERE type = 'admin_adjust'), 0) AS credits_adjusted
FROM credit_transactions WHERE created_at >= %(since)s AND created_at < %(until)s
"""
# What the period's purchases paid, per currency: the price is on the purchase's ledger event.
PERIOD_REVENUE = """
SELECT e.data->>'currency' AS currency, sum((e.data->>'price_minor')::bigint) AS amount_minor,
       count(*) AS purchases
FROM credit_transactions t JOIN ledger_events e ON e.position = t.position
WHERE t.type = 'purchase' AND t.created_at >= %(since)s AND t.created_at < %(until)s
GROUP BY 1 ORDER BY 1
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

    async def period(self, since: datetime, until: datetime) -> dict[str, Any]:
        """The credit figures of [since, until) (`CreditStats` but its window), of one snapshot."""
        params = {"since": since, "until": until}
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            totals = await (await conn.execute(PERIOD_TOTALS, params)).fetchone()
            revenue = await (await conn.execute(PERIOD_REVENUE, params)).fetchall()
        assert totals is not None  # an aggregate without GROUP BY always has its row
        return {
            **{name: int(value) for name, value in totals.items()},
            "revenue": [
                {
                    "currency": r["currency"],
                    "amount_minor": int(r["amount_minor"]),
                    "purchases": int(r["purchases"]),
                }
                for r in revenue
            ],
        }

    async def transactions(
        self, user_id: str, *, limit: int, before: int | None, type_: str | None = None
    ) -> dict[str, Any]:
        if type_ is None:
            rows = await self._newest(TRANSACTIONS, user_id, limit=limit, before=before)
        else:
            rows = await self._newest(TRANSACTIONS_OF_TYPE, user_id, type_, limit=limit, before=before)
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
        self, query: str, user_id: str, *filters: str, limit: int, before: int | None
    ) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                query, (user_id, *filters, _FIRST if before is None else before, limit + 1)
            )
            return await cursor.fetchall()


def _next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    return str(rows[limit - 1]["position"]) if len(rows) > limit else None
