"""What the credits use cases need from the outside world, as Protocols: the stores a transaction binds,
the transaction itself, and the payment provider. The adapters layer provides the concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from funmagic_credits.domain.commerce import CreditPackage, PackageEntry, Purchase
from funmagic_credits.domain.ledger import Account, LedgerEvent
from funmagic_credits.domain.task_roots import TaskRoot
from funmagic_kit.ports import UnitOfWork

__all__ = [
    "AccountAsk",
    "CheckoutSession",
    "CheckoutSessionReport",
    "CommerceStore",
    "CreditsUnitOfWork",
    "Decision",
    "LedgerStore",
    "LockedAccount",
    "PaymentEvent",
    "PaymentGateway",
    "PaymentWebhooks",
    "StoredEvent",
    "StreamChange",
]


@dataclass(frozen=True)
class StoredEvent:
    event_id: str  # also the id of its envelope on credits.events
    position: int
    user_id: str
    version: int
    event: LedgerEvent
    occurred_at: datetime


@dataclass(frozen=True)
class LockedAccount:
    """A stream locked for a decision: its account, knowing the holds of the reservations asked about, and
    which of the causes asked about were applied before."""

    account: Account
    applied: frozenset[str]


@dataclass(frozen=True)
class Decision:
    """The events one command decided, with the cause (idempotency key) that recorded them."""

    key: str
    events: Sequence[LedgerEvent]


@dataclass(frozen=True)
class AccountAsk:
    """A stream to lock for a decision, with the causes and reservations the decision asks about."""

    user_id: str
    causes: Sequence[str] = ()
    reservations: Sequence[str] = ()


@dataclass(frozen=True)
class StreamChange:
    """What the decisions on one stream change: the account before them, after them, and the decisions."""

    before: Account
    after: Account
    decisions: Sequence[Decision]


class LedgerStore(Protocol):
    """The event store, its snapshots, open holds and projections, inside one transaction."""

    async def lock_accounts(self, asks: Sequence[AccountAsk]) -> dict[str, LockedAccount]:
        """Each asked user's account (each user at most once), locked until the transaction ends (created
        empty when new), with what its decision asks about; one statement, by user id."""
        ...

    async def record_all(
        self, changes: Sequence[StreamChange], now: datetime
    ) -> dict[str, list[StoredEvent]]:
        """For each stream (each at most once), in one statement: appends the decisions' events after
        `before.version` (unique (user, version) guards it), saves `after` as the snapshot with the holds
        that changed, and updates the `credits` and `credit_transactions` projections; returns the events with
        their positions, by user id."""
        ...

    async def holds(self, user_id: str) -> dict[str, int]:
        """Every open hold of the user."""
        ...

    async def event_of_cause(self, user_id: str, key: str) -> LedgerEvent | None:
        """The event the user's command with this idempotency key recorded first (None: not applied)."""
        ...


class CommerceStore(Protocol):
    """Credit packages, checkout purchases and the payment provider's events already handled."""

    async def packages(self, *, active_only: bool) -> list[CreditPackage]: ...

    async def package(self, package_id: str) -> CreditPackage | None:
        """None for an id that is not one of a live package (not even a UUID included)."""
        ...

    async def add_package(self, entry: PackageEntry, now: datetime) -> CreditPackage: ...

    async def update_package(
        self, package_id: str, entry: PackageEntry, now: datetime
    ) -> CreditPackage | None:
        """None when there is no such live package."""
        ...

    async def delete_package(self, package_id: str, now: datetime) -> bool:
        """False when there is no such live package."""
        ...

    async def add_purchase(
        self, session_id: str, user_id: str, package: CreditPackage, now: datetime
    ) -> None:
        """Records a pending purchase; a session already recorded is left as it is."""
        ...

    async def purchase(self, session_id: str, *, for_update: bool = False) -> Purchase | None: ...

    async def complete_purchase(self, session_id: str, now: datetime) -> None: ...

    async def remember_payment_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """False when this event of the payment provider was handled before (it redelivers)."""
        ...


class TaskRootStore(Protocol):
    async def get(self, task_id: str) -> TaskRoot | None: ...

    async def add(self, root: TaskRoot) -> None: ...


class CreditsUnitOfWork(UnitOfWork, Protocol):
    ledger: LedgerStore
    commerce: CommerceStore
    task_roots: TaskRootStore


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    amount_total: int
    currency: str


@dataclass(frozen=True)
class CheckoutSessionReport:
    """What a payment event says about a Checkout Session."""

    id: str
    payment_status: str | None
    amount_total: int | None
    currency: str | None
    # Whom and what it was for: the session's client reference (or metadata) and its metadata.
    user_id: str | None
    package_id: str


@dataclass(frozen=True)
class PaymentEvent:
    """An event the payment provider sent us, its signature verified."""

    id: str
    type: str
    session: CheckoutSessionReport | None  # None when the event is not about a Checkout Session


class PaymentGateway(Protocol):
    async def create_checkout_session(
        self,
        package: CreditPackage,
        *,
        user_id: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """A payment page selling `package` to `user_id`, who comes back to `success_url` or `cancel_url`.
        Raises an `UpstreamRefused` when the provider refuses, a `TransientError` when unreachable."""
        ...


class PaymentWebhooks(Protocol):
    def read(self, payload: bytes, signature_header: str) -> PaymentEvent:
        """The event in a webhook delivery; raises a `Malformed` refusal for a wrong or stale signature
        before anything else is read."""
        ...
