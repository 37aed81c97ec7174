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
from funmagic_credits.application.ports import AccountAsk, LockedAccount, StoredEvent, StreamChange
from funmagic_credits.domain.ledger import (
    Account,
    Adjusted,
    Granted,
    LedgerEvent,
    Purchased,
    Released,
    ReservationClosed,
    ReservationRejected,
    Reserved,
    Spent,
    settled_among,
    settlement_key,
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
    for cls in (
        Granted,
        Purchased,
        Reserved,
        ReservationRejected,
        Spent,
        Released,
        ReservationClosed,
        Adjusted,
    )
}

# The columns of `credits` an account projects to (all but `user_id` and `updated_at`).
PROJECTED = ("balance", "reserved_balance", "lifetime_earned", "lifetime_spent", "adjustments", "version")

ENSURE_ACCOUNTS = """
INSERT INTO ledger_accounts (user_id, version, state)
SELECT u.user_id, 0, '{}' FROM unnest(%s::text[]) AS u (user_id)
ON CONFLICT (user_id) DO NOTHING
"""
# What a decision reads besides the account: which of its causes were applied before, and its holds. One
# index lookup per cause and per reservation (LATERAL … LIMIT 1): a user with thousands of events or open
# holds costs the same as a new one, whatever the planner's statistics say about that user. The causes and
# reservations asked about come as (user, key) pairs for every stream at once; `{who}` is the stream's user.
_DECISION_INPUTS = """
    (SELECT coalesce(array_agg(found.key), '{{}}')
     FROM unnest(%(cause_users)s::text[], %(causes)s::text[]) AS cause (user_id, key),
     LATERAL (SELECT e.idempotency_key AS key FROM ledger_events e
              WHERE e.user_id = cause.user_id AND e.idempotency_key = cause.key LIMIT 1) AS found
     WHERE cause.user_id = {who}) AS applied,
    (SELECT coalesce(jsonb_object_agg(held.reservation_id, held.amount), '{{}}')
     FROM unnest(%(hold_users)s::text[], %(reservations)s::text[]) AS asked (user_id, id),
     LATERAL (SELECT h.reservation_id, h.amount FROM ledger_holds h
              WHERE h.user_id = asked.user_id AND h.reservation_id = asked.id LIMIT 1) AS held
     WHERE asked.user_id = {who}) AS holds
"""
# The locks and the decisions' inputs of one or more streams, in one statement; the rows are locked in
# user order, so two transactions locking streams in common never wait for each other in a cycle. The inputs
# are read in the statement's snapshot, taken before any wait for a lock, while a locked row is its newest
# version: when `version_read` (the row as the snapshot saw it) differs from `version`, another transaction
# wrote the stream while this one waited, and its inputs are read again (`READ_DECISION_INPUTS`, a statement
# of its own, sees what it committed). Every write to a stream's events or holds moves its version, under
# this lock.
LOCK_ACCOUNTS = f"""
SELECT a.user_id, a.version, a.state,
    (SELECT version FROM ledger_accounts WHERE user_id = a.user_id) AS version_read,
{_DECISION_INPUTS.format(who="a.user_id")}
FROM ledger_accounts a WHERE a.user_id = ANY(%(users)s::text[])
ORDER BY a.user_id
FOR UPDATE OF a
"""
# For the rest of the transaction, prepared statements run their generic plan. LOCK_ACCOUNTS's custom plan
# (arrays of one user) looks cheaper to the planner than the generic one (arrays of ten), so under the
# default `auto` it was planned again at every execution — ~0.17 ms of the server's CPU each time, three
# times its execution. Both plans are the same index lookups; the ledger's other statements chose their
# generic plans already.
_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"
READ_DECISION_INPUTS = f"""
SELECT u.user_id, {_DECISION_INPUTS.format(who="u.user_id")}
FROM unnest(%(users)s::text[]) AS u (user_id)
"""
# One statement records the decisions of one or more streams: the events, their `credit_transactions` rows
# (which need the events' positions), the snapshots, the holds that changed and the `credits` rows. What
# varies in length comes as one JSON document (one parameter to encode, however many events and streams).
RECORD = """
WITH decided AS (SELECT %(decided)s::jsonb AS d),
appended AS (
    INSERT INTO ledger_events (event_id, user_id, version, event_type, data, idempotency_key, occurred_at)
    SELECT e.event_id, e.user_id, e.version, e.event_type, e.data, e.idempotency_key, %(now)s
    FROM decided,
        jsonb_to_recordset(d -> 'events') AS e (
            event_id uuid, user_id text, version int, event_type text, data jsonb, idempotency_key text
        )
    RETURNING position, user_id, version
), entered AS (
    INSERT INTO credit_transactions
        (position, user_id, type, amount, balance_after, reference_id, description, created_at)
    SELECT a.position, a.user_id, t.type, t.amount, t.balance_after, t.reference_id, t.description, %(now)s
    FROM appended a
    JOIN (
        SELECT t.* FROM decided, jsonb_to_recordset(d -> 'entries') AS t (
            user_id text, version int, type text, amount bigint, balance_after bigint, reference_id text,
            description text
        )
    ) t USING (user_id, version)
), accounts AS (
    SELECT s.* FROM decided, jsonb_to_recordset(d -> 'accounts') AS s (
        user_id text, version int, state jsonb, balance bigint, reserved_balance bigint,
        lifetime_earned bigint, lifetime_spent bigint, adjustments bigint
    )
), saved AS (
    UPDATE ledger_accounts la SET version = s.version, state = s.state
    FROM accounts s WHERE la.user_id = s.user_id
), held AS (
    INSERT INTO ledger_holds (user_id, reservation_id, amount)
    SELECT h.user_id, h.reservation_id, h.amount
    FROM decided, jsonb_to_recordset(d -> 'held') AS h (user_id text, reservation_id text, amount bigint)
    ON CONFLICT (reservation_id, user_id) DO UPDATE SET amount = EXCLUDED.amount
), ended AS (
    DELETE FROM ledger_holds h
    USING (
        SELECT x.* FROM decided, jsonb_to_recordset(d -> 'ended') AS x (user_id text, reservation_id text)
    ) x
    WHERE h.user_id = x.user_id AND h.reservation_id = x.reservation_id
), projected AS (
    INSERT INTO credits (user_id, balance, reserved_balance, lifetime_earned, lifetime_spent, adjustments,
                         version, updated_at)
    SELECT s.user_id, s.balance, s.reserved_balance, s.lifetime_earned, s.lifetime_spent, s.adjustments,
           s.version, %(now)s
    FROM accounts s
    ON CONFLICT (user_id) DO UPDATE SET
        balance = EXCLUDED.balance, reserved_balance = EXCLUDED.reserved_balance,
        lifetime_earned = EXCLUDED.lifetime_earned, lifetime_spent = EXCLUDED.lifetime_spent,
        adjustments = EXCLUDED.adjustments, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
)
SELECT position, user_id, version FROM appended
"""


def account_to_json(account: Account) -> str:
    """The snapshot: the account's counters (its holds are rows of `ledger_holds`; which reservations ended
    is known from the settlements' idempotency keys)."""
    return json.dumps(_counters(account))


def _counters(account: Account) -> dict[str, Any]:
    state = dataclasses.asdict(account)
    del state["open_reservations"], state["ended_reservations"]
    return state


_ENTRY_FIELDS = ("version", "type", "amount", "balance_after", "reference_id", "description")


def account_from_json(
    user_id: str,
    state: dict[str, Any] | None,
    holds: dict[str, int] | None = None,
    ended: frozenset[str] = frozenset(),
) -> Account:
    """The account of a snapshot, knowing `holds` (the ones a decision concerns, or all of them) and the
    reservations among those it asks about whose task has `ended`."""
    counters = {
        k: v for k, v in (state or {}).items() if k not in ("open_reservations", "ended_reservations")
    }
    return Account(
        **{
            **counters,
            "user_id": user_id,
            "open_reservations": dict(holds or {}),
            "ended_reservations": ended,
        }
    )


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

    async def lock_accounts(self, asks: Sequence[AccountAsk]) -> dict[str, LockedAccount]:
        if len({ask.user_id for ask in asks}) != len(asks):
            raise ValueError("each stream is locked once: ask for every user at most once")
        asked = {
            "users": [ask.user_id for ask in asks],
            "cause_users": [ask.user_id for ask in asks for _ in ask.causes],
            "causes": [cause for ask in asks for cause in ask.causes],
            "hold_users": [ask.user_id for ask in asks for _ in ask.reservations],
            "reservations": [rid for ask in asks for rid in ask.reservations],
        }
        await self._conn.execute(_GENERIC_PLANS)
        cursor = await self._conn.execute(LOCK_ACCOUNTS, asked)
        rows = {row["user_id"]: row for row in await cursor.fetchall()}
        if len(rows) < len(asks):  # a user's first command: the stream starts empty
            await self._conn.execute(ENSURE_ACCOUNTS, ([a.user_id for a in asks if a.user_id not in rows],))
            return await self.lock_accounts(asks)
        inputs = rows
        moved = [user for user, row in rows.items() if row["version_read"] != row["version"]]
        if moved:  # written while this transaction waited for the lock
            cursor = await self._conn.execute(READ_DECISION_INPUTS, {**asked, "users": moved})
            inputs = {**rows, **{row["user_id"]: row for row in await cursor.fetchall()}}
        locked = {}
        for ask in asks:
            applied = frozenset(inputs[ask.user_id]["applied"])
            # A reservation's task has ended once its settlement's key is recorded (`causes_of` asks it).
            account = account_from_json(
                ask.user_id, rows[ask.user_id]["state"], inputs[ask.user_id]["holds"], settled_among(applied)
            )
            locked[ask.user_id] = LockedAccount(account, applied)
        return locked

    async def record_all(
        self, changes: Sequence[StreamChange], now: datetime
    ) -> dict[str, list[StoredEvent]]:
        decided: dict[str, list[dict[str, Any]]] = {
            "events": [],
            "entries": [],
            "accounts": [],
            "held": [],
            "ended": [],
        }
        # (user, version) -> (event id, event), in the order recorded
        recorded: dict[str, list[tuple[int, str, LedgerEvent]]] = {}
        for change in changes:
            before, after, user_id = change.before, change.after, change.after.user_id
            mine = recorded[user_id] = []
            version = before.version
            for decision in change.decisions:
                for offset, event in enumerate(decision.events):
                    version += 1
                    event_id = str(uuid7())
                    mine.append((version, event_id, event))
                    decided["events"].append(
                        {
                            "event_id": event_id,
                            "user_id": user_id,
                            "version": version,
                            "event_type": type(event).__name__,
                            "data": dataclasses.asdict(event),
                            # The cause is on the first event only.
                            "idempotency_key": decision.key if offset == 0 else None,
                        }
                    )
                    if (entry := transaction_entry(event)) is not None:
                        decided["entries"].append(
                            {"user_id": user_id, **dict(zip(_ENTRY_FIELDS, (version, *entry), strict=True))}
                        )
            if version != after.version:
                taken = version - before.version
                raise ValueError(f"{taken} events do not take version {before.version} to {after.version}")
            decided["accounts"].append(
                {"user_id": user_id, "state": _counters(after), **projection_of(after)}
            )
            decided["held"] += [
                {"user_id": user_id, "reservation_id": rid, "amount": amount}
                for rid, amount in after.open_reservations.items()
                if before.open_reservations.get(rid) != amount
            ]
            decided["ended"] += [
                {"user_id": user_id, "reservation_id": rid}
                for rid in before.open_reservations
                if rid not in after.open_reservations
            ]
        cursor = await self._conn.execute(RECORD, {"decided": json.dumps(decided), "now": now})
        positions = {(row["user_id"], row["version"]): row["position"] for row in await cursor.fetchall()}
        return {
            user_id: [
                StoredEvent(event_id, positions[(user_id, version)], user_id, version, event, now)
                for version, event_id, event in mine
            ]
            for user_id, mine in recorded.items()
        }

    async def ended_reservations(self, user_id: str) -> frozenset[str]:
        """Every reservation of the user whose settlement is recorded (checks and tools; decisions load only
        theirs)."""
        cursor = await self._conn.execute(
            "SELECT idempotency_key FROM ledger_events"
            " WHERE user_id = %s AND starts_with(idempotency_key, %s)",
            (user_id, settlement_key("")),
        )
        return settled_among(row["idempotency_key"] for row in await cursor.fetchall())

    async def event_of_cause(self, user_id: str, key: str) -> LedgerEvent | None:
        cursor = await self._conn.execute(
            "SELECT event_type, data FROM ledger_events WHERE user_id = %s AND idempotency_key = %s",
            (user_id, key),
        )
        row = await cursor.fetchone()
        return EVENT_CLASSES[row["event_type"]](**row["data"]) if row else None

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
