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

from funmagic_kit.db import PostgresUnitOfWork

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
# A user's transactions in groups: the entries of one root task (its spends and refunds, and its child
# tasks') together, every other entry alone. A group's place is its newest entry; pages go by groups.
_GROUPED = """
WITH entries AS (
    SELECT t.position, t.type, t.amount, t.balance_after, t.reference_id, t.description, t.created_at,
           CASE WHEN t.type IN ('spend', 'refund') AND t.reference_id IS NOT NULL
                THEN 'task:' || coalesce(r.root_task_id, t.reference_id)
                ELSE 'entry:' || t.position END AS group_key,
           CASE WHEN t.type IN ('spend', 'refund') THEN coalesce(r.root_task_id, t.reference_id) END
               AS root_task_id
    FROM credit_transactions t LEFT JOIN task_roots r ON r.task_id = t.reference_id
    WHERE t.user_id = %(user_id)s
)
"""
TRANSACTION_GROUPS = (
    _GROUPED
    + """
SELECT group_key, max(root_task_id) AS root_task_id, max(position) AS newest
FROM entries GROUP BY group_key HAVING max(position) < %(before)s ORDER BY newest DESC LIMIT %(limit)s
"""
)
ENTRIES_OF_GROUPS = (
    _GROUPED
    + """
SELECT e.*, root.tool_slug AS root_tool_slug
FROM entries e LEFT JOIN task_roots root ON root.task_id = e.root_task_id
WHERE e.group_key = ANY(%(groups)s) ORDER BY e.position DESC
"""
)
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
        async with PostgresUnitOfWork(self._pool).reading() as uow:
            row = await (await uow.conn.execute(BALANCE, (user_id,))).fetchone()
        return {"user_id": user_id, **(row or _NO_CREDITS)}

    async def purchases(self, user_id: str) -> dict[str, Any]:
        async with PostgresUnitOfWork(self._pool).reading() as uow:
            row = await (await uow.conn.execute(LIFETIME_PURCHASED, (user_id,))).fetchone()
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
        items = [_transaction_view(r) for r in rows[:limit]]
        return {"items": items, "next_cursor": _next_cursor(rows, limit)}

    async def transaction_groups(self, user_id: str, *, limit: int, before: int | None) -> dict[str, Any]:
        """The user's transactions grouped by root task (`TRANSACTION_GROUPS`), newest group first."""
        params = {"user_id": user_id, "before": _FIRST if before is None else before, "limit": limit + 1}
        async with self._pool.connection() as conn, conn.transaction():
            # One snapshot for both reads: an entry written between them cannot join a group half-read.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            groups = await (await conn.execute(TRANSACTION_GROUPS, params)).fetchall()
            keys = [g["group_key"] for g in groups[:limit]]
            rows = await (
                await conn.execute(ENTRIES_OF_GROUPS, {"user_id": user_id, "groups": keys})
            ).fetchall()
        by_group: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
        for row in rows:
            by_group[row["group_key"]].append(row)
        items = [_group_view(groups[i], by_group[key]) for i, key in enumerate(keys)]
        next_cursor = str(groups[limit - 1]["newest"]) if len(groups) > limit else None
        return {"items": items, "next_cursor": next_cursor}

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
        async with PostgresUnitOfWork(self._pool).reading() as uow:
            cursor = await uow.conn.execute(
                query, (user_id, *filters, _FIRST if before is None else before, limit + 1)
            )
            return await cursor.fetchall()


def _group_view(group: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [_transaction_view(r) for r in rows]
    return {
        "root_task_id": group["root_task_id"],
        "tool_slug": rows[0]["root_tool_slug"] if rows and group["root_task_id"] else None,
        # What the group changed the balance by. A refund gives back the unused part of a hold, and the hold
        # is no entry (see PERIOD_TOTALS): the charges alone are what the tasks cost.
        "net_amount": sum(r["amount"] for r in rows if r["type"] != "refund"),
        "first_at": rows[-1]["created_at"].isoformat(),
        "last_at": rows[0]["created_at"].isoformat(),
        "entries": entries,
    }


def _transaction_view(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(r["position"]),
        "type": r["type"],
        "amount": r["amount"],
        "balance_after": r["balance_after"],
        "reference_id": r["reference_id"],
        "description": r["description"],
        "created_at": r["created_at"].isoformat(),
    }


def _next_cursor(rows: list[dict[str, Any]], limit: int) -> str | None:
    return str(rows[limit - 1]["position"]) if len(rows) > limit else None
