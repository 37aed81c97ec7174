"""Postgres access: one async connection pool per process and a unit of work per command or message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_kit.audit import AdminAction, current_actor
from funmagic_kit.audit_log import record_admin_action
from funmagic_kit.errors import ConcurrencyConflict, TransientError
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.outbox import OutboxMessage, add_raw_to_outbox, outbox_message
from funmagic_kit.pipelined import PipelinedTransaction, QueuingCursor
from funmagic_kit.request_once import IdempotencyKeyReused, RequestKey
from funmagic_kit.tracing import current_traceparent

__all__ = ["PostgresUnitOfWork", "create_pool", "translate_db_error"]


# How long a unit of work waits for a connection from the pool. While Postgres is down the pool has none to
# give, and every caller would wait this long for its 503: a few seconds, not the driver's 30.
CHECKOUT_TIMEOUT_SECONDS = 5.0


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    name: str = "funmagic",
    checkout_timeout: float = CHECKOUT_TIMEOUT_SECONDS,
) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        timeout=checkout_timeout,
        # QueuingCursor: in a pipelined unit of work, statements leave together with the next read or the
        # end instead of one write each; anywhere else it is psycopg's cursor.
        kwargs={"row_factory": dict_row, "cursor_factory": QueuingCursor},
        # No `check` on checkout: it costs a round trip per unit of work. A connection that died while
        # idle fails its unit of work (retried by the consumer or the client) and the pool replaces it.
    )
    await pool.open(wait=True, timeout=30)
    return pool


def translate_db_error(error: psycopg.Error) -> Exception:
    """Map a driver error onto the platform hierarchy (the caller raises it `from` the original)."""
    if isinstance(error, psycopg.errors.UniqueViolation | psycopg.errors.SerializationFailure):
        return ConcurrencyConflict(str(error).splitlines()[0])
    if isinstance(error, psycopg.OperationalError | psycopg.errors.DeadlockDetected):
        return TransientError(str(error).splitlines()[0])
    return error


class PostgresUnitOfWork:
    """One transaction: the state change, its outbox rows and its inbox row commit together or not at all.

    `async with PostgresUnitOfWork(pool) as uow:` commits on a clean exit and rolls back on an exception;
    handlers never call commit themselves. Events given to `publish` are written to the outbox just before
    the commit, in the same transaction: the one way any service publishes.

    A service subclasses it to bind its stores to the connection (`bind`), so application code reaches
    them as `uow.tasks`… and never sees the connection or the driver.
    """

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._conn_cm: object | None = None
        self._tx_cm: object | None = None
        self._after_commit: list[Callable[[], None]] = []
        self._outbox: list[OutboxMessage] = []
        self._audit: list[tuple[AdminAction, str | None]] = []
        self._created: list[tuple[RequestKey, str]] = []
        self._in_transaction = True
        self._pipelined = False
        self.conn: psycopg.AsyncConnection  # set on enter

    def reading(self) -> Self:
        """This unit of work only reads, each statement on its own (autocommit): no BEGIN and no COMMIT, two
        round trips fewer. For reads of one statement each: two statements may see two different moments.
        Publishing, recording or a write that must be undone on failure has no place in it (refused)."""
        self._in_transaction = False
        return self

    def pipelined(self) -> Self:
        """Statements whose results nobody reads are sent without waiting for them (psycopg's pipeline mode):
        the transaction costs a round trip per read and one at the end (BEGIN leaves with the first read,
        COMMIT with the end: `funmagic_kit.pipelined`), not one per statement.
        A failing statement's error surfaces at the next read, at the end of a savepoint or at COMMIT rather
        than at the statement itself, and everything rolls back: for work whose failure does not depend on
        which statement failed (a consumer's batch, run again statement by statement; a creation whose every
        database error answers the same). A cursor's row count is -1 until something reads: use RETURNING."""
        self._pipelined = True
        return self

    def bind(self, conn: psycopg.AsyncConnection) -> None:
        """Called once the transaction is open: a subclass creates its stores on `conn` here."""

    def publish(
        self,
        event: IntegrationEvent,
        *,
        caused_by: Envelope | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_id: UUID | None = None,
        time: datetime | None = None,
    ) -> None:
        self._require_transaction("publish")
        # Wrapped now, so an invalid event fails where it is published, not at commit.
        if caused_by is None and correlation_id is None:
            correlation_id = current_correlation_id() or None
        envelope = Envelope.wrap(
            event,
            caused_by=caused_by,
            correlation_id=correlation_id,
            causation_id=causation_id,
            id=event_id,
            time=time,
        )
        # The trace continued is the publisher's (a consumer's batch commits after each handler's span).
        self._outbox.append(outbox_message(event.TOPIC, envelope, current_traceparent()))

    def record(self, action: AdminAction) -> None:
        """Keep `action` in the audit log with this transaction: written just before the commit, like the
        outbox rows, so it exists exactly when the change does. Who acted: `action.actor_id`, else the
        request's caller (taken now, while the request's context is current)."""
        self._require_transaction("record")
        self._audit.append((action, action.actor_id or current_actor()))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the transaction has committed (never if it rolls back): e.g. wake a worker
        that must see the rows this unit of work wrote."""
        self._require_transaction("after_commit")
        self._after_commit.append(callback)

    async def claim(self, key: RequestKey) -> str | None:
        self._require_transaction("claim")
        cursor = await self.conn.execute(_CLAIM_REQUEST_KEY, (key.scope, key.key, key.fingerprint))
        if await cursor.fetchone() is not None:
            return None
        cursor = await self.conn.execute(_CLAIMED_REQUEST_KEY, (key.scope, key.key))
        claimed = await cursor.fetchone()
        if claimed is None or claimed["fingerprint"] != key.fingerprint:
            raise IdempotencyKeyReused()
        return claimed["resource_id"]

    async def answered(self, key: RequestKey) -> str | None:
        cursor = await self.conn.execute(_CLAIMED_REQUEST_KEY, (key.scope, key.key))
        answered = await cursor.fetchone()
        if answered is None or answered["resource_id"] is None:
            return None
        if answered["fingerprint"] != key.fingerprint:
            raise IdempotencyKeyReused()
        return answered["resource_id"]

    def created(self, key: RequestKey, resource_id: str) -> None:
        self._require_transaction("created")
        self._created.append((key, resource_id))

    def _require_transaction(self, what: str) -> None:
        if not self._in_transaction:
            raise RuntimeError(f"{what} needs a transaction; this unit of work is reading()")

    # A lost connection surfaces wherever the next round trip happens: the pool checkout (PoolTimeout while
    # the server is down), BEGIN, a statement of the handler, the outbox insert, COMMIT. Each place raises
    # `TransientError` (503 at the HTTP edge, a retry in a consumer), never the driver's error.

    async def __aenter__(self) -> Self:
        self._conn_cm = self._pool.connection()
        try:
            self.conn = await self._conn_cm.__aenter__()  # type: ignore[attr-defined]
        except psycopg.OperationalError as error:
            raise translate_db_error(error) from error
        if not self._in_transaction:
            try:
                await self.conn.set_autocommit(True)  # a flag of the client: no round trip
            except BaseException as e:
                await self._conn_cm.__aexit__(type(e), e, e.__traceback__)  # type: ignore[attr-defined]
                raise
            self.bind(self.conn)
            return self
        self._tx_cm = PipelinedTransaction(self.conn) if self._pipelined else self.conn.transaction()
        try:
            await self._tx_cm.__aenter__()  # type: ignore[attr-defined]
            self.bind(self.conn)
        except BaseException as e:
            await self._conn_cm.__aexit__(type(e), e, e.__traceback__)  # type: ignore[attr-defined]
            if isinstance(e, psycopg.OperationalError):
                raise translate_db_error(e) from e
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._in_transaction:
            await self._release_reading(exc_type, exc, tb)
            return
        if exc_type is None and (self._outbox or self._audit or self._created):
            try:
                if self._outbox:
                    await add_raw_to_outbox(self.conn, self._outbox)
                if self._audit:
                    await _add_to_audit(self.conn, self._audit)
                for key, resource_id in self._created:
                    await self.conn.execute(_ANSWER_REQUEST_KEY, (resource_id, key.scope, key.key))
            except BaseException as error:
                exc_type, exc, tb = type(error), error, error.__traceback__
                await self._finish(exc_type, exc, tb)
                if isinstance(error, psycopg.OperationalError):
                    raise translate_db_error(error) from error
                raise
            finally:
                self._outbox, self._audit, self._created = [], [], []
        await self._finish(exc_type, exc, tb)
        if isinstance(exc, psycopg.OperationalError):
            # The handler's own statement found the connection lost (rolled back above).
            raise translate_db_error(exc) from exc

    async def _release_reading(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.conn.set_autocommit(False)
        except psycopg.Error:
            # Never back to the pool in autocommit: the next unit of work would run without a transaction.
            await self.conn.close()
        await self._conn_cm.__aexit__(exc_type, exc, tb)  # type: ignore[attr-defined]
        if isinstance(exc, psycopg.OperationalError):
            raise translate_db_error(exc) from exc

    async def _finish(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._tx_cm.__aexit__(exc_type, exc, tb)  # type: ignore[attr-defined]
        except psycopg.Error as error:
            await self._conn_cm.__aexit__(type(error), error, error.__traceback__)  # type: ignore[attr-defined]
            raise translate_db_error(error) from error
        await self._conn_cm.__aexit__(exc_type, exc, tb)  # type: ignore[attr-defined]
        if exc_type is None:
            for callback in self._after_commit:
                callback()


# A key being claimed by another transaction makes the INSERT wait for it: then it conflicts (committed) or
# inserts (rolled back).
_CLAIM_REQUEST_KEY = """
INSERT INTO request_keys (scope, key, fingerprint) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1
"""
_CLAIMED_REQUEST_KEY = "SELECT fingerprint, resource_id FROM request_keys WHERE scope = %s AND key = %s"
_ANSWER_REQUEST_KEY = "UPDATE request_keys SET resource_id = %s WHERE scope = %s AND key = %s"


async def _add_to_audit(conn: psycopg.AsyncConnection, actions: list[tuple[AdminAction, str | None]]) -> None:
    for action, actor_id in actions:
        await record_admin_action(
            conn,
            actor_id=actor_id,
            action=action.action,
            subject_type=action.subject_type,
            subject_id=action.subject_id,
            changes=action.changes,
            reason=action.reason,
        )
