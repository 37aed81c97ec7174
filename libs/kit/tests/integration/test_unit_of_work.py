"""The unit of work: one transaction for the state change and the events it publishes; after-commit callbacks
run only once it has committed."""

from __future__ import annotations

import itertools
import os
import socket
import struct
import tempfile
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import pq
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import ContractError, Envelope, decode
from funmagic_contracts.identity.events import UserRegistered
from funmagic_kit.audit import AdminAction
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.errors import ConcurrencyConflict, TransientError
from funmagic_kit.logs import bind_correlation_id
from funmagic_kit.pipelined import Sent


async def test_after_commit_callbacks_run_once_the_rows_are_visible(pool) -> None:
    seen: list[int] = []

    async def count_outbox() -> int:
        async with PostgresUnitOfWork(pool) as other:
            row = await (await other.conn.execute("SELECT count(*) AS n FROM outbox")).fetchone()
            return row["n"]

    async with PostgresUnitOfWork(pool) as uow:
        await uow.conn.execute(
            "INSERT INTO outbox (event_id, topic, key, payload) VALUES (gen_random_uuid(), 't', 'k', 'x')"
        )
        uow.after_commit(lambda: seen.append(1))
        assert seen == []  # not before the commit
    assert seen == [1]
    assert await count_outbox() == 1


async def test_after_commit_callbacks_never_run_on_rollback(pool) -> None:
    seen: list[int] = []

    async def failing_handler() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            uow.after_commit(lambda: seen.append(1))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing_handler()
    assert seen == []


def _registered(user_id: str) -> UserRegistered:
    return UserRegistered(
        user_id=user_id,
        email="ada@example.com",
        name="Ada",
        method="email",
        registered_at=datetime.now(UTC),
    )


async def _outbox_envelopes(pool) -> list[Envelope]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    return [decode(bytes(row["payload"])) for row in rows]


async def test_published_events_reach_the_outbox_with_the_commit_in_publishing_order(pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        uow.publish(_registered("user-1"))
        uow.publish(_registered("user-2"))
        assert await _outbox_envelopes(pool) == []  # nothing before the commit

    envelopes = await _outbox_envelopes(pool)
    assert [e.subject for e in envelopes] == ["user-1", "user-2"]
    assert all(e.type == "UserRegistered" and e.source == "identity" for e in envelopes)


async def test_a_rolled_back_unit_of_work_publishes_nothing(pool) -> None:
    async def failing_use_case() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            uow.publish(_registered("user-3"))
            raise RuntimeError("the use case failed after publishing")

    with pytest.raises(RuntimeError):
        await failing_use_case()

    assert await _outbox_envelopes(pool) == []


async def test_an_event_caused_by_another_carries_its_correlation_and_causation(pool) -> None:
    cause = Envelope.wrap(_registered("user-4"), correlation_id="flow-42")

    async with PostgresUnitOfWork(pool) as uow:
        uow.publish(_registered("user-4"), caused_by=cause)

    (envelope,) = await _outbox_envelopes(pool)
    assert envelope.correlation_id == "flow-42"
    assert envelope.causation_id == str(cause.id)


async def test_without_a_cause_the_request_correlation_id_is_used(pool) -> None:
    with bind_correlation_id("request-7"):
        async with PostgresUnitOfWork(pool) as uow:
            uow.publish(_registered("user-5"))

    (envelope,) = await _outbox_envelopes(pool)
    assert envelope.correlation_id == "request-7"
    assert envelope.causation_id is None


async def test_an_invalid_event_fails_where_it_is_published_not_at_commit(pool) -> None:
    class NotAnEvent:
        pass

    async with PostgresUnitOfWork(pool) as uow:
        with pytest.raises(ContractError):
            uow.publish(NotAnEvent())  # type: ignore[arg-type]
    assert await _outbox_envelopes(pool) == []


class _CountingUnitOfWork(PostgresUnitOfWork):
    """A service's unit of work binds its stores to the connection when the transaction opens."""

    def bind(self, conn) -> None:
        self.bound_to = conn


async def test_a_subclass_binds_its_stores_to_the_open_transaction(pool) -> None:
    async with _CountingUnitOfWork(pool) as uow:
        assert uow.bound_to is uow.conn


@pytest.mark.parametrize("mode", ["transaction", "reading", "pipelined"])
async def test_a_connection_lost_mid_unit_of_work_is_a_transient_error(pool, mode: str) -> None:
    """What a Postgres killed under a handler looks like to it: the statement after fails."""

    async def handler_whose_connection_dies() -> None:
        uow = PostgresUnitOfWork(pool)
        async with uow.reading() if mode == "reading" else uow.pipelined() if mode == "pipelined" else uow:
            row = await (await uow.conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
            async with pool.connection() as other:
                await other.execute("SELECT pg_terminate_backend(%s)", (row["pid"],))
            await uow.conn.execute("SELECT 1")

    with pytest.raises(TransientError):
        await handler_whose_connection_dies()
    # The pool threw the dead connection away: the next unit of work works, in a transaction.
    async with PostgresUnitOfWork(pool) as uow:
        assert uow.conn.autocommit is False
        assert (await (await uow.conn.execute("SELECT 1 AS one")).fetchone())["one"] == 1


async def test_no_connection_to_be_had_is_a_transient_error() -> None:
    """A server that is down: the checkout waits `checkout_timeout`, then the unit of work says so."""
    unreachable = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:1/nothing", min_size=1, open=False, timeout=0.5
    )
    await unreachable.open(wait=False)
    try:
        with pytest.raises(TransientError):
            async with PostgresUnitOfWork(unreachable):
                pass
    finally:
        await unreachable.close()


# --- reading(): statements on their own, no transaction -----------------------------------------------------


async def test_a_reading_unit_of_work_runs_without_a_transaction(pool) -> None:
    async with PostgresUnitOfWork(pool).reading() as uow:
        row = await (await uow.conn.execute("SELECT now() = statement_timestamp() AS outside")).fetchone()
        # Inside a transaction now() is the transaction's start; outside one each statement is its own.
        assert row["outside"] is True
        assert uow.conn.info.transaction_status.name == "IDLE"


async def test_a_reading_unit_of_work_gives_its_connection_back_in_transaction_mode(pool) -> None:
    """A connection back in the pool in autocommit would let the next unit of work run without a
    transaction: the rollback below would then undo nothing."""
    small = await create_pool(pool.conninfo, min_size=1, max_size=1)
    try:
        async with PostgresUnitOfWork(small).reading() as uow:
            await uow.conn.execute("SELECT 1")

        async def failing_write() -> None:
            async with PostgresUnitOfWork(small) as uow:
                assert uow.conn.autocommit is False
                await uow.conn.execute(
                    "INSERT INTO outbox (event_id, topic, key, payload) "
                    "VALUES (gen_random_uuid(), 'r', 'k', 'x')"
                )
                raise RuntimeError("the use case failed after writing")

        with pytest.raises(RuntimeError):
            await failing_write()
        async with PostgresUnitOfWork(small).reading() as uow:
            cursor = await uow.conn.execute("SELECT count(*) AS n FROM outbox WHERE topic = 'r'")
            row = await cursor.fetchone()
        assert row["n"] == 0
    finally:
        await small.close()


@pytest.mark.parametrize(
    "use",
    [
        lambda uow: uow.publish(_registered("user-r")),
        lambda uow: uow.record(AdminAction(action="tool.updated", subject_type="tool", subject_id="t")),
        lambda uow: uow.after_commit(lambda: None),
    ],
    ids=["publish", "record", "after_commit"],
)
async def test_a_reading_unit_of_work_refuses_what_needs_a_commit(pool, use) -> None:
    async with PostgresUnitOfWork(pool).reading() as uow:
        with pytest.raises(RuntimeError, match="needs a transaction"):
            use(uow)
    assert await _outbox_envelopes(pool) == []


# --- pipelined(): statements sent without waiting for their results -----------------------------------------


async def _published(pool) -> list[str]:
    """The subjects of the events in the outbox (the plain rows these tests write are not events)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT payload FROM outbox WHERE topic = %s ORDER BY id", (UserRegistered.TOPIC,)
        )
        return [decode(bytes(row["payload"])).subject for row in await cursor.fetchall()]


_INSERT_ORDER = "INSERT INTO outbox (event_id, topic, key, payload) VALUES (gen_random_uuid(), %s, 'k', 'x')"


async def test_a_pipelined_unit_of_work_commits_its_writes_and_events_together(pool) -> None:
    async with PostgresUnitOfWork(pool).pipelined() as uow:
        assert uow.conn.pgconn.pipeline_status == pq.PipelineStatus.ON
        await uow.conn.execute(_INSERT_ORDER, ("p",))
        await uow.conn.execute(_INSERT_ORDER, ("p",))
        uow.publish(_registered("user-p"))
        # A read waits for the writes sent before it, and sees them.
        cursor = await uow.conn.execute("SELECT count(*) AS n FROM outbox WHERE topic = 'p'")
        assert (await cursor.fetchone())["n"] == 2

    assert await _published(pool) == ["user-p"]
    async with PostgresUnitOfWork(pool) as uow:
        assert uow.conn.pgconn.pipeline_status == pq.PipelineStatus.OFF  # back to the pool without it
        cursor = await uow.conn.execute("SELECT count(*) AS n FROM outbox WHERE topic = 'p'")
        assert (await cursor.fetchone())["n"] == 2


async def test_a_failing_statement_of_a_pipelined_unit_of_work_fails_the_commit_and_undoes_everything(
    pool,
) -> None:
    """The error surfaces at COMMIT, not at its statement: the writes around it are rolled back with it."""
    small = await create_pool(pool.conninfo, min_size=1, max_size=1)
    duplicate = (
        "INSERT INTO outbox (id, event_id, topic, key, payload) VALUES (-1, gen_random_uuid(), 'f', 'k', 'x')"
    )

    async def writes_with_a_clash_in_the_middle() -> None:
        async with PostgresUnitOfWork(small).pipelined() as uow:
            await uow.conn.execute(_INSERT_ORDER, ("f",))
            await uow.conn.execute(duplicate)
            await uow.conn.execute(duplicate)  # the unique violation; sent, not yet answered
            await uow.conn.execute(_INSERT_ORDER, ("f",))
            uow.publish(_registered("user-f"))

    try:
        with pytest.raises(ConcurrencyConflict):
            await writes_with_a_clash_in_the_middle()

        # The pool's one connection is usable again, in a transaction, out of pipeline mode.
        async with PostgresUnitOfWork(small) as uow:
            assert uow.conn.pgconn.pipeline_status == pq.PipelineStatus.OFF
            assert uow.conn.autocommit is False
            cursor = await uow.conn.execute("SELECT count(*) AS n FROM outbox WHERE topic = 'f'")
            assert (await cursor.fetchone())["n"] == 0
        assert await _published(pool) == []
    finally:
        await small.close()


async def test_a_pipelined_unit_of_work_that_raises_rolls_back(pool) -> None:
    seen: list[int] = []

    async def failing_handler() -> None:
        async with PostgresUnitOfWork(pool).pipelined() as uow:
            await uow.conn.execute(_INSERT_ORDER, ("r",))
            uow.publish(_registered("user-r"))
            uow.after_commit(lambda: seen.append(1))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing_handler()
    assert seen == []
    assert await _published(pool) == []


async def test_a_pipelined_unit_of_work_that_raises_gives_its_connection_back_in_transaction_mode(
    pool,
) -> None:
    small = await create_pool(pool.conninfo, min_size=1, max_size=1)

    async def failing_handler() -> None:
        async with PostgresUnitOfWork(small).pipelined() as uow:
            await uow.conn.execute(_INSERT_ORDER, ("a",))
            raise RuntimeError("the handler failed")

    try:
        with pytest.raises(RuntimeError):
            await failing_handler()
        async with PostgresUnitOfWork(small) as uow:
            assert uow.conn.autocommit is False
            assert uow.conn.info.transaction_status.name == "INTRANS"
    finally:
        await small.close()


async def test_a_savepoint_inside_a_pipelined_unit_of_work_undoes_only_its_own_statements(pool) -> None:
    """A handler may try a statement under a savepoint (psycopg's nested `transaction()`) and carry on."""

    async def failing_attempt(uow: PostgresUnitOfWork) -> None:
        async with uow.conn.transaction():
            await uow.conn.execute(_INSERT_ORDER, ("s",))
            raise RuntimeError("undo this one")

    async with PostgresUnitOfWork(pool).pipelined() as uow:
        await uow.conn.execute(_INSERT_ORDER, ("s",))
        with pytest.raises(RuntimeError):
            await failing_attempt(uow)
        await uow.conn.execute(_INSERT_ORDER, ("s",))
    async with PostgresUnitOfWork(pool) as uow:
        cursor = await uow.conn.execute("SELECT count(*) AS n FROM outbox WHERE topic = 's'")
        assert (await cursor.fetchone())["n"] == 2


# --- what a unit of work costs in round trips, read from the client's protocol trace ------------------------


def _round_trips(trace: str) -> int:
    """How many times the client sent and then waited for the server: each run of frontend (F) messages
    followed by backend (B) ones."""
    senders = [line.split("\t", 1)[0] for line in trace.splitlines() if line[:2] in ("F\t", "B\t")]
    return sum(1 for sent, answered in itertools.pairwise(senders) if (sent, answered) == ("F", "B"))


async def _traced_round_trips(pool, work) -> int:
    """Round trips of `work(uow_factory)` on a one-connection pool whose connection is traced."""
    small = await create_pool(pool.conninfo, min_size=1, max_size=1)
    try:
        with tempfile.TemporaryFile("w+") as trace:
            async with small.connection() as conn:
                conn.pgconn.trace(trace.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            await work(lambda: PostgresUnitOfWork(small))
            async with small.connection() as conn:
                conn.pgconn.untrace()
            trace.seek(0)
            return _round_trips(trace.read())
    finally:
        await small.close()


async def test_a_pipelined_unit_of_work_waits_once_per_read_and_once_at_the_end(pool) -> None:
    """BEGIN leaves with the first read; the writes after it, the outbox rows and COMMIT with the end."""

    async def claim_then_write(unit_of_work) -> None:
        async with unit_of_work().pipelined() as uow:
            await (await uow.conn.execute("SELECT 1 AS one")).fetchone()
            await uow.conn.execute(_INSERT_ORDER, ("w",))
            await uow.conn.execute(_INSERT_ORDER, ("w",))
            uow.publish(_registered("user-w"))

    async def statement_by_statement(unit_of_work) -> None:
        async with unit_of_work() as uow:
            await (await uow.conn.execute("SELECT 1 AS one")).fetchone()
            await uow.conn.execute(_INSERT_ORDER, ("w",))
            await uow.conn.execute(_INSERT_ORDER, ("w",))
            uow.publish(_registered("user-w"))

    assert await _traced_round_trips(pool, claim_then_write) == 2
    # BEGIN, the read, two writes, the outbox rows, COMMIT: one round trip each.
    assert await _traced_round_trips(pool, statement_by_statement) == 6
    assert await _published(pool) == ["user-w", "user-w"]


async def test_reads_sent_before_the_first_answer_share_one_round_trip(pool) -> None:
    """A store's `send_…` reads, answered after all were sent: BEGIN and three reads in one round trip."""

    async def count(uow: PostgresUnitOfWork, topic: str) -> Sent[int]:
        async def read(cursor) -> int:
            return (await cursor.fetchone())["n"]

        cursor = await uow.conn.execute("SELECT count(*) AS n FROM outbox WHERE topic = %s", (topic,))
        return Sent(cursor, read)

    answers: list[int] = []

    async def sent_together(unit_of_work) -> None:
        async with unit_of_work().pipelined() as uow:
            await uow.conn.execute(_INSERT_ORDER, ("x",))
            sent = [await count(uow, topic) for topic in ("x", "y", "x")]
            answers.extend([await read.answer() for read in sent])

    async def answered_one_by_one(unit_of_work) -> None:
        async with unit_of_work().pipelined() as uow:
            answers.extend([await (await count(uow, topic)).answer() for topic in ("x", "y", "x")])

    assert await _traced_round_trips(pool, sent_together) == 2  # the reads, then the end
    assert answers == [1, 0, 1]  # each its own answer, in order; a read sees the write sent before it
    assert await _traced_round_trips(pool, answered_one_by_one) == 4
    assert answers[3:] == [1, 0, 1]


# --- what a unit of work costs in writes to the server's socket -----------------------------------------


def _data_segments_sent(conn) -> int:
    """How many TCP segments with data the connection's socket has sent (the kernel's `tcp_info`): on a
    loopback connection with TCP_NODELAY, as libpq sets it, one per write of the client."""
    sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    finally:
        sock.close()
    return struct.unpack_from("I", info, _TCPI_DATA_SEGS_OUT)[0]


_TCPI_DATA_SEGS_OUT = 156  # offset of `tcpi_data_segs_out` in Linux's `struct tcp_info` (since 4.6)


async def test_a_pipelined_unit_of_work_sends_its_statements_together_not_one_by_one(pool) -> None:
    """Twenty writes after a read leave together with the outbox rows and COMMIT: psycopg's own `execute` in
    a pipeline sends each at once, a system call (and a wakeup of the server's process) apiece."""
    small = await create_pool(pool.conninfo, min_size=1, max_size=1)
    try:
        async with small.connection() as conn:
            before = _data_segments_sent(conn)
        async with PostgresUnitOfWork(small).pipelined() as uow:
            await (await uow.conn.execute("SELECT 1 AS one")).fetchone()
            for _ in range(20):
                await uow.conn.execute(_INSERT_ORDER, ("t",))
            uow.publish(_registered("user-t"))
        async with small.connection() as conn:
            sent = _data_segments_sent(conn) - before
    finally:
        await small.close()
    # BEGIN with the read and a flush request; the writes, the outbox rows and COMMIT; then psycopg's end of
    # the pipeline: the sync, which libpq sends on its own, and a flush request for the answers.
    assert sent == 4
    assert await _published(pool) == ["user-t"]


# --- the pool's cursors ------------------------------------------------------------------------------------


async def test_a_pool_cursor_sets_everything_psycopgs_own_cursor_sets(pool) -> None:
    """QueuingCursor builds itself without psycopg's `__init__` (to skip the adapters' copy): a psycopg
    upgrade that adds a cursor attribute fails here instead of in a statement."""
    async with pool.connection() as conn:
        ours = conn.cursor()
        theirs = psycopg.AsyncCursor(conn)
        slots = [name for cls in type(theirs).__mro__ for name in getattr(cls, "__slots__", ())]
        set_by_psycopg = {name for name in slots if name != "__weakref__" and hasattr(theirs, name)}
        assert set_by_psycopg, "psycopg's cursor keeps its state in slots"
        assert {name for name in set_by_psycopg if not hasattr(ours, name)} == set()
        assert ours.adapters is conn.adapters  # shared, not copied
        assert theirs.adapters is not conn.adapters


async def test_a_pool_cursor_dumps_and_loads_every_kind_of_parameter(pool) -> None:
    when = datetime(2026, 12, 7, 4, 30, tzinfo=UTC)
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with PostgresUnitOfWork(pool) as uow:
        cursor = await uow.conn.execute(
            "SELECT %s::uuid AS id, %s::text AS name, %s::int AS n, %s::timestamptz AS at, "
            "%b::uuid[] AS ids, %s::jsonb AS doc",
            (ids[0], "ünï", 7, when, ids, Jsonb({"a": [1, 2]})),
        )
        row = await cursor.fetchone()
    assert row == {"id": ids[0], "name": "ünï", "n": 7, "at": when, "ids": ids, "doc": {"a": [1, 2]}}
