"""What the credits use cases need from the outside world, as Protocols; adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import Envelope
from funmagic_credits.domain.ledger import Account, LedgerEvent

__all__ = ["Clock", "LedgerStore", "LedgerStoreFactory", "StoredEvent", "UnitOfWorkFactory"]


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class StoredEvent:
    event_id: str  # also the id of its envelope on credits.events
    position: int
    user_id: str
    version: int
    event: LedgerEvent
    occurred_at: datetime


class LedgerStore(Protocol):
    """The event store, its snapshots and projections, inside one transaction (one connection)."""

    async def lock_account(self, user_id: str) -> Account:
        """The user's account, locked until the transaction ends (created empty when new)."""

    async def cause_already_applied(self, user_id: str, key: str) -> bool: ...

    async def append(
        self, account: Account, events: Sequence[LedgerEvent], key: str, now: datetime
    ) -> list[StoredEvent]:
        """Appends after `account.version` (unique (user, version) guards it); returns them with positions."""

    async def save_account(self, account: Account) -> None: ...

    async def project(self, stored: Sequence[StoredEvent], account: Account, now: datetime) -> None:
        """Updates the `credits` and `credit_transactions` projections in the same transaction."""

    def publish(
        self, events: Sequence[tuple[StoredEvent, IntegrationEvent]], caused_by: Envelope | None
    ) -> None:
        """Adds the events to the outbox under their ledger ids; written by `flush`, in this transaction."""

    async def flush(self) -> None: ...


class LedgerStoreFactory(Protocol):
    def __call__(self, conn: Any) -> LedgerStore: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> Any: ...
