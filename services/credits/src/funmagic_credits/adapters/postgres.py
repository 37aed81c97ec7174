"""The ledger on Postgres: event store (the sole writer of `ledger_events`), snapshots and projections.

Order strategy (STYLE §7): a stream is changed only while its `ledger_accounts` row is locked
(`SELECT … FOR UPDATE`), so one user's commands queue behind each other and never conflict; the
`UNIQUE (user_id, version)` of `ledger_events` stays as the optimistic guard should anything bypass the
lock. Different users never wait for each other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from funmagic_contracts.ids import uuid7
from funmagic_credits.application.ports import StoredEvent
from funmagic_credits.domain.ledger import (
    Account,
    Adjusted,
    Granted,
    LedgerEvent,
    Purchased,
    Released,
    ReservationRejected,
    Reserved,
    Spent,
)
from funmagic_kit.rows import to_row

__all__ = [
    "EVENT_CLASSES",
    "PROJECTED",
    "PostgresLedgerStore",
    "account_from_json",
    "account_to_json",
    "event_from_row",
    "projection_of",
    "transaction_row",
]

EVENT_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (Granted, Purchased, Reserved, ReservationRejected, Spent, Released, Adjusted)
}

# The columns of `credits` an account projects to (all but `user_id` and `updated_at`).
PROJECTED = ("balance", "reserved_balance", "lifetime_earned", "lifetime_spent", "adjustments", "version")

ENSURE_ACCOUNT = """
INSERT INTO ledger_accounts (user_id, version, state) VALUES (%s, 0, %s) ON CONFLICT (user_id) DO NOTHING
"""
LOCK_ACCOUNT = "SELECT version, state FROM ledger_accounts WHERE user_id = %s FOR UPDATE"
CAUSE_APPLIED = "SELECT 1 FROM ledger_events WHERE user_id = %s AND idempotency_key = %s"
INSERT_EVENT = """
INSERT INTO ledger_events (event_id, user_id, version, event_type, data, idempotency_key, occurred_at)
VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING position
"""
SAVE_ACCOUNT = "UPDATE ledger_accounts SET version = %s, state = %s WHERE user_id = %s"
UPSERT_CREDITS = """
INSERT INTO credits
    (user_id, balance, reserved_balance, lifetime_earned, lifetime_spent, adjustments, version, updated_at)
VALUES (%(user_id)s, %(balance)s, %(reserved_balance)s, %(lifetime_earned)s, %(lifetime_spent)s,
        %(adjustments)s, %(version)s, %(now)s)
ON CONFLICT (user_id) DO UPDATE SET
    balance = EXCLUDED.balance, reserved_balance = EXCLUDED.reserved_balance,
    lifetime_earned = EXCLUDED.lifetime_earned, lifetime_spent = EXCLUDED.lifetime_spent,
    adjustments = EXCLUDED.adjustments, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
"""
INSERT_TRANSACTION = """
INSERT INTO credit_transactions (position, user_id, type, amount, balance_after, reference_id, description,
                                 created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""


def account_to_json(account: Account) -> str:
    return json.dumps(dataclasses.asdict(account))


def account_from_json(user_id: str, state: dict[str, Any] | None) -> Account:
    if not state:
        return Account(user_id=user_id)
    return Account(**{**state, "user_id": user_id})


def event_to_json(event: LedgerEvent) -> str:
    return json.dumps(dataclasses.asdict(event))


def event_from_row(row: dict[str, Any]) -> StoredEvent:
    cls = EVENT_CLASSES[row["event_type"]]
    return StoredEvent(
        event_id=str(row["event_id"]),
        position=row["position"],
        user_id=row["user_id"],
        version=row["version"],
        event=cls(**row["data"]),
        occurred_at=row["occurred_at"],
    )


def transaction_row(stored: StoredEvent) -> tuple | None:
    """The `credit_transactions` row of a ledger event, in the seed's types; None for holds."""
    event = stored.event
    match event:
        case Granted():
            kind, amount, reference, text = (
                "bonus",
                event.amount,
                event.reference_id,
                f"Bonus: {event.reason}",
            )
        case Purchased():
            kind, amount, reference = "purchase", event.amount, event.payment_reference
            text = f"Purchase of {event.amount} credits"
            if event.bonus_credits:  # the entry says which part is the package's bonus
                bought = event.amount - event.bonus_credits
                text = f"Purchase of {bought} credits + {event.bonus_credits} bonus"
        case Spent():
            kind, amount, reference, text = "spend", -event.amount, event.reservation_id, "Task charged"
        case Released() if event.amount > 0:
            kind, amount, reference, text = (
                "refund",
                event.amount,
                event.reservation_id,
                "Unused credits returned",
            )
        case Adjusted():
            kind, amount, reference, text = "admin_adjust", event.amount, event.admin_id, event.reason
        case _:
            return None
    balance_after = event.balance_after
    return (stored.position, stored.user_id, kind, amount, balance_after, reference, text, stored.occurred_at)


class PostgresLedgerStore:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def lock_account(self, user_id: str) -> Account:
        await self._conn.execute(ENSURE_ACCOUNT, (user_id, "{}"))
        cursor = await self._conn.execute(LOCK_ACCOUNT, (user_id,))
        row = await cursor.fetchone()
        assert row is not None
        return account_from_json(user_id, row["state"])

    async def cause_already_applied(self, user_id: str, key: str) -> bool:
        cursor = await self._conn.execute(CAUSE_APPLIED, (user_id, key))
        return await cursor.fetchone() is not None

    async def append(
        self, account: Account, events: Sequence[LedgerEvent], key: str, now: datetime
    ) -> list[StoredEvent]:
        stored = []
        for offset, event in enumerate(events, start=1):
            version = account.version + offset
            event_id = uuid7()
            cursor = await self._conn.execute(
                INSERT_EVENT,
                (
                    event_id,
                    account.user_id,
                    version,
                    type(event).__name__,
                    event_to_json(event),
                    key if offset == 1 else None,
                    now,
                ),
            )
            row = await cursor.fetchone()
            assert row is not None
            stored.append(StoredEvent(str(event_id), row["position"], account.user_id, version, event, now))
        return stored

    async def save_account(self, account: Account) -> None:
        await self._conn.execute(SAVE_ACCOUNT, (account.version, account_to_json(account), account.user_id))

    async def project(self, stored: Sequence[StoredEvent], account: Account, now: datetime) -> None:
        await self._conn.execute(
            UPSERT_CREDITS, {**projection_of(account), "user_id": account.user_id, "now": now}
        )
        rows = [r for r in (transaction_row(s) for s in stored) if r is not None]
        if rows:
            async with self._conn.cursor() as cursor:
                await cursor.executemany(INSERT_TRANSACTION, rows)


def projection_of(account: Account) -> dict[str, Any]:
    """The `credits` row of an account, by column name in the order of PROJECTED (live projection, rebuild
    and verify share it): the account's counters, `reserved` as `reserved_balance`."""
    counters = to_row(account, reserved_balance=account.reserved)
    return {column: counters[column] for column in PROJECTED}
