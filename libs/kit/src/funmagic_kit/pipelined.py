"""One transaction in psycopg's pipeline mode that waits only where something is read.

psycopg's own `transaction()` inside a pipeline syncs it (a round trip) after BEGIN, at the block's end and
again at the pipeline's end: a transaction with one read cost five round trips, more than the same
transaction without a pipeline (four). Here BEGIN and COMMIT are statements of the pipeline, sent on a
connection in autocommit (so psycopg adds no BEGIN of its own): BEGIN leaves with the first read, which is
one round trip, and COMMIT with the pipeline's one sync at the end — two round trips.

Both are queued the way psycopg queues its own BEGIN and COMMIT in a pipeline (`_exec_command`): sent with
whatever goes out next, not each with a send and an event-loop wait of its own as `execute` would (the two
were 6.6 % of the tasks service's samples under load). A private method of psycopg (pinned in
constraints.txt); the round-trip test in libs/kit/tests/integration/test_unit_of_work.py fails if it
changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from types import TracebackType
from typing import Any, Generic, TypeVar

import psycopg
from psycopg import pq
from psycopg.abc import Params, PQGen, Query
from psycopg.rows import AsyncRowFactory, Row

__all__ = ["PipelinedTransaction", "QueuingCursor", "Sent"]

T = TypeVar("T")

_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


async def _queue(conn: psycopg.AsyncConnection, command: bytes) -> None:
    """Put `command` in the pipeline, unsent; its result is checked when the pipeline syncs."""
    await conn.wait(conn._exec_command(command))
    _hand_to_libpq(conn)


def _hand_to_libpq(conn: psycopg.BaseConnection[Any]) -> None:
    """Move the statements psycopg queued for the pipeline into libpq's output buffer, in order, unsent.

    psycopg's communication sends its queue one statement at a time, a flush (a system call, and a wakeup
    of the server's process) after each; libpq in pipeline mode buffers what it is given until a flush. So
    what is handed over here leaves in one write with the next read or the pipeline's sync."""
    pipeline = conn._pipeline
    if pipeline is not None:
        commands = pipeline.command_queue
        while commands:
            commands.popleft()()


class PipelinedTransaction:
    """`async with PipelinedTransaction(conn):` — statements sent without waiting for their results,
    committed together on a clean exit, rolled back on an exception.

    A failed statement's error surfaces at the next read or at the end (raised from here), and everything
    is rolled back. The connection leaves in transaction mode (autocommit off) and out of pipeline mode, or
    closed when it could not be put back so (a pool then replaces it): it never goes back to a pool in
    autocommit, where the next transaction would run without one.
    """

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn
        self._pipeline: AbstractAsyncContextManager[object] | None = None

    async def __aenter__(self) -> None:
        conn = self._conn
        await conn.set_autocommit(True)  # a flag of the client: no round trip
        try:
            pipeline = conn.pipeline()
            await pipeline.__aenter__()
            self._pipeline = pipeline
            await _queue(conn, b"BEGIN")
        except BaseException as error:
            await self._end(error)
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        failure: psycopg.Error | None = None
        if exc is None:
            try:
                await _queue(self._conn, b"COMMIT")
            except psycopg.Error as error:  # the connection is gone
                failure = error
        await self._end(exc or failure)
        if failure is not None:
            raise failure

    async def _end(self, error: BaseException | None) -> None:
        """Leave the pipeline (its sync answers every statement still pending), roll back unless committed,
        and put the connection back in transaction mode. Raises the first statement error a clean exit met."""
        conn = self._conn
        failure: psycopg.Error | None = None
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            try:
                # With an error already on its way, psycopg logs what the sync raises and carries on.
                await pipeline.__aexit__(type(error) if error else None, error, None)
            except psycopg.Error as sync_error:
                failure = sync_error
        try:
            if conn.info.transaction_status in _OPEN:
                await conn.execute("ROLLBACK")
            await conn.set_autocommit(False)
        except psycopg.Error:
            with suppress(psycopg.Error):
                await conn.close()
        if failure is not None and error is None:
            raise failure


class QueuingCursor(psycopg.AsyncCursor[Row]):
    """A cursor whose statements, in pipeline mode, wait in libpq's buffer for whatever goes out next.

    psycopg's `execute` in a pipeline sends each statement at once: a flush and an event-loop wait per
    statement. Here a statement is handed to libpq and leaves with the next read or the pipeline's sync,
    together with the rest; its results and errors are taken then, as psycopg takes them in pipeline mode
    anyway (an error surfaces at a later read or at the end, never at its own `execute`). Outside a
    pipeline it is psycopg's cursor. psycopg's own `_execute_gen` with its communication left out (pinned
    in constraints.txt; libs/kit/tests/integration/test_unit_of_work.py counts the writes).

    It also uses its connection's adapters instead of a copy of them: psycopg copies the map for every
    cursor so that a cursor can register dumpers and loaders of its own, which nothing here does (register
    them on the connection). Every `conn.execute` makes a cursor, and the copy, the callback it needs and
    the dumpers looked up again in the fresh map were a third of a statement's client CPU in a pipelined
    transaction (~18 → ~13 µs).
    """

    def __init__(
        self, connection: psycopg.AsyncConnection[Any], *, row_factory: AsyncRowFactory[Row] | None = None
    ) -> None:
        # psycopg's BaseCursor.__init__ and AsyncCursor.__init__ without the adapters' copy and its callback
        # (test_unit_of_work.py checks that every attribute psycopg's cursor sets is set here too).
        self._conn = connection
        self.format = pq.Format.TEXT
        self._pgconn = connection.pgconn
        self._adapters = connection.adapters
        self.arraysize = 1
        self._closed = False
        self._last_query: Query | None = None
        self._reset()
        self._row_factory = row_factory or connection.row_factory

    def _execute_gen(
        self,
        query: Query,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> PQGen[None]:
        pipeline = self._conn._pipeline
        if pipeline is None:
            return (yield from super()._execute_gen(query, params, prepare=prepare, binary=binary))
        yield from self._start_query(query)
        pgq = self._convert_query(query, params)
        yield from self._maybe_prepare_gen(pgq, prepare=prepare, binary=binary)
        _hand_to_libpq(self._conn)  # instead of psycopg's communication: nothing is sent here
        self._last_query = query
        yield from self._conn._prepared.maintain_gen(self._conn)


class Sent(Generic[T]):
    """A read sent and not yet answered (`funmagic_kit.ports.SentRead`): `await sent.answer()` reads it.

    In a pipelined unit of work, reads sent one after another before the first answer share one round
    trip: the first `answer()` sends them all and takes every result (a store's `send_…` methods return
    these, its plain methods answer at once). Outside a pipeline each read was answered when sent.
    """

    __slots__ = ("_cursor", "_read")

    def __init__(
        self, cursor: psycopg.AsyncCursor[Any], read: Callable[[psycopg.AsyncCursor[Any]], Awaitable[T]]
    ) -> None:
        self._cursor = cursor
        self._read = read

    async def answer(self) -> T:
        return await self._read(self._cursor)
