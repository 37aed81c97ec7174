"""The ledger on Postgres: event store (the sole writer of `ledger_events`), snapshots, open holds and
projections.

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
from funmagic_credits.application.ports import Decision, LockedAccount, StoredEvent
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
    "transaction_entry",
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
# What a decision reads besides the account: which of its causes were applied before, and its holds. One
# index lookup per cause and per reservation (LATERAL … LIMIT 1): a user with thousands of events or open
# holds costs the same as a new one, whatever the planner's statistics say about that user.
_DECISION_INPUTS = """
    (SELECT coalesce(array_agg(found.key), '{}')
     FROM unnest(%(causes)s::text[]) AS cause (key),
     LATERAL (SELECT e.idempotency_key AS key FROM ledger_events e
              WHERE e.user_id = %(user_id)s AND e.idempotency_key = cause.key LIMIT 1) AS found) AS applied,
    (SELECT coalesce(jsonb_object_agg(held.reservation_id, held.amount), '{}')
     FROM unnest(%(reservations)s::text[]) AS asked (id),
     LATERAL (SELECT h.reservation_id, h.amount FROM ledger_holds h
              WHERE h.user_id = %(user_id)s AND h.reservation_id = asked.id LIMIT 1) AS held) AS holds
"""
# The lock and the decision's inputs, in one statement. The inputs are read in the statement's snapshot,
# taken before any wait for the lock, while the locked row is its newest version: when `version_read` (the
# row as the snapshot saw it) differs from `version`, another transaction wrote the stream while this one
# waited, and the inputs are read again (`READ_DECISION_INPUTS`, a statement of its own, sees what it
# committed). Every write to a stream's events or holds moves its version, under this lock.
LOCK_ACCOUNT = f"""
SELECT a.version, a.state,
    (SELECT version FROM ledger_accounts WHERE user_id = %(user_id)s) AS version_read,
{_DECISION_INPUTS}
FROM ledger_accounts a WHERE a.user_id = %(user_id)s
FOR UPDATE OF a
"""
READ_DECISION_INPUTS = f"SELECT {_DECISION_INPUTS}"
# One statement records a decision (or a group of them): the events, their `credit_transactions` rows
# (which need the events' positions), the snapshot, the holds that changed and the `credits` row. What varies
# in length comes as one JSON document (one parameter to encode, however many events).
RECORD = """
WITH decided AS (SELECT %(decided)s::jsonb AS d),
appended AS (
    INSERT INTO ledger_events (event_id, user_id, version, event_type, data, idempotency_key, occurred_at)
    SELECT e.event_id, %(user_id)s, e.version, e.event_type, e.data, e.idempotency_key, %(now)s
    FROM decided,
        jsonb_to_recordset(d -> 'events')
            AS e (event_id uuid, version int, event_type text, data jsonb, idempotency_key text)
    RETURNING position, version
), entered AS (
    INSERT INTO credit_transactions
        (position, user_id, type, amount, balance_after, reference_id, description, created_at)
    SELECT a.position, %(user_id)s, t.type, t.amount, t.balance_after, t.reference_id, t.description, %(now)s
    FROM appended a
    JOIN (
        SELECT t.* FROM decided, jsonb_to_recordset(d -> 'entries') AS t (
            version int, type text, amount bigint, balance_after bigint, reference_id text, description text
        )
    ) t USING (version)
), saved AS (
    UPDATE ledger_accounts SET version = %(version)s, state = (SELECT d -> 'state' FROM decided)
    WHERE user_id = %(user_id)s
), held AS (
    INSERT INTO ledger_holds (user_id, reservation_id, amount)
    SELECT %(user_id)s, h.key, h.value::bigint FROM decided, jsonb_each_text(d -> 'held') AS h
    ON CONFLICT (reservation_id, user_id) DO UPDATE SET amount = EXCLUDED.amount
), ended AS (
    DELETE FROM ledger_holds
    WHERE reservation_id = ANY(ARRAY(SELECT jsonb_array_elements_text(d -> 'ended') FROM decided))
      AND user_id = %(user_id)s
), projected AS (
    INSERT INTO credits (user_id, balance, reserved_balance, lifetime_earned, lifetime_spent, adjustments,
                         version, updated_at)
    VALUES (%(user_id)s, %(balance)s, %(reserved_balance)s, %(lifetime_earned)s, %(lifetime_spent)s,
            %(adjustments)s, %(version)s, %(now)s)
    ON CONFLICT (user_id) DO UPDATE SET
        balance = EXCLUDED.balance, reserved_balance = EXCLUDED.reserved_balance,
        lifetime_earned = EXCLUDED.lifetime_earned, lifetime_spent = EXCLUDED.lifetime_spent,
        adjustments = EXCLUDED.adjustments, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
)
SELECT position, version FROM appended
"""


def account_to_json(account: Account) -> str:
    """The snapshot: the account's counters (its holds are rows of `ledger_holds`)."""
    return json.dumps(_counters(account))


def _counters(account: Account) -> dict[str, Any]:
    state = dataclasses.asdict(account)
    del state["open_reservations"]
    return state


_ENTRY_FIELDS = ("version", "type", "amount", "balance_after", "reference_id", "description")


def account_from_json(
    user_id: str, state: dict[str, Any] | None, holds: dict[str, int] | None = None
) -> Account:
    """The account of a snapshot, knowing `holds` (the ones a decision concerns, or all of them)."""
    counters = {k: v for k, v in (state or {}).items() if k != "open_reservations"}
    return Account(**{**counters, "user_id": user_id, "open_reservations": dict(holds or {})})


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
    entry = transaction_entry(stored.event)
    if entry is None:
        return None
    kind, amount, balance_after, reference, text = entry
    return (stored.position, stored.user_id, kind, amount, balance_after, reference, text, stored.occurred_at)


def transaction_entry(event: LedgerEvent) -> tuple[str, int, int, str, str] | None:
    """(type, amount, balance_after, reference_id, description) of an event's statement line."""
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
    return kind, amount, event.balance_after, reference, text


class PostgresLedgerStore:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def lock_account(
        self, user_id: str, *, causes: Sequence[str] = (), reservations: Sequence[str] = ()
    ) -> LockedAccount:
        asked = {"user_id": user_id, "causes": list(causes), "reservations": list(reservations)}
        cursor = await self._conn.execute(LOCK_ACCOUNT, asked)
        row = await cursor.fetchone()
        if row is None:  # a user's first command: the stream starts empty
            await self._conn.execute(ENSURE_ACCOUNT, (user_id, "{}"))
            return await self.lock_account(user_id, causes=causes, reservations=reservations)
        read = row
        if row["version_read"] != row["version"]:  # written while this transaction waited for the lock
            cursor = await self._conn.execute(READ_DECISION_INPUTS, asked)
            read = await cursor.fetchone()
            assert read is not None
        account = account_from_json(user_id, row["state"], read["holds"])
        return LockedAccount(account, frozenset(read["applied"]))

    async def record(
        self, before: Account, after: Account, decisions: Sequence[Decision], now: datetime
    ) -> list[StoredEvent]:
        events: list[tuple[str, LedgerEvent]] = []  # (event id, event), versions from before.version + 1
        keys: list[str | None] = []
        for decision in decisions:
            for offset, event in enumerate(decision.events):
                events.append((str(uuid7()), event))
                keys.append(decision.key if offset == 0 else None)  # the cause is on the first event only
        versions = list(range(before.version + 1, before.version + 1 + len(events)))
        if versions[-1:] != [after.version]:
            raise ValueError(f"{len(events)} events do not take version {before.version} to {after.version}")
        changed = {
            rid: amount
            for rid, amount in after.open_reservations.items()
            if before.open_reservations.get(rid) != amount
        }
        decided = {
            "events": [
                {
                    "event_id": event_id,
                    "version": version,
                    "event_type": type(event).__name__,
                    "data": dataclasses.asdict(event),
                    "idempotency_key": key,
                }
                for version, (event_id, event), key in zip(versions, events, keys, strict=True)
            ],
            "entries": [
                dict(zip(_ENTRY_FIELDS, (version, *entry), strict=True))
                for version, (_, event) in zip(versions, events, strict=True)
                if (entry := transaction_entry(event)) is not None
            ],
            "state": _counters(after),
            "held": changed,
            "ended": [rid for rid in before.open_reservations if rid not in after.open_reservations],
        }
        cursor = await self._conn.execute(
            RECORD,
            {"decided": json.dumps(decided), "user_id": after.user_id, "now": now, **projection_of(after)},
        )
        positions = {row["version"]: row["position"] for row in await cursor.fetchall()}
        return [
            StoredEvent(event_id, positions[version], after.user_id, version, event, now)
            for version, (event_id, event) in zip(versions, events, strict=True)
        ]

    async def holds(self, user_id: str) -> dict[str, int]:
        """Every open hold of the user (checks and tools; decisions load only theirs)."""
        cursor = await self._conn.execute(
            "SELECT reservation_id, amount FROM ledger_holds WHERE user_id = %s", (user_id,)
        )
        return {row["reservation_id"]: row["amount"] for row in await cursor.fetchall()}


def projection_of(account: Account) -> dict[str, Any]:
    """The `credits` row of an account, by column name in the order of PROJECTED (live projection, rebuild
    and verify share it): the account's counters, `reserved` as `reserved_balance`."""
    counters = to_row(account, reserved_balance=account.reserved)
    return {column: counters[column] for column in PROJECTED}
