"""Batches of users: while every transaction slot of `Ledger.apply` is taken, the commands of other users wait
and share the next transaction — one lock statement for all their streams, one write, one commit — and each
caller still gets its own outcome. A batch that fails runs each user's group alone; a caller cancelled while
waiting is not recorded; a batch of several callers' groups commits even if the caller running it is
cancelled."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from credits_test_support import credits_service, scalar
from psycopg_pool import AsyncConnectionPool

from funmagic_credits.application.ledger import Ledger
from funmagic_credits.domain.ledger import AdjustCredits, GrantCredits, ReserveCredits, Reserved
from funmagic_kit.testing import wait_until, waiting_for_a_lock

pytestmark = pytest.mark.integration


def one_slot_ledger(pool: AsyncConnectionPool) -> Ledger:
    """The service's ledger running one transaction at a time: every command that arrives meanwhile waits."""
    return dataclasses.replace(credits_service(pool).ledger, max_transactions=1)


async def granted_users(ledger: Ledger, count: int, amount: int = 100) -> list[str]:
    users = [str(uuid.uuid4()) for _ in range(count)]
    for user in users:
        await ledger.apply(GrantCredits(user, amount, "promotion", f"start-{user}"))
    return users


async def reservation_transactions(pool: AsyncConnectionPool, users: list[str]) -> int:
    # `xmin` of a row is the transaction that inserted it.
    return await scalar(
        pool,
        "SELECT count(DISTINCT xmin::text) FROM ledger_events "
        "WHERE user_id = ANY(%s) AND event_type = 'Reserved'",
        users,
    )


async def reserved_of(pool: AsyncConnectionPool, user: str) -> int | None:
    return await scalar(pool, "SELECT reserved_balance FROM credits WHERE user_id = %s", user)


@asynccontextmanager
async def row_held(pool: AsyncConnectionPool, user: str) -> AsyncIterator[None]:
    """Another transaction holds `user`'s stream until the block ends."""
    async with pool.connection() as blocker, blocker.transaction():
        await blocker.execute("SELECT 1 FROM ledger_accounts WHERE user_id = %s FOR UPDATE", (user,))
        yield


async def groups_waiting(ledger: Ledger, count: int) -> bool:
    return len(ledger._batches.ready) == count


async def test_commands_of_different_users_share_a_transaction_while_every_slot_is_taken(pool) -> None:
    ledger = one_slot_ledger(pool)
    users = await granted_users(ledger, 40)

    outcomes = await asyncio.gather(*(ledger.apply(ReserveCredits(u, f"task-{u}", 30)) for u in users))

    assert [[type(s.event) for s in stored] for stored in outcomes] == [[Reserved]] * 40
    assert [stored[0].user_id for stored in outcomes] == users, "each caller gets its own user's event"
    assert all(stored[0].version == 2 for stored in outcomes)
    assert await reservation_transactions(pool, users) < 40, "some users shared a transaction"
    for user in users:
        assert await reserved_of(pool, user) == 30
        assert await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", user) == 70
    assert (ledger._batches.ready, ledger._batches.running) == ([], 0)


async def test_waiting_groups_go_together_into_the_next_transaction(pool) -> None:
    ledger = one_slot_ledger(pool)
    first, *others = await granted_users(ledger, 6)
    async with row_held(pool, first):
        leading = asyncio.create_task(ledger.apply(ReserveCredits(first, "task-0", 10)))
        await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the slot's transaction waits")
        queued = [asyncio.create_task(ledger.apply(ReserveCredits(u, "task-1", 10))) for u in others]
        await wait_until(lambda: groups_waiting(ledger, 5), timeout=10, what="five users wait for the slot")

    await asyncio.gather(leading, *queued)
    assert await reservation_transactions(pool, others) == 1, "the five waiting users shared one transaction"
    assert [await reserved_of(pool, u) for u in [first, *others]] == [10] * 6


async def test_a_batch_whose_transaction_fails_runs_each_users_group_alone(pool) -> None:
    ledger = one_slot_ledger(pool)
    first, *others = await granted_users(ledger, 5)
    # Postgres refuses a NUL character in a jsonb string: the batch's write fails with it in.
    unstorable = AdjustCredits(others[1], 5, "admin-1", "bad\x00reason", "adjust-nul")
    async with row_held(pool, first):
        leading = asyncio.create_task(ledger.apply(ReserveCredits(first, "task-0", 10)))
        await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the slot's transaction waits")
        queued = [
            asyncio.create_task(ledger.apply(ReserveCredits(others[0], "task-1", 10))),
            asyncio.create_task(ledger.apply(unstorable)),
            asyncio.create_task(ledger.apply(ReserveCredits(others[2], "task-1", 10))),
            asyncio.create_task(ledger.apply(ReserveCredits(others[3], "task-1", 10))),
        ]
        await wait_until(lambda: groups_waiting(ledger, 4), timeout=10, what="four users wait for the slot")

    outcomes = await asyncio.gather(leading, *queued, return_exceptions=True)

    assert isinstance(outcomes[2], Exception)
    assert [type(o[0].event) for i, o in enumerate(outcomes) if i != 2] == [Reserved] * 4  # type: ignore[index]
    assert [await reserved_of(pool, u) for u in (first, others[0], others[2], others[3])] == [10] * 4
    assert await scalar(pool, "SELECT balance FROM credits WHERE user_id = %s", others[1]) == 100


async def test_a_caller_cancelled_while_its_group_waits_for_a_slot_is_not_recorded(pool) -> None:
    ledger = one_slot_ledger(pool)
    first, cancelled_user, kept_user = await granted_users(ledger, 3)
    async with row_held(pool, first):
        leading = asyncio.create_task(ledger.apply(ReserveCredits(first, "task-0", 10)))
        await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the slot's transaction waits")
        cancelled = asyncio.create_task(ledger.apply(ReserveCredits(cancelled_user, "task-1", 10)))
        kept = asyncio.create_task(ledger.apply(ReserveCredits(kept_user, "task-1", 10)))
        await wait_until(lambda: groups_waiting(ledger, 2), timeout=10, what="two users wait for the slot")
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    assert len(await leading) == 1
    assert len(await asyncio.wait_for(kept, timeout=10)) == 1
    assert await reserved_of(pool, cancelled_user) == 0
    assert await reserved_of(pool, kept_user) == 10
    assert (ledger._batches.ready, ledger._batches.running, ledger._waiting) == ([], 0, {})


async def test_a_caller_cancelled_while_its_batch_runs_leaves_the_batch_to_finish_for_everyone(pool) -> None:
    """A transaction that holds other callers' groups is not the cancelled caller's to roll back: it commits,
    and the cancelled caller's command with it (asking again with the same cause is a repeat)."""
    ledger = one_slot_ledger(pool)
    first, leader_user, other_user = await granted_users(ledger, 3)
    async with row_held(pool, other_user):
        async with row_held(pool, first):
            leading = asyncio.create_task(ledger.apply(ReserveCredits(first, "task-0", 10)))
            await wait_until(
                lambda: waiting_for_a_lock(pool), timeout=10, what="the slot's transaction waits"
            )
            batch_leader = asyncio.create_task(ledger.apply(ReserveCredits(leader_user, "task-1", 10)))
            other = asyncio.create_task(ledger.apply(ReserveCredits(other_user, "task-1", 10)))
            await wait_until(
                lambda: groups_waiting(ledger, 2), timeout=10, what="two users wait for the slot"
            )
        # The first transaction commits; the next batch (both users, led by the first to wait) waits for
        # `other_user`'s stream, still held.
        assert len(await leading) == 1
        await wait_until(lambda: groups_waiting(ledger, 0), timeout=10, what="the batch took both users")
        await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the batch waits for the row")
        batch_leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await batch_leader
        assert not other.done()

    assert len(await asyncio.wait_for(other, timeout=10)) == 1
    assert await reserved_of(pool, other_user) == 10
    assert await reserved_of(pool, leader_user) == 10
    assert await ledger.apply(ReserveCredits(leader_user, "task-1", 10)) == [], "a repeat records nothing"
    assert (ledger._batches.ready, ledger._batches.running, ledger._waiting) == ([], 0, {})
