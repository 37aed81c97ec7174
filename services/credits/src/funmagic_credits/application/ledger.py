"""The ledger use case: one command, one transaction — lock the stream, decide, append, project, publish."""

from __future__ import annotations

__all__ = ["Ledger", "to_integration_event"]

import logging
from dataclasses import dataclass
from uuid import UUID

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.credits.events import (
    CreditsAdjusted,
    CreditsGranted,
    CreditsPurchased,
    CreditsReleased,
    CreditsReservationRejected,
    CreditsReserved,
    CreditsSpent,
)
from funmagic_contracts.envelope import Envelope
from funmagic_credits.application.ports import CreditsUnitOfWork, StoredEvent
from funmagic_credits.domain.ledger import (
    AdjustCredits,
    Adjusted,
    Command,
    Granted,
    LedgerEvent,
    Purchased,
    Released,
    ReservationRejected,
    Reserved,
    Spent,
    check_invariants,
    decide,
    fold,
    idempotency_key,
)
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock
from funmagic_kit.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Ledger:
    uow: UnitOfWorkFactory[CreditsUnitOfWork]
    clock: Clock

    async def apply(self, command: Command, *, caused_by: Envelope | None = None) -> list[StoredEvent]:
        """Runs `command` in a transaction of its own."""
        async with self.uow() as uow:
            return await self.execute(uow, command, caused_by=caused_by)

    async def execute(
        self, uow: CreditsUnitOfWork, command: Command, *, caused_by: Envelope | None = None
    ) -> list[StoredEvent]:
        """Runs `command` in the caller's transaction; a repeated cause records nothing."""
        store = uow.ledger
        account = await store.lock_account(command.user_id)
        key = idempotency_key(command)
        if await store.cause_already_applied(command.user_id, key):
            log.info("ledger command already applied", extra={"user_id": command.user_id, "key": key})
            return []
        events = decide(command, account)
        if not events:
            return []
        updated = fold(account, events)
        check_invariants(updated)
        now = self.clock.now()
        stored = await store.append(account, events, key, now)
        await store.save_account(updated)
        await store.project(stored, updated, now)
        for each in stored:
            # Published under the ledger's own event id and time: consumers of credits.events and the
            # replay/verify tooling match envelopes to ledger events by it.
            uow.publish(
                to_integration_event(command.user_id, each.event),
                caused_by=caused_by,
                event_id=UUID(each.event_id),
                time=each.occurred_at,
            )
        if isinstance(command, AdjustCredits):
            # Once per adjustment: a retry with the same Idempotency-Key returned above.
            change = {"amount": command.amount, "balance": {"from": account.balance, "to": updated.balance}}
            uow.record(
                AdminAction(
                    "credits.adjusted",
                    "user",
                    command.user_id,
                    change,
                    command.reason,
                    actor_id=command.admin_id,
                )
            )
        return stored


def to_integration_event(user_id: str, event: LedgerEvent) -> IntegrationEvent:
    match event:
        case Granted():
            return CreditsGranted(
                user_id=user_id,
                amount=event.amount,
                reason=event.reason,
                reference_id=event.reference_id,
                balance_after=event.balance_after,
            )
        case Purchased():
            return CreditsPurchased(
                user_id=user_id,
                amount=event.amount,
                package_id=event.package_id,
                payment_reference=event.payment_reference,
                price_minor=event.price_minor,
                currency=event.currency,
                balance_after=event.balance_after,
                bonus_credits=event.bonus_credits,
            )
        case Reserved():
            return CreditsReserved(
                user_id=user_id,
                reservation_id=event.reservation_id,
                amount=event.amount,
                balance_after=event.balance_after,
                reserved_after=event.reserved_after,
            )
        case ReservationRejected():
            return CreditsReservationRejected(
                user_id=user_id, reservation_id=event.reservation_id, amount=event.amount, reason=event.reason
            )
        case Spent():
            return CreditsSpent(
                user_id=user_id,
                reservation_id=event.reservation_id,
                amount=event.amount,
                balance_after=event.balance_after,
                reserved_after=event.reserved_after,
            )
        case Released():
            return CreditsReleased(
                user_id=user_id,
                reservation_id=event.reservation_id,
                amount=event.amount,
                balance_after=event.balance_after,
                reserved_after=event.reserved_after,
            )
        case Adjusted():
            return CreditsAdjusted(
                user_id=user_id,
                amount=event.amount,
                admin_id=event.admin_id,
                reason=event.reason,
                balance_after=event.balance_after,
            )
    raise TypeError(f"not a ledger event: {event!r}")
