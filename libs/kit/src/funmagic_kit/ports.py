"""What application code sees of the runtime, as Protocols: no driver is imported here or by its users.

A service's application layer types its unit of work as a Protocol that extends `UnitOfWork` with the
stores it needs (`uow.tasks`, `uow.catalog`…); the adapters layer provides the concrete class
(`funmagic_kit.db.PostgresUnitOfWork` and a subclass that binds the stores to its connection).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar
from uuid import UUID

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_kit.audit import AdminAction
from funmagic_kit.request_once import RequestKey

__all__ = ["SentRead", "UnitOfWork", "UnitOfWorkFactory"]


class UnitOfWork(Protocol):
    """One transaction: state changes, the events they imply and (in a consumer) the inbox row commit
    together or not at all. `async with` commits on a clean exit and rolls back on an exception."""

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
        """Put `event` in the outbox with this transaction. `caused_by` (the event being handled) gives
        its correlation and causation; without it the current request's correlation id is used."""
        ...

    def record(self, action: AdminAction) -> None:
        """Keep an admin's write in the audit log with this transaction (who: the request's caller)."""
        ...

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once the transaction has committed (never if it rolls back)."""
        ...

    async def claim(self, key: RequestKey) -> str | None:
        """Claims a retryable creation's key for this transaction: None the first time (then say what was
        created with `created`), else the id of what the key's first request created. Raises
        `IdempotencyKeyReused` when the key came with another request."""
        ...

    async def answered(self, key: RequestKey) -> str | None:
        """The id of what the key's first request created, once that committed; None before. Raises
        `IdempotencyKeyReused` when the key came with another request. A read (it works in `reading()`): a
        creation that checks other services first looks here, so a retry answers what was created even when
        those checks would now fail; `claim` still decides."""
        ...

    def created(self, key: RequestKey, resource_id: str) -> None:
        """What this transaction created for the key it claimed, kept with the key at commit."""
        ...

    def reading(self) -> Self:
        """Reads only, each statement on its own: no transaction (publish, record and after_commit refuse)."""
        ...

    def pipelined(self) -> Self:
        """Statements sent without waiting for their results: a round trip per read and one at the end. A
        failed statement's error surfaces at the next read or at the end, and everything rolls back."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


UnitOfWorkT_co = TypeVar("UnitOfWorkT_co", bound=UnitOfWork, covariant=True)


class UnitOfWorkFactory(Protocol[UnitOfWorkT_co]):
    def __call__(self) -> UnitOfWorkT_co: ...


AnswerT_co = TypeVar("AnswerT_co", covariant=True)


class SentRead(Protocol[AnswerT_co]):
    """A read sent and not yet answered (`funmagic_kit.pipelined.Sent`). In a pipelined unit of work, the
    reads a store's `send_…` methods sent one after another share one round trip: the first `answer()`
    takes every result."""

    async def answer(self) -> AnswerT_co: ...
