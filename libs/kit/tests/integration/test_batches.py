"""Batched consumption: what one fetch returns is handled in one transaction, in order per key; a failing
event in the middle of a batch is isolated (the others commit once, it is retried or dead-lettered alone);
a consumer killed between a batch's commit and its offset commit loses nothing and applies nothing twice.
A batch handler (`Subscription.on_batch`) takes each run of consecutive events of its type in one call, with
the same guarantees."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import pq

from funmagic_contracts.envelope import Envelope, encode
from funmagic_contracts.topics import DLQ_ERROR_HEADER, dead_letter_topic
from funmagic_kit.consumer import Subscription
from funmagic_kit.errors import PermanentError
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.testing import adhoc_event_class

from .conftest import (
    consumed,
    make_envelope,
    read_all,
    running_consumer,
    scalar,
    typed_subscription,
    wait_for,
    wait_until_consumed,
)
from .consumer_process import record_numbered, record_numbered_runs

KEYS = 10


def numbered(key: str, seq: int, **data: object) -> Envelope:
    return make_envelope("Numbered", subject=key, data={"seq": seq, **data})


async def send_numbered(producer, topic: str, count: int, **special: dict) -> list[Envelope]:
    """`count` events over KEYS keys, each key's events numbered 0, 1, 2… in the order sent; `special`
    maps a position (as text: "7") to extra data for the event at that position."""
    envelopes = []
    for n in range(count):
        key = f"key-{n % KEYS}"
        envelope = numbered(key, n // KEYS, **special.get(str(n), {}))
        envelopes.append(envelope)
        await producer.send(topic, encode(envelope), key=key.encode())
    await producer.flush()
    return envelopes


async def handled_rows(pool) -> list[dict]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT key, seq, txid FROM handled ORDER BY id")
        return await cursor.fetchall()


def assert_each_effect_once_in_order(rows: list[dict], sent: int) -> None:
    """The effects of the `sent` events of `send_numbered`: each once, and in order per key."""
    assert sorted((row["key"], row["seq"]) for row in rows) == sorted(
        (f"key-{n % KEYS}", n // KEYS) for n in range(sent)
    )
    assert_in_order_per_key(rows)


def assert_in_order_per_key(rows: list[dict]) -> None:
    by_key: dict[str, list[int]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row["seq"])
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"{key} handled out of order: {seqs}"


async def test_a_backlog_is_handled_in_few_transactions_in_order_per_key(
    stack, pool, producer, topic
) -> None:
    await send_numbered(producer, topic, 300)
    subscription = typed_subscription(topic, {"Numbered": record_numbered})

    async with running_consumer(stack, pool, producer, subscription, max_batch=100) as consumer:
        await wait_until_consumed(consumer, 300, what="the backlog of 300 events")

    rows = await handled_rows(pool)
    assert len(rows) == 300
    assert {(row["key"], row["seq"]) for row in rows} == {
        (f"key-{k}", s) for k in range(KEYS) for s in range(30)
    }
    assert_in_order_per_key(rows)
    transactions = {row["txid"] for row in rows}
    # One transaction per fetch (at most 100 events each), not one per event.
    assert len(transactions) <= 30, f"{len(transactions)} transactions for 300 events"
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 300


async def test_a_failure_in_the_middle_of_a_batch_is_retried_alone_and_the_rest_commit_once(
    stack, pool, producer, topic
) -> None:
    tries: list[str] = []

    async def fails_twice_when_asked(event, envelope, uow) -> None:
        await record_numbered(event, envelope, uow)
        if envelope.data.get("fail") == "twice":
            tries.append(str(envelope.id))
            if len(tries) <= 2:
                raise ConnectionError("provider unavailable")

    await send_numbered(producer, topic, 100, **{"55": {"fail": "twice"}})
    subscription = typed_subscription(topic, {"Numbered": fails_twice_when_asked})

    async with running_consumer(
        stack, pool, producer, subscription, max_batch=100, retry_backoff_ms=10
    ) as consumer:
        await wait_until_consumed(consumer, 100, what="all 100 events, one of them retried")

    # The rolled-back batch left no trace: every event's effect is there exactly once.
    assert_each_effect_once_in_order(await handled_rows(pool), 100)
    # Failed once in its batch (which then ran one event at a time), once alone, then succeeded alone.
    assert len(tries) == 3
    assert consumed(consumer, "retried") == 1
    assert consumed(consumer, "handled") == 100
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 100


async def test_an_event_that_always_fails_in_a_batch_is_dead_lettered_alone(
    stack, pool, producer, topic
) -> None:
    async def refuses_when_asked(event, envelope, uow) -> None:
        if envelope.data.get("fail") == "always":
            raise PermanentError("this one can never be handled")
        await record_numbered(event, envelope, uow)

    envelopes = await send_numbered(producer, topic, 60, **{"33": {"fail": "always"}})
    subscription = typed_subscription(topic, {"Numbered": refuses_when_asked})

    async with running_consumer(stack, pool, producer, subscription, max_batch=100) as consumer:
        await wait_until_consumed(
            consumer, 60, outcomes=("handled", "dead_lettered"), what="59 handled and one dead letter"
        )

    (dead,) = await read_all(stack, dead_letter_topic(topic), 1)
    assert dead.value == encode(envelopes[33])
    assert b"can never be handled" in dict(dead.headers)[DLQ_ERROR_HEADER]
    assert consumed(consumer, "handled") == 59
    rows = await handled_rows(pool)
    assert len(rows) == 59
    assert (envelopes[33].subject, envelopes[33].data["seq"]) not in {(r["key"], r["seq"]) for r in rows}
    assert_in_order_per_key(rows)


async def test_a_lone_event_runs_its_first_try_pipelined(stack, pool, producer, topic) -> None:
    """Alone in its fetch, an event's statements go out without waiting for each other, like a batch's."""
    modes: list[object] = []

    async def notes_the_mode(event, envelope, uow) -> None:
        modes.append(uow.conn.pgconn.pipeline_status)
        await record_numbered(event, envelope, uow)

    await send_numbered(producer, topic, 1)
    subscription = typed_subscription(topic, {"Numbered": notes_the_mode})

    async with running_consumer(stack, pool, producer, subscription) as consumer:
        await wait_until_consumed(consumer, 1, what="the lone event")

    assert modes == [pq.PipelineStatus.ON]
    assert len(await handled_rows(pool)) == 1


async def test_a_handler_that_recovers_from_a_clash_in_a_savepoint_does_so_pipelined(
    stack, pool, producer, topic
) -> None:
    """psycopg answers a savepoint's statements before leaving it: the clash is raised inside the handler's
    `try`, as it would be statement by statement."""
    modes: list[object] = []

    async def records_or_notes_the_clash(event, envelope, uow) -> None:
        modes.append(uow.conn.pgconn.pipeline_status)
        await uow.conn.execute("INSERT INTO orders (id) VALUES ('taken') ON CONFLICT DO NOTHING")
        try:
            async with uow.conn.transaction():  # a savepoint: the clash must not end the transaction
                await uow.conn.execute("INSERT INTO orders (id) VALUES ('taken')")
        except psycopg.errors.UniqueViolation:
            await uow.conn.execute("INSERT INTO orders (id) VALUES (%s)", (f"clash-{envelope.subject}",))

    await send_numbered(producer, topic, 1)
    subscription = typed_subscription(topic, {"Numbered": records_or_notes_the_clash})

    async with running_consumer(stack, pool, producer, subscription) as consumer:
        await wait_until_consumed(consumer, 1, what="the event")

    assert modes == [pq.PipelineStatus.ON]
    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id LIKE 'clash-%%'") == 1
    assert consumed(consumer, "retried") == 0


async def test_an_event_whose_pipelined_try_failed_is_tried_again_statement_by_statement(
    stack, pool, producer, topic
) -> None:
    """In pipeline mode an error surfaces at the next read or at COMMIT: the retry runs without the pipeline,
    so whatever failed fails (or succeeds) where it happens."""
    modes: list[object] = []

    async def fails_its_first_try(event, envelope, uow) -> None:
        modes.append(uow.conn.pgconn.pipeline_status)
        await record_numbered(event, envelope, uow)
        if len(modes) == 1:
            raise ConnectionError("provider unavailable")

    await send_numbered(producer, topic, 1)
    subscription = typed_subscription(topic, {"Numbered": fails_its_first_try})

    async with running_consumer(stack, pool, producer, subscription, retry_backoff_ms=5) as consumer:
        await wait_until_consumed(consumer, 1, what="the event, handled on its second try")

    assert modes == [pq.PipelineStatus.ON, pq.PipelineStatus.OFF]
    assert len(await handled_rows(pool)) == 1
    assert consumed(consumer, "retried") == 1


def start_consumer_process(
    database_url: str, kafka: str, topic: str, group: str, marker_dir: Path, *, batched: bool = False
):
    env = {
        **os.environ,
        "BATCHED": "1" if batched else "0",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "TOPIC": topic,
        "GROUP": group,
        "FUNMAGIC_FAILPOINTS": "consumer.batch_committed=hang",
        "FUNMAGIC_FAILPOINT_DIR": str(marker_dir),
    }
    script = Path(__file__).with_name("consumer_process.py")
    return subprocess.Popen([sys.executable, str(script)], env=env)


@pytest.mark.parametrize("batched", [False, True], ids=["per-event handler", "batch handler"])
async def test_a_consumer_killed_between_a_batch_commit_and_its_offset_commit_applies_nothing_twice(
    stack, database_url, pool, producer, topic, tmp_path, batched
) -> None:
    await send_numbered(producer, topic, 200)
    group = f"killed-{uuid.uuid4().hex[:8]}"
    doomed = start_consumer_process(database_url, stack.kafka, topic, group, tmp_path, batched=batched)
    try:

        async def committed_a_batch() -> bool:
            assert doomed.poll() is None, f"the consumer exited early with {doomed.returncode}"
            return (tmp_path / "consumer.batch_committed").exists()

        await wait_for(committed_a_batch, timeout=60, what="the consumer to commit its first batch")
        doomed.send_signal(signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 10)
    finally:
        if doomed.poll() is None:
            doomed.kill()

    before_restart = len(await handled_rows(pool))
    assert 1 < before_restart < 200, "the first batch is committed, the rest is not"

    numbered = adhoc_event_class("Numbered", topic)
    subscription = (
        Subscription(topic).on_batch(numbered, record_numbered_runs)
        if batched
        else Subscription(topic).on(numbered, record_numbered)
    )
    async with running_consumer(stack, pool, producer, subscription, name=group) as consumer:
        await wait_until_consumed(
            consumer, 200, outcomes=("handled", "duplicate"), what="every event read again after the kill"
        )

    # The killed batch's offsets were never committed: its events came again and the inbox knew them.
    assert consumed(consumer, "duplicate") == before_restart
    assert consumed(consumer, "handled") == 200 - before_restart
    rows = await handled_rows(pool)
    assert len(rows) == 200
    assert len({(row["key"], row["seq"]) for row in rows}) == 200
    assert_in_order_per_key(rows)


# --- batch handlers ----------------------------------------------------------------------------------


class RunsSeen:
    """A batch handler of `Numbered` that records each run it is given and its effects with one statement;
    `fails(envelope, calls_with_it)` decides whether a call raises (after writing, so a rollback shows)."""

    def __init__(self, fails=lambda envelope, calls_with_it: None) -> None:
        self.runs: list[list[str]] = []
        self.correlation_ids: list[str | None] = []  # what the logs of each call were bound to
        self._fails = fails
        self._calls_with: dict[str, int] = {}

    async def __call__(self, deliveries, uow) -> None:
        self.runs.append([str(envelope.id) for _, envelope in deliveries])
        self.correlation_ids.append(current_correlation_id())
        if uow is not None:
            await record_numbered_runs(deliveries, uow)
        for _, envelope in deliveries:
            calls = self._calls_with[str(envelope.id)] = self._calls_with.get(str(envelope.id), 0) + 1
            error = self._fails(envelope, calls)
            if error is not None:
                raise error


async def test_a_batch_handler_takes_each_run_of_its_events_in_one_call_in_order(
    stack, pool, producer, topic
) -> None:
    """One key (one partition), so the order across types is the order sent: the per-event `Marker`
    handler runs between the runs of `Numbered` around it, and no run reaches across a marker."""
    sent: list[Envelope] = []
    for n in range(30):
        if n in (10, 20):
            envelope = make_envelope("Marker", subject="one-key", data={"at": n})
        else:
            envelope = numbered("one-key", n)
        sent.append(envelope)
        await producer.send(topic, encode(envelope), key=b"one-key")
    await producer.flush()
    runs = RunsSeen()

    async def record_marker(event, envelope, uow) -> None:
        await uow.conn.execute(
            "INSERT INTO handled (key, seq, txid) VALUES ('marker', %s, txid_current())",
            (envelope.data["at"],),
        )

    subscription = Subscription(topic).on_batch(adhoc_event_class("Numbered", topic), runs)
    subscription.on(adhoc_event_class("Marker", topic), record_marker)
    async with running_consumer(stack, pool, producer, subscription, max_batch=100) as consumer:
        await wait_until_consumed(consumer, 30, what="28 numbered events and 2 markers")

    rows = await handled_rows(pool)
    assert [row["seq"] for row in rows] == list(range(30)), "every effect once, in the order sent"
    order = {str(envelope.id): n for n, envelope in enumerate(sent)}
    for run in runs.runs:
        positions = [order[event_id] for event_id in run]
        assert positions == list(range(positions[0], positions[0] + len(positions))), "a run is consecutive"
        assert not any(positions[0] < marker <= positions[-1] for marker in (10, 20)), "no run spans a marker"
    assert sum(len(run) for run in runs.runs) == 28
    # A backlog of 30 comes in one or two fetches: three runs, or a few more — never one call per event.
    assert len(runs.runs) <= 6, runs.runs
    assert consumed(consumer, "handled") == 30


async def test_a_failed_batch_handler_call_is_retried_one_event_at_a_time(
    stack, pool, producer, topic
) -> None:
    """The flagged event fails its first two calls: the batch rolls back, then every event runs as a run of
    one — those before it commit, it succeeds on its second try alone, those after it follow in order."""
    envelopes = await send_numbered(producer, topic, 50, **{"27": {"fail": "twice"}})
    flagged = str(envelopes[27].id)

    def fails_twice(envelope, calls_with_it):
        if str(envelope.id) == flagged and calls_with_it <= 2:
            return ConnectionError("provider unavailable")
        return None

    runs = RunsSeen(fails_twice)
    subscription = Subscription(topic).on_batch(adhoc_event_class("Numbered", topic), runs)
    async with running_consumer(
        stack, pool, producer, subscription, max_batch=100, retry_backoff_ms=10
    ) as consumer:
        await wait_until_consumed(consumer, 50, what="all 50 events, one of them retried")

    # The rolled-back batch left nothing; every effect is there once.
    assert_each_effect_once_in_order(await handled_rows(pool), 50)
    calls = zip(runs.runs, runs.correlation_ids, strict=True)
    calls_with_flagged = [(run, bound) for run, bound in calls if flagged in run]
    assert len(calls_with_flagged) == 3
    # Alone, the event is retried under its own correlation id; a run of many binds none.
    assert calls_with_flagged[1:] == [([flagged], envelopes[27].correlation_id)] * 2
    assert calls_with_flagged[0][1] is None
    assert consumed(consumer, "retried") == 1
    assert consumed(consumer, "handled") == 50
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 50


async def test_an_event_a_batch_handler_can_never_handle_is_dead_lettered_alone(
    stack, pool, producer, topic
) -> None:
    envelopes = await send_numbered(producer, topic, 40, **{"13": {"fail": "always"}})
    doomed = str(envelopes[13].id)
    runs = RunsSeen(
        lambda envelope, _: (
            PermanentError("this one can never be handled") if str(envelope.id) == doomed else None
        )
    )
    subscription = Subscription(topic).on_batch(adhoc_event_class("Numbered", topic), runs)

    async with running_consumer(stack, pool, producer, subscription, max_batch=100) as consumer:
        await wait_until_consumed(
            consumer, 40, outcomes=("handled", "dead_lettered"), what="39 handled and one dead letter"
        )

    (dead,) = await read_all(stack, dead_letter_topic(topic), 1)
    assert dead.value == encode(envelopes[13])
    assert b"can never be handled" in dict(dead.headers)[DLQ_ERROR_HEADER]
    rows = await handled_rows(pool)
    assert len(rows) == 39
    assert (envelopes[13].subject, envelopes[13].data["seq"]) not in {(r["key"], r["seq"]) for r in rows}
    assert_in_order_per_key(rows)


async def test_without_a_database_runs_go_in_one_call_until_one_fails_then_one_at_a_time(
    stack, producer, topic
) -> None:
    """No transaction to roll back (the gateway): the runs before a failing call stay handled; the failing
    run and everything after it go one event at a time, in order."""
    envelopes = await send_numbered(producer, topic, 40, **{"25": {"fail": "once"}})
    flagged = str(envelopes[25].id)
    handled_order: list[str] = []

    async def remembers(deliveries, uow) -> None:
        assert uow is None
        ids = [str(envelope.id) for _, envelope in deliveries]
        if flagged in ids and len(ids) > 1:
            raise ConnectionError("Redis restarting")
        handled_order.extend(ids)

    subscription = Subscription(topic).on_batch(adhoc_event_class("Numbered", topic), remembers)
    async with running_consumer(stack, None, producer, subscription, max_batch=100) as consumer:
        await wait_until_consumed(consumer, 40, what="all 40 events without a database")

    assert sorted(handled_order) == sorted(str(envelope.id) for envelope in envelopes), "each exactly once"
    by_key: dict[str, list[int]] = {}
    position = {str(envelope.id): envelope for envelope in envelopes}
    for event_id in handled_order:
        envelope = position[event_id]
        by_key.setdefault(envelope.subject, []).append(envelope.data["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values()), by_key
    assert consumed(consumer, "handled") == 40


async def test_events_of_several_types_registered_with_one_batch_handler_share_its_runs(
    stack, pool, producer, topic
) -> None:
    class Projection:
        def __init__(self) -> None:
            self.runs: list[list[str]] = []

        async def write(self, deliveries, uow) -> None:
            self.runs.append([envelope.type for _, envelope in deliveries])
            await record_numbered_runs(deliveries, uow)

    for n in range(20):
        envelope = make_envelope("Started" if n % 2 else "Progressed", subject="one-key", data={"seq": n})
        await producer.send(topic, encode(envelope), key=b"one-key")
    await producer.flush()
    projection = Projection()
    # Two accesses of `projection.write` are two bound-method objects: still one handler.
    subscription = (
        Subscription(topic)
        .on_batch(adhoc_event_class("Started", topic), projection.write)
        .on_batch(adhoc_event_class("Progressed", topic), projection.write)
    )
    async with running_consumer(stack, pool, producer, subscription, max_batch=100) as consumer:
        await wait_until_consumed(consumer, 20, what="20 events of two types")

    assert [row["seq"] for row in await handled_rows(pool)] == list(range(20))
    assert sum(len(run) for run in projection.runs) == 20
    assert len(projection.runs) <= 2, projection.runs  # one fetch, or two: never a call per type change


async def test_a_gathering_consumer_is_handed_what_the_broker_collected_not_each_event_as_it_comes(
    stack, pool, producer, topic
) -> None:
    """With `fetch_min_bytes`, the broker holds the consumer's fetch until that much has arrived (or its
    wait passes: a minute here, longer than the test waits). A large first event, handled alone, shows the
    consumer already waiting at the broker; a small event sent after it is then handed over only with those
    that follow it, up to a large one that completes the size — a consumer woken by each record would take
    the small event in a run of its own."""
    gathers = 40_000
    runs = RunsSeen()
    subscription = Subscription(topic).on_batch(adhoc_event_class("Numbered", topic), runs)
    large = {"pad": "x" * gathers}
    async with running_consumer(
        stack, pool, producer, subscription, fetch_min_bytes=gathers, fetch_max_wait_ms=60_000
    ) as consumer:
        await producer.send_and_wait(topic, encode(numbered("one-key", 0, **large)), key=b"one-key")
        await wait_until_consumed(consumer, 1, what="a first event larger than what the broker gathers")
        lone = numbered("one-key", 1)
        await producer.send_and_wait(topic, encode(lone), key=b"one-key")
        for n in range(2, 12):
            await producer.send(topic, encode(numbered("one-key", n)), key=b"one-key")
        await producer.send_and_wait(topic, encode(numbered("one-key", 12, **large)), key=b"one-key")
        await wait_until_consumed(consumer, 13, what="the small events and the large one after them")

    run_of_lone = next(run for run in runs.runs if str(lone.id) in run)
    assert len(run_of_lone) == 12, "the small event waited at the broker for the others, up to the large one"
    assert [row["seq"] for row in await handled_rows(pool)] == list(range(13)), "each once, in order"
