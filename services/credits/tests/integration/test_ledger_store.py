"""The ledger on real Postgres, through `Ledger.execute`: the event store, its projections, its outbox, the
rebuild and verify paths, and the operator CLI."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from credits_test_support import every_kind_of_activity, projections, random_activity, rows, run, scalar
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import Envelope, decode
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.topics import CREDITS_EVENTS
from funmagic_credits.adapters.postgres import PostgresLedgerStore, account_from_json
from funmagic_credits.adapters.rebuild import (
    Difference,
    rebuild_projections,
    replay_events,
    verify_projections,
)
from funmagic_credits.application.ports import AccountAsk, Decision, StreamChange
from funmagic_credits.domain.ledger import (
    Account,
    AdjustCredits,
    GrantCredits,
    Granted,
    LedgerRuleBroken,
    RecordPurchase,
    ReserveCredits,
    SettleReservation,
    check_holds_complete,
    check_invariants,
    decide,
    fold,
    idempotency_key,
)

INTEGRATION_EVENT_TYPES = {
    "Granted": "CreditsGranted",
    "Purchased": "CreditsPurchased",
    "Reserved": "CreditsReserved",
    "ReservationRejected": "CreditsReservationRejected",
    "Spent": "CreditsSpent",
    "Released": "CreditsReleased",
    "Adjusted": "CreditsAdjusted",
}


def new_user() -> str:
    return str(uuid.uuid4())


async def rebuild(pool: AsyncConnectionPool) -> Any:
    async with pool.connection() as conn, conn.transaction():
        return await rebuild_projections(conn)


async def verify(pool: AsyncConnectionPool) -> list[Difference]:
    async with pool.connection() as conn, conn.transaction():
        return await verify_projections(conn)


# --- the event store -------------------------------------------------------------------------------------


async def test_each_users_stream_has_gap_free_versions_in_position_order(pool) -> None:
    users = [new_user() for _ in range(4)]
    await random_activity(pool, users, seed=1)
    await every_kind_of_activity(pool, users[0])

    streams = await rows(
        pool,
        "SELECT user_id, array_agg(version ORDER BY position) AS versions, max(version) AS last "
        "FROM ledger_events GROUP BY user_id",
    )
    snapshots = {
        r["user_id"]: r["version"] for r in await rows(pool, "SELECT user_id, version FROM ledger_accounts")
    }

    assert {s["user_id"] for s in streams} == set(users)
    for stream in streams:
        assert stream["versions"] == list(range(1, stream["last"] + 1)), stream["user_id"]
        assert snapshots[stream["user_id"]] == stream["last"], "the snapshot is at the stream's head"


async def test_the_event_store_refuses_a_second_event_at_the_same_version(pool) -> None:
    user = new_user()
    await run(pool, GrantCredits(user, 10, "promotion", "start"))

    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation, match="user_id, version"):
            await conn.execute(
                "INSERT INTO ledger_events (event_id, user_id, version, event_type, data, occurred_at) "
                "VALUES (%s, %s, 1, 'Granted', '{}', now())",
                (uuid.uuid4(), user),
            )


async def test_a_writer_that_bypasses_the_lock_with_a_stale_version_is_refused(pool) -> None:
    """Two writers read version 1; the first appends version 2, the second cannot append it again."""
    user = new_user()
    await run(pool, GrantCredits(user, 10, "promotion", "start"))
    stale = Account(user_id=user, version=1, balance=10, lifetime_earned=10)
    now = datetime.now(UTC)

    first_grant, second_grant = [Granted(5, "promotion", "a", 15)], [Granted(7, "promotion", "b", 17)]

    async with pool.connection() as first, first.transaction():
        await PostgresLedgerStore(first).record_all(
            [StreamChange(stale, fold(stale, first_grant), [Decision("grant:a", first_grant)])], now
        )
    async with pool.connection() as second:
        with pytest.raises(psycopg.errors.UniqueViolation):
            async with second.transaction():
                await PostgresLedgerStore(second).record_all(
                    [StreamChange(stale, fold(stale, second_grant), [Decision("grant:b", second_grant)])], now
                )

    assert await scalar(pool, "SELECT count(*) FROM ledger_events WHERE user_id = %s", user) == 2


async def test_the_event_store_refuses_the_same_cause_twice_for_a_user(pool) -> None:
    user = new_user()
    await run(pool, GrantCredits(user, 10, "promotion", "start"))

    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation, match="ledger_events_cause_key"):
            await conn.execute(
                "INSERT INTO ledger_events (event_id, user_id, version, event_type, data, idempotency_key, "
                "occurred_at) VALUES (%s, %s, 2, 'Granted', '{}', 'grant:promotion:start', now())",
                (uuid.uuid4(), user),
            )


async def test_a_repeated_cause_records_nothing_and_publishes_nothing(pool) -> None:
    user = new_user()
    first = await run(pool, GrantCredits(user, 50, "signup_bonus", user))
    again = await run(pool, GrantCredits(user, 50, "signup_bonus", user))
    other_amount = await run(pool, GrantCredits(user, 99, "signup_bonus", user))

    assert len(first) == 1
    assert again == []
    assert other_amount == []
    assert await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 50
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 1


async def test_a_refused_command_leaves_no_trace(pool) -> None:
    user = new_user()
    await run(pool, GrantCredits(user, 10, "promotion", "start"))
    before = await projections(pool)

    with pytest.raises(LedgerRuleBroken):
        await run(pool, AdjustCredits(user, -11, "admin-1", "too much", "adj-1"))

    assert await projections(pool) == before
    assert await scalar(pool, "SELECT count(*) FROM ledger_events") == 1
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 1
    # …and the same cause can still be applied once it is valid.
    assert len(await run(pool, AdjustCredits(user, -10, "admin-1", "all of it", "adj-1"))) == 1


# --- projections -----------------------------------------------------------------------------------------


async def test_several_streams_are_locked_and_read_in_one_statement_each_with_its_own_causes_and_holds(
    pool,
) -> None:
    ada, bob, new = new_user(), new_user(), new_user()
    await run(pool, GrantCredits(ada, 100, "promotion", "start"))
    await run(pool, GrantCredits(bob, 100, "promotion", "start"))
    await run(pool, ReserveCredits(ada, "task-1", 30))
    await run(pool, ReserveCredits(bob, "task-2", 20))
    asks = [
        # The same cause and reservation ids asked for both: each stream answers for itself.
        AccountAsk(bob, ["reserve:task-1", "reserve:task-2"], ["task-1", "task-2"]),
        AccountAsk(ada, ["reserve:task-1", "reserve:task-2"], ["task-1", "task-2"]),
        AccountAsk(new, ["reserve:task-1"], ["task-1"]),  # a first command: the stream starts empty
    ]

    async with pool.connection() as conn, conn.transaction():
        locked = await PostgresLedgerStore(conn).lock_accounts(asks)

    assert locked[ada].applied == {"reserve:task-1"}
    assert locked[ada].account.open_reservations == {"task-1": 30}
    ada_account = locked[ada].account
    assert (ada_account.balance, ada_account.reserved, ada_account.version) == (70, 30, 2)
    assert locked[bob].applied == {"reserve:task-2"}
    assert locked[bob].account.open_reservations == {"task-2": 20}
    assert locked[new].account == Account(new)
    assert locked[new].applied == frozenset()


async def test_several_streams_are_recorded_in_one_statement_each_at_its_own_versions(pool) -> None:
    ada, bob = new_user(), new_user()
    await run(pool, GrantCredits(ada, 100, "promotion", "start"))
    await run(pool, GrantCredits(bob, 50, "promotion", "start"))
    await run(pool, ReserveCredits(bob, "task-9", 10))
    now = datetime.now(UTC)

    async with pool.connection() as conn, conn.transaction():
        store = PostgresLedgerStore(conn)
        locked = await store.lock_accounts(
            [AccountAsk(ada, ["reserve:task-1"], ["task-1"]), AccountAsk(bob, ["settle:task-9"], ["task-9"])]
        )
        changes = []
        commands = [ReserveCredits(ada, "task-1", 40), SettleReservation(bob, "task-9", 4, "completed")]
        for command in commands:
            before = locked[command.user_id].account
            events = decide(command, before)
            decision = Decision(idempotency_key(command), events)
            changes.append(StreamChange(before, fold(before, events), [decision]))
        stored = await store.record_all(changes, now)

    assert [(s.user_id, s.version, type(s.event).__name__) for s in stored[ada]] == [(ada, 2, "Reserved")]
    assert [(s.user_id, s.version, type(s.event).__name__) for s in stored[bob]] == [
        (bob, 3, "Spent"),
        (bob, 4, "Released"),
    ]
    async with pool.connection() as conn, conn.transaction():
        replay = await _replayed(conn)
    for user in (ada, bob):
        assert await _snapshot(pool, user) == replay[user]
        credits_row = await scalar(
            pool, "SELECT array[balance, reserved_balance, version] FROM credits WHERE user_id = %s", user
        )
        assert credits_row == [replay[user].balance, replay[user].reserved, replay[user].version]
    assert await scalar(pool, "SELECT count(*) FROM ledger_holds WHERE user_id = %s", bob) == 0
    assert await scalar(pool, "SELECT amount FROM ledger_holds WHERE user_id = %s", ada) == 40
    lines = await scalar(
        pool, "SELECT array_agg(type ORDER BY position) FROM credit_transactions WHERE user_id = %s", bob
    )
    assert lines == ["bonus", "spend", "refund"]


async def test_credit_transactions_use_the_seed_types_and_carry_the_balance_after(pool) -> None:
    user = new_user()
    await every_kind_of_activity(pool, user)

    transactions = await rows(
        pool,
        "SELECT type, amount, balance_after, reference_id, description FROM credit_transactions "
        "WHERE user_id = %s ORDER BY position",
        user,
    )

    assert [(t["type"], t["amount"], t["balance_after"], t["reference_id"]) for t in transactions] == [
        ("bonus", 50, 50, user),
        ("purchase", 100, 150, f"cs_{user}"),
        ("spend", -30, 120, "task-a"),  # spent from the hold: the balance was reduced when it was held
        ("spend", -15, 80, "task-b"),
        ("refund", 25, 105, "task-b"),
        ("refund", 20, 105, "task-d"),
        ("admin_adjust", 7, 112, "admin-1"),
        ("admin_adjust", -12, 100, "admin-1"),
    ]
    assert transactions[0]["description"] == "Bonus: signup_bonus"
    assert transactions[-1]["description"] == "chargeback"
    credits = (await rows(pool, "SELECT * FROM credits WHERE user_id = %s", user))[0]
    assert (credits["balance"], credits["reserved_balance"]) == (75, 25)
    assert (credits["lifetime_earned"], credits["lifetime_spent"], credits["adjustments"]) == (150, 45, -5)
    assert credits["version"] == await scalar(
        pool, "SELECT max(version) FROM ledger_events WHERE user_id = %s", user
    )


async def test_the_snapshot_is_the_fold_of_the_users_events(pool) -> None:
    user = new_user()
    await every_kind_of_activity(pool, user)

    snapshot = await _snapshot(pool, user)
    async with pool.connection() as conn, conn.transaction():
        replay = await _replayed(conn)

    check_invariants(snapshot)
    check_holds_complete(snapshot)
    assert snapshot == replay[user]
    assert snapshot.open_reservations == {"task-f": 25}
    assert "open_reservations" not in await scalar(
        pool, "SELECT state FROM ledger_accounts WHERE user_id = %s", user
    ), "the snapshot does not grow with the holds"


async def _snapshot(pool: AsyncConnectionPool, user: str) -> Account:
    """The user's snapshot with every open hold and every ended reservation (decisions load only the ones
    they concern)."""
    state = await scalar(pool, "SELECT state FROM ledger_accounts WHERE user_id = %s", user)
    async with pool.connection() as conn:
        store = PostgresLedgerStore(conn)
        return account_from_json(user, state, await store.holds(user), await store.ended_reservations(user))


async def _replayed(conn: psycopg.AsyncConnection) -> dict[str, Account]:
    return (await replay_events(conn, keep_transactions=False)).accounts


# --- the outbox ------------------------------------------------------------------------------------------


async def test_every_ledger_event_is_in_the_outbox_under_its_own_id(pool) -> None:
    user = new_user()
    cause = Envelope.wrap(
        UserRegistered(
            user_id=user, email="a@example.test", name="A", method="email", registered_at=datetime.now(UTC)
        )
    )
    await run(pool, GrantCredits(user, 50, "signup_bonus", user), caused_by=cause)
    await every_kind_of_activity(pool, new_user())

    events = await rows(
        pool, "SELECT event_id, user_id, event_type, data FROM ledger_events ORDER BY position"
    )
    outbox = await rows(pool, "SELECT event_id, topic, key, payload, headers FROM outbox ORDER BY id")

    assert len(outbox) == len(events)
    for event, row in zip(events, outbox, strict=True):
        envelope = decode(bytes(row["payload"]))
        assert envelope.id == event["event_id"] == row["event_id"]
        assert envelope.type == INTEGRATION_EVENT_TYPES[event["event_type"]]
        assert envelope.source == "credits"
        assert envelope.subject == event["user_id"] == row["key"]
        assert row["topic"] == CREDITS_EVENTS.name
        assert dict(row["headers"]) == {"type": envelope.type, "version": "1"}
        assert envelope.data["user_id"] == event["user_id"]
        for name in ("amount", "balance_after", "reserved_after", "reservation_id"):
            if name in event["data"]:
                assert envelope.data[name] == event["data"][name], name
    first = decode(bytes(outbox[0]["payload"]))
    assert first.causation_id == str(cause.id)
    assert first.correlation_id == cause.correlation_id


# --- rebuild and verify ----------------------------------------------------------------------------------


async def test_rebuild_after_random_activity_reproduces_both_projections_exactly(pool) -> None:
    users = [new_user() for _ in range(5)]
    await random_activity(pool, users, seed=7, steps=300)
    await every_kind_of_activity(pool, users[0])
    before = await projections(pool)
    assert before["credits"]
    assert before["credit_transactions"]

    replay = await rebuild(pool)

    assert await projections(pool) == before
    assert len(replay.accounts) == len(before["credits"])
    assert replay.events == await scalar(pool, "SELECT count(*) FROM ledger_events")


async def test_rebuild_restores_projections_that_were_lost(pool) -> None:
    users = [new_user() for _ in range(3)]
    await random_activity(pool, users, seed=11)
    before = await projections(pool)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM credits WHERE user_id = %s", (users[0],))
        await conn.execute("DELETE FROM credit_transactions WHERE user_id = %s", (users[1],))
        await conn.execute("UPDATE credits SET balance = balance + 1000 WHERE user_id = %s", (users[2],))

    await rebuild(pool)

    assert await projections(pool) == before


async def test_rebuild_keeps_when_each_balance_last_changed(pool) -> None:
    """`credits.updated_at` is the time of the user's last ledger event, before and after a rebuild."""
    users = [new_user() for _ in range(2)]
    for user in users:
        await every_kind_of_activity(pool, user)
    last_event_at = {
        r["user_id"]: r["at"]
        for r in await rows(pool, "SELECT user_id, max(occurred_at) AS at FROM ledger_events GROUP BY 1")
    }

    def updated_at(credits: list[dict]) -> dict[str, datetime]:
        return {r["user_id"]: r["updated_at"] for r in credits}

    before = await projections(pool, with_updated_at=True)
    assert updated_at(before["credits"]) == last_event_at

    await rebuild(pool)

    assert updated_at((await projections(pool, with_updated_at=True))["credits"]) == last_event_at


async def test_a_rebuild_while_commands_run_leaves_consistent_projections(pool) -> None:
    """Rebuilds lock out ledger writes while they replay: no command is lost or projected twice."""
    users = [new_user() for _ in range(4)]
    activity = asyncio.create_task(random_activity(pool, users, seed=13, steps=400))
    rebuilds = 0
    while not activity.done() or rebuilds == 0:
        await rebuild(pool)
        rebuilds += 1
    await activity

    assert rebuilds > 1, "some rebuilds ran while commands did"
    assert await verify(pool) == []
    settled = await projections(pool)
    await rebuild(pool)
    assert await projections(pool) == settled


async def test_readers_see_the_old_projections_while_a_rebuild_is_uncommitted(pool) -> None:
    user = new_user()
    await every_kind_of_activity(pool, user)

    async with pool.connection() as rebuilding, rebuilding.transaction():
        await rebuild_projections(rebuilding)
        async with pool.connection() as reader:
            await reader.execute("SET lock_timeout = '500ms'")
            row = await (
                await reader.execute("SELECT balance FROM credits WHERE user_id = %s", (user,))
            ).fetchone()

    assert row == {"balance": 75}


async def test_verify_finds_nothing_on_a_healthy_database(pool) -> None:
    users = [new_user() for _ in range(4)]
    await random_activity(pool, users, seed=3)
    await every_kind_of_activity(pool, users[0])

    assert await verify(pool) == []


async def test_verify_reports_a_tampered_balance_and_a_tampered_transaction(pool) -> None:
    user, other = new_user(), new_user()
    await every_kind_of_activity(pool, user)
    await every_kind_of_activity(pool, other)
    position = await scalar(
        pool, "SELECT min(position) FROM credit_transactions WHERE user_id = %s AND type = 'spend'", other
    )
    async with pool.connection() as conn:
        await conn.execute("UPDATE credits SET balance = balance + 5 WHERE user_id = %s", (user,))
        await conn.execute("UPDATE credit_transactions SET amount = -1 WHERE position = %s", (position,))

    differences = await verify(pool)

    assert Difference(user, "balance", 80, 75) in differences
    tampered = [d for d in differences if d.field == f"transaction {position}"]
    assert len(tampered) == 1
    assert tampered[0].live[3] == -1
    assert tampered[0].replayed[3] == -30
    assert len(differences) == 2, differences
    # verify changes nothing
    assert await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 80


async def test_verify_reports_missing_and_extra_projection_rows(pool) -> None:
    user = new_user()
    await every_kind_of_activity(pool, user)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM credits WHERE user_id = %s", (user,))
        await conn.execute(
            "INSERT INTO credits VALUES ('ghost', 1, 0, 1, 0, 0, 1, now())",
        )
        await conn.execute(
            "INSERT INTO credit_transactions VALUES (999999, 'ghost', 'bonus', 1, 1, NULL, 'x', now())"
        )

    differences = await verify(pool)

    assert Difference(user, "row", False, True) in differences
    assert Difference("ghost", "row", True, False) in differences
    assert Difference("-", "transaction 999999", True, False) in differences


# --- a property against Postgres -------------------------------------------------------------------------

NAMES = ("ann", "ben", "cat")
pg_commands = st.one_of(
    st.builds(
        lambda u, a, r: ("grant", u, a, r),
        st.sampled_from(NAMES),
        st.integers(-2, 40),
        st.sampled_from("xyz"),
    ),
    st.builds(
        lambda u, a, r: ("purchase", u, a, r),
        st.sampled_from(NAMES),
        st.integers(1, 60),
        st.sampled_from("pqr"),
    ),
    st.builds(
        lambda u, t, a: ("reserve", u, t, a), st.sampled_from(NAMES), st.integers(0, 4), st.integers(0, 50)
    ),
    st.builds(
        lambda u, t, a: ("settle", u, t, a), st.sampled_from(NAMES), st.integers(0, 4), st.integers(0, 70)
    ),
    st.builds(
        lambda u, a, r: ("adjust", u, a, r),
        st.sampled_from(NAMES),
        st.integers(-40, 25),
        st.sampled_from("abc"),
    ),
)


def to_command(spec: tuple, ids: dict[str, str]) -> Any:
    kind, name, x, y = spec
    user = ids[name]
    match kind:
        case "grant":
            return GrantCredits(user, x, "promotion", y)
        case "purchase":
            return RecordPurchase(user, x, "pkg", y, 100, "USD")
        case "reserve":
            return ReserveCredits(user, f"task-{x}", y)
        case "settle":
            return SettleReservation(user, f"task-{x}", y, "completed")
        case "adjust":
            return AdjustCredits(user, x, "admin", "fix", y)
    raise AssertionError(kind)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(pg_commands, min_size=1, max_size=40))
async def test_random_commands_through_postgres_keep_the_invariants_and_rebuild_exactly(
    pool, spec: list[tuple]
) -> None:
    # One database for the whole test: each example gets its own users.
    ids = {name: f"{name}-{uuid.uuid4()}" for name in NAMES}
    model = {user: Account(user_id=user) for user in ids.values()}
    applied: dict[str, set[str]] = {user: set() for user in ids.values()}
    plans: dict[str, list[Any]] = {user: [] for user in ids.values()}
    for item in spec:
        command = to_command(item, ids)
        plans[command.user_id].append(command)

    async def play(user: str) -> None:
        for command in plans[user]:
            key = idempotency_key(command)
            if key in applied[user]:
                assert await run(pool, command) == [], f"{key} was applied already"
                continue
            try:
                expected = decide(command, model[user])
            except LedgerRuleBroken:
                with pytest.raises(LedgerRuleBroken):
                    await run(pool, command)
                continue
            stored = await run(pool, command)
            assert [s.event for s in stored] == expected
            assert [s.version for s in stored] == [model[user].version + i for i in range(1, len(stored) + 1)]
            model[user] = fold(model[user], expected)
            if expected:
                applied[user].add(key)

    await asyncio.gather(*(play(user) for user in ids.values()))

    for user in ids.values():
        snapshot = await _snapshot(pool, user)
        check_invariants(snapshot)
        check_holds_complete(snapshot)
        assert snapshot == model[user]
    before = await projections(pool)
    assert await verify(pool) == []
    await rebuild(pool)
    assert await projections(pool) == before


# --- the CLI ---------------------------------------------------------------------------------------------


def cli_environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "HTTP_PORT": "18003",
        "INTERNAL_API_TOKEN": "credits-cli-test-token-0123456789",
        "AUTH_JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
        "LOG_LEVEL": "WARNING",
    }


async def run_cli(database_url: str, *arguments: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "funmagic_credits",
        *arguments,
        env=cli_environment(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_the_rebuild_and_verify_commands_show_progress_and_exit_zero(database_url, pool) -> None:
    users = [new_user() for _ in range(3)]
    await random_activity(pool, users, seed=5)
    for user in users:
        await every_kind_of_activity(pool, user)
    events = await scalar(pool, "SELECT count(*) FROM ledger_events")
    transactions = await scalar(pool, "SELECT count(*) FROM credit_transactions")
    before = await projections(pool)

    code, out, err = await run_cli(database_url, "rebuild")

    assert code == 0, (out, err)
    assert f"rebuild [{'#' * 30}] 100% {events:,}/{events:,} events" in err
    assert f"rebuilt 3 accounts and {transactions:,} transactions from {events:,} events" in out
    assert await projections(pool) == before

    code, out, err = await run_cli(database_url, "verify")

    assert code == 0, (out, err)
    assert f"verify [{'#' * 30}] 100% {events:,}/{events:,} events" in err
    assert out.strip().endswith("0 difference(s)")


async def test_the_verify_command_exits_one_and_names_what_differs(database_url, pool) -> None:
    user = new_user()
    await every_kind_of_activity(pool, user)
    async with pool.connection() as conn:
        await conn.execute("UPDATE credits SET reserved_balance = 0 WHERE user_id = %s", (user,))

    code, out, err = await run_cli(database_url, "verify")

    assert code == 1, (out, err)
    assert f"{user} reserved_balance: live=0 replayed=25" in out
    assert "1 difference(s)" in out

    code, out, err = await run_cli(database_url, "rebuild")
    assert code == 0, (out, err)
    code, out, err = await run_cli(database_url, "verify")
    assert code == 0, (out, err)


async def test_the_commands_work_on_an_empty_ledger(database_url) -> None:
    code, out, err = await run_cli(database_url, "verify")
    assert code == 0, (out, err)
    assert "0 difference(s)" in out

    code, out, err = await run_cli(database_url, "rebuild")
    assert code == 0, (out, err)
    assert "rebuilt 0 accounts and 0 transactions from 0 events" in out


async def test_seed_packages_fills_an_empty_shop_once(database_url, pool) -> None:
    code, out, err = await run_cli(database_url, "seed-packages")
    assert code == 0, (out, err)
    assert "added Starter, Creator, Studio" in out

    code, out, err = await run_cli(database_url, "seed-packages")

    assert code == 0, (out, err)
    assert "3 already there, none added" in out
    assert await scalar(pool, "SELECT count(*) FROM credit_packages WHERE is_active") == 3


async def test_locking_accounts_runs_its_generic_plan_once_prepared(pool) -> None:
    # The planner would re-plan it at every execution otherwise (its custom plan looks cheaper), a cost
    # on the server larger than running it.
    user = new_user()
    await run(pool, GrantCredits(user, 100, "promotion", "start"))
    async with pool.connection() as conn:
        for _ in range(10):  # psycopg prepares a statement at its sixth execution on a connection
            async with conn.transaction():
                await PostgresLedgerStore(conn).lock_accounts([AccountAsk(user, ["reserve:t"], ["t"])])
        cursor = await conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ("%FOR UPDATE OF a%",),
        )
        plans = await cursor.fetchall()

    assert len(plans) == 1
    assert plans[0]["generic_plans"] >= 4
    assert plans[0]["custom_plans"] == 0
