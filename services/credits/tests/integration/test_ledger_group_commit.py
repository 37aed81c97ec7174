"""Group commit: the commands of one user that arrive while one of theirs is being committed share the next
transaction (one lock, one snapshot write, one commit), and each caller still gets its own outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from credits_test_support import credits_service, scalar
from psycopg_pool import AsyncConnectionPool

from funmagic_credits.adapters.postgres import PostgresLedgerStore
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.application.ports import AccountAsk, Decision, StreamChange
from funmagic_credits.domain.ledger import (
    AdjustCredits,
    GrantCredits,
    InvalidAmount,
    ReserveCredits,
    Reserved,
    SettleReservation,
    fold,
)
from funmagic_kit.logs import bind_correlation_id
from funmagic_kit.testing import wait_until, waiting_for_a_lock

pytestmark = pytest.mark.integration


def new_user() -> str:
    return str(uuid.uuid4())


async def transactions_that_wrote(pool: AsyncConnectionPool, user: str) -> int:
    # `xmin` of a row is the transaction that inserted it.
    return await scalar(pool, "SELECT count(DISTINCT xmin::text) FROM ledger_events WHERE user_id = %s", user)


async def test_concurrent_commands_of_one_user_share_transactions_and_each_gets_its_own_events(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 1_000, "promotion", "start"))

    outcomes = await asyncio.gather(*(ledger.apply(ReserveCredits(user, f"task-{n}", 10)) for n in range(60)))

    assert [[type(s.event) for s in stored] for stored in outcomes] == [[Reserved]] * 60
    assert sorted(stored[0].event.reservation_id for stored in outcomes) == sorted(
        f"task-{n}" for n in range(60)
    )
    versions = sorted(stored[0].version for stored in outcomes)
    assert versions == list(range(2, 62)), "one stream, no version twice, none skipped"
    assert await transactions_that_wrote(pool, user) < 61, "some commands shared a transaction"
    balance, reserved = (
        await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user),
        await scalar(pool, "SELECT reserved_balance FROM credits WHERE user_id = %s", user),
    )
    assert (balance, reserved) == (400, 600)
    assert await scalar(pool, "SELECT count(*) FROM ledger_holds WHERE user_id = %s", user) == 60


async def test_each_command_of_a_group_is_published_with_its_own_callers_correlation_id(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))

    def apply_as(request_id: str, reservation_id: str) -> asyncio.Task:
        with bind_correlation_id(request_id):  # the task copies the context of the request it serves
            return asyncio.create_task(ledger.apply(ReserveCredits(user, reservation_id, 10)))

    outcomes = await asyncio.gather(*(apply_as(f"request-{n}", f"task-{n}") for n in range(8)))

    published = await scalar(
        pool,
        "SELECT jsonb_object_agg(convert_from(payload, 'UTF8')::jsonb #>> '{data,reservation_id}', "
        "convert_from(payload, 'UTF8')::jsonb ->> 'correlation_id') FROM outbox "
        "WHERE convert_from(payload, 'UTF8')::jsonb ->> 'type' = 'CreditsReserved'",
    )
    assert published == {f"task-{n}": f"request-{n}" for n in range(8)}
    assert await transactions_that_wrote(pool, user) < 9, "some shared a transaction"
    assert all(len(stored) == 1 for stored in outcomes)


async def test_a_refused_command_in_a_group_gets_its_error_and_the_others_are_recorded(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))

    outcomes = await asyncio.gather(
        ledger.apply(ReserveCredits(user, "task-1", 30)),
        ledger.apply(AdjustCredits(user, 0, "admin-1", "nothing", "adjust-zero")),
        ledger.apply(ReserveCredits(user, "task-2", 30)),
        ledger.apply(ReserveCredits(user, "task-3", 50)),  # more than is left once the two above are held
        return_exceptions=True,
    )

    first, refused, second, third = outcomes
    assert isinstance(refused, InvalidAmount)
    assert [type(s.event).__name__ for s in first] == ["Reserved"]
    assert [type(s.event).__name__ for s in second] == ["Reserved"]
    assert [type(s.event).__name__ for s in third] == ["ReservationRejected"]
    assert await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 40


async def test_a_group_whose_transaction_fails_runs_again_one_command_at_a_time(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))
    # Postgres refuses a NUL character in a jsonb string: the group's write fails with it in.
    unstorable = AdjustCredits(user, 5, "admin-1", "bad\x00reason", "adjust-nul")

    outcomes = await asyncio.gather(
        ledger.apply(ReserveCredits(user, "task-1", 10)),
        ledger.apply(ReserveCredits(user, "task-2", 10)),
        ledger.apply(unstorable),
        ledger.apply(ReserveCredits(user, "task-3", 10)),
        return_exceptions=True,
    )

    assert isinstance(outcomes[2], Exception)
    assert [[type(s.event).__name__ for s in o] for o in (outcomes[0], outcomes[1], outcomes[3])] == [
        ["Reserved"]
    ] * 3
    assert await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 70


async def test_a_cause_repeated_within_a_group_is_recorded_once(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))

    outcomes = await asyncio.gather(*(ledger.apply(ReserveCredits(user, "task-1", 25)) for _ in range(5)))

    assert sorted(len(stored) for stored in outcomes) == [0, 0, 0, 0, 1]
    assert await scalar(pool, "SELECT reserved_balance FROM credits WHERE user_id = %s", user) == 25


@asynccontextmanager
async def three_reservations_queued_behind_a_held_row(
    pool: AsyncConnectionPool, ledger: Ledger, user: str
) -> AsyncIterator[tuple[asyncio.Task, asyncio.Task, asyncio.Task]]:
    """task-1 leads and waits for the user's row, held by another transaction until the block ends; task-2
    and task-3 wait behind it for the next group."""
    async with pool.connection() as blocker, blocker.transaction():
        await blocker.execute("SELECT 1 FROM ledger_accounts WHERE user_id = %s FOR UPDATE", (user,))
        leading = asyncio.create_task(ledger.apply(ReserveCredits(user, "task-1", 10)))
        await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the leader waits for the row")
        second = asyncio.create_task(ledger.apply(ReserveCredits(user, "task-2", 10)))
        third = asyncio.create_task(ledger.apply(ReserveCredits(user, "task-3", 10)))
        await wait_until(lambda: _queued(ledger, user, 2), timeout=10, what="two commands queued")
        yield leading, second, third


async def test_a_caller_cancelled_while_waiting_is_not_recorded_and_the_others_are(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))
    async with three_reservations_queued_behind_a_held_row(pool, ledger, user) as (
        leading,
        cancelled,
        queued,
    ):
        cancelled.cancel()

    assert len(await leading) == 1
    assert len(await queued) == 1
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await _holds_of(pool, user) == ["task-1", "task-3"]


async def test_a_caller_cancelled_as_it_is_given_the_lead_passes_it_on(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))
    async with three_reservations_queued_behind_a_held_row(pool, ledger, user) as (
        leading,
        given_the_lead,
        queued,
    ):
        pass_the_lead = ledger._pass_the_lead

        def pass_it_and_cancel_the_caller(user_id: str, waiting: list) -> None:
            # The instant the lead is passed, before its caller runs again: a client gone at that moment.
            pass_the_lead(user_id, waiting)
            given_the_lead.cancel()

        object.__setattr__(ledger, "_pass_the_lead", pass_it_and_cancel_the_caller)

    assert len(await leading) == 1
    with pytest.raises(asyncio.CancelledError):
        await given_the_lead
    object.__setattr__(ledger, "_pass_the_lead", pass_the_lead)
    assert len(await asyncio.wait_for(queued, timeout=10)) == 1, "the next caller took the lead"
    assert len(await ledger.apply(ReserveCredits(user, "task-4", 10))) == 1
    assert ledger._waiting == {}
    assert await _holds_of(pool, user) == ["task-1", "task-3", "task-4"]


async def _holds_of(pool: AsyncConnectionPool, user: str) -> list[str]:
    return await scalar(
        pool, "SELECT array_agg(reservation_id ORDER BY 1) FROM ledger_holds WHERE user_id = %s", user
    )


async def _queued(ledger: Ledger, user: str, count: int) -> bool:
    return len(ledger._waiting.get(user, ())) == count


async def test_a_decision_that_waited_for_the_lock_reads_what_the_one_before_it_committed(pool) -> None:
    """The lock and the decision's reads are one statement; when another transaction wrote the stream while
    this one waited for the lock, the reads are made again after it."""
    user = new_user()
    await credits_service(pool).ledger.apply(GrantCredits(user, 50, "promotion", "start"))
    asked = AccountAsk(user, causes=["reserve:task-1", "settle:task-1"], reservations=["task-1"])

    async def lock_in_a_second_transaction():
        async with pool.connection() as conn, conn.transaction():
            return (await PostgresLedgerStore(conn).lock_accounts([asked]))[user]

    async with pool.connection() as first, first.transaction():
        store = PostgresLedgerStore(first)
        locked = (await store.lock_accounts([asked]))[user]
        waiting = asyncio.create_task(lock_in_a_second_transaction())
        await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the second waits")
        reserved = [Reserved("task-1", 20, 30, 20)]
        after = fold(locked.account, reserved)
        change = StreamChange(locked.account, after, [Decision("reserve:task-1", reserved)])
        await store.record_all([change], datetime.now(UTC))

    seen = await waiting
    assert seen.applied == {"reserve:task-1"}
    assert seen.account.open_reservations == {"task-1": 20}
    assert (seen.account.version, seen.account.balance, seen.account.reserved) == (2, 30, 20)


async def test_settling_loads_only_the_hold_it_concerns(pool) -> None:
    ledger = credits_service(pool).ledger
    user = new_user()
    await ledger.apply(GrantCredits(user, 100, "promotion", "start"))
    for n in range(5):
        await ledger.apply(ReserveCredits(user, f"task-{n}", 10))

    async with pool.connection() as conn, conn.transaction():
        asked = AccountAsk(user, causes=["settle:task-3"], reservations=["task-3"])
        locked = (await PostgresLedgerStore(conn).lock_accounts([asked]))[user]
    await ledger.apply(SettleReservation(user, "task-3", 4, "completed"))

    assert locked.account.open_reservations == {"task-3": 10}
    assert locked.account.reserved == 50
    holds = await scalar(
        pool, "SELECT jsonb_object_agg(reservation_id, amount) FROM ledger_holds WHERE user_id = %s", user
    )
    assert holds == {"task-0": 10, "task-1": 10, "task-2": 10, "task-4": 10}
