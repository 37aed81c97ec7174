"""The credits ledger: a projection rebuild from a million events, and reservations through `Ledger.execute`.

Everything runs in one fresh database (`bench_credits_<hex>`, migrated like the service's and dropped at
the end).

1. Rebuild. A consistent ledger of `USERS` × `EVENTS_PER_USER` events is generated straight into the event
   store with `COPY … FREEZE` (decisions of different users interleaved by round; each stream starts with
   a signup grant, then reserve/settle cycles with some purchases, adjustments and rejections; versions
   1..n, `data` as `dataclasses.asdict` of the domain events, uuid7-shaped ids), plus each stream's
   `ledger_accounts` snapshot. FREEZE leaves the rows as an old, vacuumed ledger would be, so neither the
   baseline nor the rebuild pays for setting hint bits. `rebuild_projections` is then timed in a
   transaction and its result checked against what the generator computed. The baseline reads the same
   columns in the same order through a server-side cursor in batches of the same size and does nothing
   with the rows, so the ratio is the cost of replaying and writing the projections on top of the read
   (the driver's decoding of the rows, `jsonb` included, is in both).
2. Reservations. `CONCURRENCY` asyncio workers share a pool of `POOL_SIZE` connections and one `Ledger`; each
   reservation is `Ledger.apply(ReserveCredits)`: one transaction locks the stream and reads the decision's
   inputs (causes applied before, the hold concerned) in one statement, decides, records events, snapshot,
   holds and projections in one statement, and writes the outbox. Commands for a user whose transaction is
   running wait and share the next one (group commit), and while `MAX_TRANSACTIONS` transactions run, the
   commands of other users wait and share the next one (one lock statement, one write, one commit for all).
   The baseline is one guarded `UPDATE` of a plain balances table in the same kind of unit of work, pool and
   concurrency, one transaction per reservation (it does not batch), so the ratio is the ledger's work per
   reservation, its batching included. Both are measured on distinct users (the generated users, each
   reservation on the next one) and on one contended user with a large balance. Latency runs from asking for a
   connection (or joining a group) to the commit, so the wait for the pool is included. On one user every
   reservation stays open; holds are rows of `ledger_holds`, so the user's snapshot does not grow with them;
   the result records how many were open at the end and the throughput per second of the window.

The machine may be shared: numbers from one run are noisy, compare ratios rather than absolute rates.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from funmagic_credits.adapters.postgres import EVENT_CLASSES, account_to_json, event_to_json
from funmagic_credits.adapters.rebuild import BATCH, rebuild_projections
from funmagic_credits.adapters.unit_of_work import CreditsUnitOfWork
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.domain.ledger import Account, GrantCredits, ReserveCredits, Reserved
from funmagic_kit.clock import SystemClock
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.migrations import migrate_database
from funmagic_kit.testing import drop_database

USERS = int(os.environ.get("BENCH_LEDGER_USERS", "20000"))
EVENTS_PER_USER = 50
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
POOL_SIZE = 10
WARMUP_SECONDS = 0.5
MEASURE_SECONDS = float(os.environ.get("BENCH_MEASURE_SECONDS", "3"))
RESERVE_AMOUNT = 5
CONTENDED_BALANCE = 1_000_000_000
SEED = 20240601
PROGRESS_EVERY = 200_000
SAMPLE_USERS = 5
NULL = "\\N"  # COPY text format

# Constant parts of the generated ledger (uuid-shaped ids are built from counters for speed).
PACKAGE_ID = "0190f5a0-aaaa-7000-8000-000000000001"
ADMIN_ID = "0190f5a0-bbbb-7000-8000-000000000001"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)

COPY_EVENTS = (
    "COPY ledger_events (event_id, user_id, version, event_type, data, idempotency_key, occurred_at) "
    "FROM STDIN WITH (FREEZE)"
)
COPY_ACCOUNTS = "COPY ledger_accounts (user_id, version, state) FROM STDIN WITH (FREEZE)"
COPY_HOLDS = "COPY ledger_holds (user_id, reservation_id, amount) FROM STDIN WITH (FREEZE)"
READ_EVENTS = (
    "SELECT position, event_id, user_id, version, event_type, data, occurred_at FROM ledger_events "
    "ORDER BY position"
)
BASELINE_TABLE = """
CREATE TABLE balances (
    user_id   text PRIMARY KEY,
    balance   bigint NOT NULL CHECK (balance >= 0),
    reserved  bigint NOT NULL CHECK (reserved >= 0)
)
"""
BASELINE_UPDATE = (
    "UPDATE balances SET balance = balance - %(amount)s, reserved = reserved + %(amount)s "
    "WHERE user_id = %(user_id)s AND balance >= %(amount)s"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _user_id(n: int) -> str:
    return f"0190f5a0-0000-7000-8000-{n:012x}"


def _task_id(n: int) -> str:
    return f"0190f5a0-1111-7000-8000-{n:012x}"


# --- the generated ledger ------------------------------------------------------------------------------


@dataclass
class _Stream:
    """One user's account as the generator tracks it (mirrors `Account`, plus the one open reservation)."""

    user_id: str
    remaining: int
    version: int = 0
    balance: int = 0
    reserved: int = 0
    lifetime_earned: int = 0
    lifetime_spent: int = 0
    adjustments: int = 0
    open_id: str | None = None
    open_amount: int = 0
    transactions: int = 0

    def account(self) -> Account:
        return Account(
            user_id=self.user_id,
            version=self.version,
            balance=self.balance,
            reserved=self.reserved,
            lifetime_earned=self.lifetime_earned,
            lifetime_spent=self.lifetime_spent,
            adjustments=self.adjustments,
            open_reservations={self.open_id: self.open_amount} if self.open_id else {},
        )


@dataclass
class _Generated:
    streams: list[_Stream] = field(default_factory=list)
    events: int = 0
    samples_checked: int = 0


class _Generator:
    """Writes COPY text rows; each decision's events are consecutive, decisions interleave by round."""

    def __init__(self, users: int, events_per_user: int, seed: int) -> None:
        self.result = _Generated(streams=[_Stream(_user_id(n), events_per_user) for n in range(users)])
        self._rng = random.Random(seed)
        self._counter = itertools.count(1)
        self._position = 0
        self._second = -1
        self._second_text = ""
        self._base = int(BASE_TIME.timestamp() * 1000)

    def chunks(self, chunk_rows: int = 20_000) -> Iterator[str]:
        rows: list[str] = []
        streams = list(self.result.streams)
        while streams:
            self._rng.shuffle(streams)
            for stream in streams:
                self._decide(stream, rows)
            streams = [s for s in streams if s.remaining]
            if len(rows) >= chunk_rows:
                yield "".join(rows)
                rows = []
        if rows:
            yield "".join(rows)

    def _row(self, rows: list[str], stream: _Stream, kind: str, data: str, key: str | None) -> None:
        self._position += 1
        position = self._position
        stream.version += 1
        stream.remaining -= 1
        # One event per millisecond of a made-up history.
        ms = self._base + position
        second, milli = divmod(position, 1000)
        if second != self._second:
            self._second = second
            self._second_text = (BASE_TIME + timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")
        event_id = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7000-8000-{position:012x}"
        rows.append(
            f"{event_id}\t{stream.user_id}\t{stream.version}\t{kind}\t{data}\t"
            f"{key if key is not None else NULL}\t{self._second_text}.{milli:03d}+00\n"
        )
        if position % 10_000 == 1:
            # Sampled: the row's data is exactly what the platform writes for that event.
            event = EVENT_CLASSES[kind](**json.loads(data))
            assert event_to_json(event) == data, (kind, data, event_to_json(event))
            self.result.samples_checked += 1

    def _decide(self, s: _Stream, rows: list[str]) -> None:
        rng = self._rng
        if s.version == 0:
            amount = 100
            s.balance += amount
            s.lifetime_earned += amount
            s.transactions += 1
            data = (
                f'{{"amount": {amount}, "reason": "signup_bonus", "reference_id": "{s.user_id}", '
                f'"balance_after": {s.balance}}}'
            )
            self._row(rows, s, "Granted", data, f"grant:signup_bonus:{s.user_id}")
            return
        if s.open_id is not None:
            self._settle(s, rows)
            return
        roll = rng.random()
        if roll < 0.05:
            self._adjust(s, rows)
        elif roll < 0.07:
            # A task priced above the balance: rejected, nothing held.
            task = _task_id(next(self._counter))
            amount = s.balance + rng.randint(1, 50)
            data = f'{{"reservation_id": "{task}", "amount": {amount}, "reason": "insufficient_credits"}}'
            self._row(rows, s, "ReservationRejected", data, f"reserve:{task}")
        else:
            amount = rng.randint(1, 8) * 5
            if amount > s.balance:
                self._purchase(s, rows)
                return
            task = _task_id(next(self._counter))
            s.balance -= amount
            s.reserved += amount
            s.open_id, s.open_amount = task, amount
            data = (
                f'{{"reservation_id": "{task}", "amount": {amount}, "balance_after": {s.balance}, '
                f'"reserved_after": {s.reserved}}}'
            )
            self._row(rows, s, "Reserved", data, f"reserve:{task}")

    def _settle(self, s: _Stream, rows: list[str]) -> None:
        task, held = s.open_id, s.open_amount
        assert task is not None
        roll = self._rng.random()
        if roll < 0.25 and held >= 2 and s.remaining >= 2:
            spent = held // 2  # completed for less than was held: spend part, release the rest
        elif roll < 0.4:
            spent = 0  # failed or cancelled: everything back
        else:
            spent = held
        released = held - spent
        key: str | None = f"settle:{task}"
        if spent:
            s.reserved -= spent
            s.lifetime_spent += spent
            s.transactions += 1
            data = (
                f'{{"reservation_id": "{task}", "amount": {spent}, "balance_after": {s.balance}, '
                f'"reserved_after": {s.reserved}}}'
            )
            self._row(rows, s, "Spent", data, key)
            key = None  # the cause is recorded on the first event of the decision only
        if released or not spent:
            s.reserved -= released
            s.balance += released
            s.transactions += 1 if released else 0
            data = (
                f'{{"reservation_id": "{task}", "amount": {released}, "balance_after": {s.balance}, '
                f'"reserved_after": {s.reserved}}}'
            )
            self._row(rows, s, "Released", data, key)
        s.open_id, s.open_amount = None, 0

    def _purchase(self, s: _Stream, rows: list[str]) -> None:
        amount = 500
        s.balance += amount
        s.lifetime_earned += amount
        s.transactions += 1
        reference = f"cs_bench_{next(self._counter)}"
        data = (
            f'{{"amount": {amount}, "package_id": "{PACKAGE_ID}", "payment_reference": "{reference}", '
            f'"price_minor": 499, "currency": "USD", "balance_after": {s.balance}, "bonus_credits": 0}}'
        )
        self._row(rows, s, "Purchased", data, f"purchase:{reference}")

    def _adjust(self, s: _Stream, rows: list[str]) -> None:
        if s.balance >= 10 and self._rng.random() < 0.3:
            amount, reason = -10, "correction"
        else:
            amount, reason = 20, "goodwill"
        s.balance += amount
        s.adjustments += amount
        s.transactions += 1
        data = (
            f'{{"amount": {amount}, "admin_id": "{ADMIN_ID}", "reason": "{reason}", '
            f'"balance_after": {s.balance}}}'
        )
        self._row(rows, s, "Adjusted", data, f"adjust:bench-{next(self._counter)}")


async def load_ledger(dsn: str) -> tuple[_Generated, dict[str, float]]:
    total = USERS * EVENTS_PER_USER
    generator = _Generator(USERS, EVENTS_PER_USER, SEED)
    started = time.perf_counter()
    next_report = PROGRESS_EVERY
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        async with conn.transaction():
            # FREEZE needs the table emptied in the loading transaction (it is empty: the database is new).
            await conn.execute("TRUNCATE ledger_events, ledger_accounts, ledger_holds")
            async with conn.cursor() as cursor, cursor.copy(COPY_EVENTS) as copy:
                for chunk in generator.chunks():
                    await copy.write(chunk)
                    done = generator._position
                    if done >= next_report:
                        elapsed = time.perf_counter() - started
                        print(f"  generated {done:,}/{total:,} events  {done / elapsed:,.0f}/s", flush=True)
                        next_report += PROGRESS_EVERY
            copied = time.perf_counter() - started
            async with (
                conn.cursor() as cursor,
                cursor.copy(COPY_ACCOUNTS) as copy,
            ):
                for stream in generator.result.streams:
                    await copy.write_row((stream.user_id, stream.version, account_to_json(stream.account())))
            async with conn.cursor() as cursor, cursor.copy(COPY_HOLDS) as copy:
                for stream in generator.result.streams:
                    if stream.open_id is not None:
                        await copy.write_row((stream.user_id, stream.open_id, stream.open_amount))
        loaded = time.perf_counter() - started
        await conn.set_autocommit(True)
        await conn.execute("ANALYZE ledger_events")
        await conn.execute("ANALYZE ledger_accounts")
        await conn.execute("ANALYZE ledger_holds")
        cursor = await conn.execute("SELECT pg_total_relation_size('ledger_events')")
        row = await cursor.fetchone()
        size_mb = round(row[0] / 2**20, 1) if row else 0.0
    generator.result.events = generator._position
    assert generator.result.events == total, (generator.result.events, total)
    timings = {
        "events": total,
        "users": USERS,
        "copy_events_seconds": round(copied, 2),
        "load_seconds": round(loaded, 2),
        "load_events_per_s": round(total / loaded, 1),
        "ledger_events_total_mb": size_mb,
        "json_samples_checked": generator.result.samples_checked,
    }
    print(f"  loaded: {timings}", flush=True)
    return generator.result, timings


# --- 1. rebuild ----------------------------------------------------------------------------------------


async def read_all_events(dsn: str) -> dict[str, float]:
    async with (
        await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn,
        conn.transaction(),
        conn.cursor(name="bench_read") as cursor,
    ):
        started = time.perf_counter()
        await cursor.execute(READ_EVENTS)
        events = 0
        while rows := await cursor.fetchmany(BATCH):
            events += len(rows)
        seconds = time.perf_counter() - started
    return {"events": events, "seconds": round(seconds, 2), "events_per_s": round(events / seconds, 1)}


async def rebuild(dsn: str, generated: _Generated) -> tuple[dict[str, Any], dict[str, Any]]:
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if done % PROGRESS_EVERY == 0 or done == total:
            rate = done / (time.perf_counter() - started)
            print(f"  replayed {done:,}/{total:,} events  {rate:,.0f}/s", flush=True)

    async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
        async with conn.transaction():
            started = time.perf_counter()
            replay = await rebuild_projections(conn, progress=progress)
            seconds = time.perf_counter() - started
            checks = await _check_rebuild(conn, generated)
            committing = time.perf_counter()
        commit_seconds = time.perf_counter() - committing
    result = {
        "events": replay.events,
        "seconds": round(seconds, 2),
        "events_per_s": round(replay.events / seconds, 1),
        "accounts_rebuilt": len(replay.accounts),
        "transactions_rebuilt": len(replay.transactions),
        "commit_seconds": round(commit_seconds, 2),
    }
    return result, checks


async def _check_rebuild(conn: psycopg.AsyncConnection, generated: _Generated) -> dict[str, Any]:
    cursor = await conn.execute("SELECT count(*) AS n FROM credits")
    row = await cursor.fetchone()
    credits_rows = row["n"] if row else 0
    if credits_rows != len(generated.streams):
        raise AssertionError(f"rebuilt {credits_rows} credits rows for {len(generated.streams)} users")
    cursor = await conn.execute("SELECT count(*) AS n FROM credit_transactions")
    row = await cursor.fetchone()
    transactions = row["n"] if row else 0
    expected_transactions = sum(s.transactions for s in generated.streams)
    if transactions != expected_transactions:
        raise AssertionError(f"rebuilt {transactions} transactions, generated {expected_transactions}")
    sampled = random.Random(SEED).sample(generated.streams, SAMPLE_USERS)
    for stream in sampled:
        cursor = await conn.execute(
            "SELECT balance, reserved_balance, lifetime_earned, lifetime_spent, adjustments, version "
            "FROM credits WHERE user_id = %s",
            (stream.user_id,),
        )
        live = await cursor.fetchone()
        expected = {
            "balance": stream.balance,
            "reserved_balance": stream.reserved,
            "lifetime_earned": stream.lifetime_earned,
            "lifetime_spent": stream.lifetime_spent,
            "adjustments": stream.adjustments,
            "version": stream.version,
        }
        if live != expected:
            raise AssertionError(f"{stream.user_id}: rebuilt {live}, generated {expected}")
    checks: dict[str, Any] = {
        "credits_rows": credits_rows,
        "transactions_rows": transactions,
        "sampled_users_matching": len(sampled),
        "sample": {s.user_id: {"balance": s.balance, "reserved": s.reserved} for s in sampled[:2]},
    }
    print(f"  rebuild checks passed: {checks}", flush=True)
    return checks


# --- 2. reservations -----------------------------------------------------------------------------------


async def drive(op: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    """`CONCURRENCY` workers call `op(n)` (n unique) in a loop; a warm-up, then MEASURE_SECONDS counted."""
    counter = itertools.count()
    latencies_ms: list[float] = []
    finished_at: list[float] = []
    started_at = time.perf_counter()
    measure_from = started_at + WARMUP_SECONDS
    stop_at = measure_from + MEASURE_SECONDS

    async def worker() -> None:
        while (started := time.perf_counter()) < stop_at:
            await op(next(counter))
            finished = time.perf_counter()
            if started >= measure_from:
                latencies_ms.append((finished - started) * 1000)
                finished_at.append(finished - measure_from)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    measured_seconds = time.perf_counter() - measure_from
    # Completions per second of the window; the last entry is the fraction of a second after it, when the
    # requests still in flight finish.
    per_second = [0] * (int(measured_seconds) + 1)
    for at in finished_at:
        per_second[int(at)] += 1
    return {
        "ops_per_s": round(len(latencies_ms) / measured_seconds, 1),
        "p50_ms": round(statistics.median(latencies_ms), 3),
        "p99_ms": round(percentile(latencies_ms, 0.99), 3),
        "ops": len(latencies_ms),
        "ops_incl_warmup": next(counter),
        "completed_per_second": per_second,
    }


async def reservations(dsn: str, generated: _Generated) -> dict[str, Any]:
    # Users that can afford a few reservations each even if the window wraps round the list.
    users = [s.user_id for s in generated.streams if s.balance >= 4 * RESERVE_AMOUNT]
    contended = _user_id(USERS + 1)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(BASELINE_TABLE)
        async with conn.cursor() as cursor, cursor.copy("COPY balances FROM STDIN") as copy:
            for stream in generated.streams:
                await copy.write_row((stream.user_id, stream.balance, stream.reserved))
            await copy.write_row((contended, CONTENDED_BALANCE, 0))
        await conn.execute("ANALYZE balances")
    pool = await create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, name="bench-credits")
    ledger = Ledger(uow=lambda: CreditsUnitOfWork(pool), clock=SystemClock())
    try:
        await ledger.apply(GrantCredits(contended, CONTENDED_BALANCE, "promotion", "bench-contended"))

        def ledger_op(pick: Callable[[int], str]) -> Callable[[int], Awaitable[None]]:
            async def op(n: int) -> None:
                stored = await ledger.apply(ReserveCredits(pick(n), str(uuid.uuid4()), RESERVE_AMOUNT))
                if len(stored) != 1 or not isinstance(stored[0].event, Reserved):
                    raise AssertionError(f"reservation {n} was not held: {stored}")

            return op

        def baseline_op(pick: Callable[[int], str]) -> Callable[[int], Awaitable[None]]:
            async def op(n: int) -> None:
                async with PostgresUnitOfWork(pool) as uow:
                    cursor = await uow.conn.execute(
                        BASELINE_UPDATE, {"amount": RESERVE_AMOUNT, "user_id": pick(n)}
                    )
                    if cursor.rowcount != 1:
                        raise AssertionError(f"baseline reservation {n} updated {cursor.rowcount} rows")

            return op

        def distinct(n: int) -> str:
            return users[n % len(users)]

        def one_user(n: int) -> str:
            return contended

        result: dict[str, Any] = {}
        for variant, pick in (("distinct_users", distinct), ("one_user", one_user)):
            measured = {}
            for target, make in (("baseline_update", baseline_op), ("ledger", ledger_op)):
                print(
                    f"  reservations, {variant}, {target}: {CONCURRENCY} workers, pool {POOL_SIZE}, "
                    f"{WARMUP_SECONDS:g} s warm-up + {MEASURE_SECONDS:g} s …",
                    flush=True,
                )
                measured[target] = await drive(make(pick))
                print(f"    {measured[target]}", flush=True)
            ours, base = measured["ledger"], measured["baseline_update"]
            ratio = {
                "throughput_ratio": round(ours["ops_per_s"] / base["ops_per_s"], 4),
                "p50_ratio": round(ours["p50_ms"] / base["p50_ms"], 2),
                "p99_ratio": round(ours["p99_ms"] / base["p99_ms"], 2),
            }
            print(f"    ratio ledger/baseline: {ratio}", flush=True)
            result[f"reserve_{variant}"] = {**measured, "ratio_to_baseline": ratio}
        async with pool.connection() as conn:
            holds = "SELECT count(*) AS n FROM ledger_holds WHERE user_id = %s"
            cursor = await conn.execute(holds, (contended,))
            row = await cursor.fetchone()
        result["reserve_one_user"]["open_reservations_at_end"] = row["n"] if row else None
        result["reserve_distinct_users"]["users_available"] = len(users)
    finally:
        await pool.close()
    return result


# --- entry point ---------------------------------------------------------------------------------------


async def run() -> dict[str, Any]:
    postgres_url = os.environ.get("POSTGRES_URL")
    if not postgres_url:
        raise SystemExit("credits_ledger needs POSTGRES_URL: set -a; source .stack/env; set +a")
    name = f"bench_credits_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"{postgres_url.rstrip('/')}/{name}"
    try:
        await migrate_database(dsn, ("credits", "funmagic_credits.migrations"))
        print(f"  database {name} migrated; generating {USERS * EVENTS_PER_USER:,} events …", flush=True)
        generated, load = await load_ledger(dsn)
        print("  baseline: reading every event through a server-side cursor …", flush=True)
        read = await read_all_events(dsn)
        print(f"    {read}", flush=True)
        print("  rebuild_projections …", flush=True)
        rebuilt, checks = await rebuild(dsn, generated)
        ratio = round(rebuilt["events_per_s"] / read["events_per_s"], 4)
        print(f"    {rebuilt}", flush=True)
        print(f"    ratio rebuild/read (events/s): {ratio}", flush=True)
        reserved = await reservations(dsn, generated)
    finally:
        # Retried while an autovacuum worker still holds the new database (it cannot be terminated).
        await drop_database(postgres_url, name)
    total = round(time.perf_counter() - started, 1)
    print(f"  total {total} s", flush=True)
    return {
        "rebuild": {**rebuilt, "ratio_to_read": ratio},
        "baseline_read": read,
        "rebuild_checks": checks,
        "load": load,
        **reserved,
        "total_seconds": total,
        "settings": {
            "users": USERS,
            "events_per_user": EVENTS_PER_USER,
            "concurrency": CONCURRENCY,
            "pool_size": POOL_SIZE,
            "warmup_s": WARMUP_SECONDS,
            "measure_s": MEASURE_SECONDS,
            "reserve_amount": RESERVE_AMOUNT,
        },
    }
