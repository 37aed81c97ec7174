"""The relay sleeps until a commit notifies it: with the idle poll minutes away, rows still go out at once."""

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.outbox import add_to_outbox

from .conftest import make_envelope, running_relay, scalar, wait_for

IDLE_POLL_SECONDS = 300.0  # never reached in this test: only a NOTIFY can wake the relay


async def test_each_commit_wakes_an_idle_relay_and_stop_ends_its_wait(database_url, pool, producer, topic):
    # Leaving the block stops the relay and waits at most 20 s for it: the stop's NOTIFY ends the wait.
    async with running_relay(database_url, pool, producer, idle_poll_seconds=IDLE_POLL_SECONDS) as relay:
        await wait_for(lambda: _true(relay.is_leader), timeout=30, what="the relay leads")
        for round_ in range(3):  # it goes back to sleep after each page and wakes for the next commit
            async with PostgresUnitOfWork(pool) as uow:
                await add_to_outbox(uow.conn, [(topic, make_envelope("Sequenced", "key", {"seq": round_}))])
            await wait_for(lambda: _outbox_empty(pool), timeout=20, what=f"commit {round_} published")


async def _true(value: bool) -> bool:
    return value


async def _outbox_empty(pool) -> bool:
    return await scalar(pool, "SELECT count(*) FROM outbox") == 0
