"""A relay killed at the worst moments loses nothing and duplicates no effect."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.outbox import add_to_outbox

from .conftest import (
    consumed,
    make_envelope,
    message_count,
    running_consumer,
    scalar,
    typed_subscription,
    wait_for,
    wait_until_consumed,
)
from .test_inbox import increment_counter


def start_relay(
    database_url: str, kafka: str, failpoint_dir: Path, failpoint: str | None
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "FUNMAGIC_FAILPOINTS": f"{failpoint}=hang" if failpoint else "",
        "FUNMAGIC_FAILPOINT_DIR": str(failpoint_dir),
    }
    return subprocess.Popen([sys.executable, "-m", "funmagic_kit.relay"], env=env)


async def place_order_and_announce_it(pool, topic: str, order_id: str):
    envelope = make_envelope("CounterIncremented", subject=order_id)
    async with PostgresUnitOfWork(pool) as uow:
        await uow.conn.execute("INSERT INTO orders (id) VALUES (%s)", (order_id,))
        await add_to_outbox(uow.conn, [(topic, envelope)])
    return envelope


async def wait_for_marker(path: Path, process: subprocess.Popen) -> None:
    async def reached() -> bool:
        assert process.poll() is None, f"relay exited early with {process.returncode}"
        return path.exists()

    await wait_for(reached, timeout=30, what=f"the relay to reach {path.name}")


@pytest.mark.parametrize("failpoint", ["relay.before_publish", "relay.after_publish"])
async def test_a_relay_killed_around_publishing_delivers_the_event_exactly_once_after_restart(
    stack, database_url, pool, producer, topic, tmp_path, failpoint
) -> None:
    await place_order_and_announce_it(pool, topic, "order-1")

    doomed = start_relay(database_url, stack.kafka, tmp_path, failpoint)
    try:
        await wait_for_marker(tmp_path / failpoint, doomed)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    finally:
        if doomed.poll() is None:
            doomed.kill()

    # The state change committed, and the event is still owed: either never published, or published
    # without being marked done.
    assert await scalar(pool, "SELECT count(*) FROM orders") == 1
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 1
    assert await message_count(stack, topic) == (0 if failpoint == "relay.before_publish" else 1)

    restarted = start_relay(database_url, stack.kafka, tmp_path, None)
    try:
        subscription = typed_subscription(topic, {"CounterIncremented": increment_counter})
        async with running_consumer(stack, pool, producer, subscription) as consumer:
            await wait_for(lambda: _outbox_empty(pool), what="the restarted relay to publish")
            expected_messages = 1 if failpoint == "relay.before_publish" else 2
            assert await message_count(stack, topic) == expected_messages
            await wait_until_consumed(
                consumer, expected_messages, outcomes=("handled", "duplicate"), what="every delivery consumed"
            )
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(restarted.wait, 20) == 0

    assert await scalar(pool, "SELECT value FROM counters WHERE name = 'order-1'") == 1
    assert consumed(consumer, "handled") == 1
    assert consumed(consumer, "duplicate") == expected_messages - 1


async def _outbox_empty(pool) -> bool:
    return await scalar(pool, "SELECT count(*) FROM outbox") == 0
