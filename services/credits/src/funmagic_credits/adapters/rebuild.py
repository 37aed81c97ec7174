"""Projections rebuilt from the event store, and compared with the live ones.

`rebuild` replaces `credits` and `credit_transactions` with a replay of `ledger_events` in position order, in
one transaction (readers see the old projections until it commits). `verify` replays into memory and reports
every difference from the live tables (and from the open holds, `ledger_holds`) without changing anything.
`replay_topic` folds the published `credits.events` from offset 0 into balances, as another team's consumer
would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from funmagic_credits.adapters.postgres import PROJECTED, event_from_row, projection_of, transaction_row
from funmagic_credits.domain.ledger import Account, evolve

__all__ = ["Difference", "Replay", "rebuild_projections", "replay_events", "verify_projections"]

BATCH = 10_000
COPY_CREDITS = f"COPY credits (user_id, {', '.join(PROJECTED)}, updated_at) FROM STDIN"
Progress = Callable[[int, int], None]


@dataclass
class Replay:
    accounts: dict[str, Account] = field(default_factory=dict)
    transactions: list[tuple] = field(default_factory=list)
    events: int = 0
    # When each account last changed: its last event's time, which the live projection stores too.
    updated_at: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    user_id: str
    field: str
    live: object
    replayed: object


async def _count(conn: psycopg.AsyncConnection) -> int:
    cursor = await conn.execute("SELECT count(*) AS n FROM ledger_events")
    row = await cursor.fetchone()
    return int(row["n"]) if row else 0


async def replay_events(
    conn: psycopg.AsyncConnection, *, keep_transactions: bool, progress: Progress | None = None
) -> Replay:
    total = await _count(conn)
    replay = Replay()
    async with conn.cursor(name="ledger_replay") as cursor:  # server-side: a million rows never sit in memory
        await cursor.execute(
            "SELECT position, event_id, user_id, version, event_type, data, occurred_at FROM ledger_events "
            "ORDER BY position"
        )
        while rows := await cursor.fetchmany(BATCH):
            for row in rows:
                stored = event_from_row(row)
                account = replay.accounts.get(stored.user_id) or Account(user_id=stored.user_id)
                replay.accounts[stored.user_id] = evolve(stored.event, account)
                replay.updated_at[stored.user_id] = stored.occurred_at
                if keep_transactions:
                    transaction = transaction_row(stored)
                    if transaction is not None:
                        replay.transactions.append(transaction)
            replay.events += len(rows)
            if progress:
                progress(replay.events, total)
    return replay


async def rebuild_projections(conn: psycopg.AsyncConnection, *, progress: Progress | None = None) -> Replay:
    """Run inside a transaction: the old projections stay visible until it commits."""
    await conn.execute("LOCK TABLE ledger_accounts IN SHARE MODE")  # no ledger writes while replaying
    replay = await replay_events(conn, keep_transactions=True, progress=progress)
    # DELETE, not TRUNCATE: TRUNCATE's exclusive lock would stall every reader until the commit, while
    # under MVCC readers keep seeing the old rows.
    await conn.execute("DELETE FROM credit_transactions")
    await conn.execute("DELETE FROM credits")
    async with conn.cursor() as cursor:
        async with cursor.copy(COPY_CREDITS) as copy:
            for account in replay.accounts.values():
                projection = projection_of(account).values()
                await copy.write_row((account.user_id, *projection, replay.updated_at[account.user_id]))
        async with cursor.copy(
            "COPY credit_transactions (position, user_id, type, amount, balance_after, reference_id, "
            "description, created_at) FROM STDIN"
        ) as copy:
            for row in replay.transactions:
                await copy.write_row(row)
    return replay


async def verify_projections(
    conn: psycopg.AsyncConnection, *, progress: Progress | None = None
) -> list[Difference]:
    replay = await replay_events(conn, keep_transactions=True, progress=progress)
    differences: list[Difference] = []
    cursor = await conn.execute(f"SELECT user_id, {', '.join(PROJECTED)} FROM credits")
    live = {row["user_id"]: row for row in await cursor.fetchall()}
    for user_id in sorted(set(live) | set(replay.accounts)):
        account = replay.accounts.get(user_id)
        replayed = projection_of(account) if account else None
        row = live.get(user_id)
        if row is None or replayed is None:
            differences.append(Difference(user_id, "row", row is not None, replayed is not None))
            continue
        differences += [
            Difference(user_id, name, row[name], replayed[name])
            for name in PROJECTED
            if row[name] != replayed[name]
        ]
    differences += await _verify_holds(conn, replay)
    cursor = await conn.execute(
        "SELECT position, user_id, type, amount, balance_after, reference_id, description "
        "FROM credit_transactions"
    )
    live_transactions = {row["position"]: tuple(row.values()) for row in await cursor.fetchall()}
    replayed_transactions = {t[0]: t[:7] for t in replay.transactions}
    for position in sorted(set(live_transactions) ^ set(replayed_transactions)):
        differences.append(
            Difference(
                "-",
                f"transaction {position}",
                position in live_transactions,
                position in replayed_transactions,
            )
        )
    for position in sorted(set(live_transactions) & set(replayed_transactions)):
        if live_transactions[position] != replayed_transactions[position]:
            differences.append(
                Difference(
                    "-",
                    f"transaction {position}",
                    live_transactions[position],
                    replayed_transactions[position],
                )
            )
    return differences


async def _verify_holds(conn: psycopg.AsyncConnection, replay: Replay) -> list[Difference]:
    """The open holds the decisions load (`ledger_holds`) against the ones the events leave open."""
    cursor = await conn.execute("SELECT user_id, reservation_id, amount FROM ledger_holds")
    live: dict[str, dict[str, int]] = {}
    for row in await cursor.fetchall():
        live.setdefault(row["user_id"], {})[row["reservation_id"]] = row["amount"]
    replayed = {user_id: a.open_reservations for user_id, a in replay.accounts.items() if a.open_reservations}
    return [
        Difference(user_id, "holds", live.get(user_id, {}), replayed.get(user_id, {}))
        for user_id in sorted(set(live) | set(replayed))
        if live.get(user_id, {}) != replayed.get(user_id, {})
    ]


def balances_from_published(values: Iterator[bytes]) -> dict[str, dict[str, int]]:
    """Fold `credits.events` envelopes (as another team would) into balance and reserved per user."""
    balances: dict[str, dict[str, int]] = {}
    for value in values:
        envelope = json.loads(value)
        data = envelope["data"]
        if "balance_after" not in data:
            continue  # a rejection changes nothing
        current = balances.setdefault(envelope["subject"], {"balance": 0, "reserved_balance": 0})
        current["balance"] = data["balance_after"]
        if "reserved_after" in data:
            current["reserved_balance"] = data["reserved_after"]
    return balances
