"""The ledger use case: lock the stream, decide, record (events, snapshot, holds, projections), publish — one
command per transaction, or one user's commands together in one (group commit)."""

from __future__ import annotations

__all__ = ["Ledger", "to_integration_event"]

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TypeGuard
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
from funmagic_credits.application.ports import CreditsUnitOfWork, Decision, StoredEvent
from funmagic_credits.domain.ledger import (
    Account,
    AdjustCredits,
    Adjusted,
    Command,
    Granted,
    LedgerEvent,
    LedgerRuleBroken,
    Purchased,
    Released,
    ReservationRejected,
    ReserveCredits,
    Reserved,
    SettleReservation,
    Spent,
    check_invariants,
    decide,
    fold,
    idempotency_key,
)
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)


# How many commands of one user share a transaction at most (group commit).
MAX_GROUP = 100


@dataclass(eq=False)
class _Request:
    """A command waiting for its transaction in `Ledger.apply`."""

    command: Command
    caused_by: Envelope | None
    correlation_id: str | None  # the caller's: the group's events are published by whoever leads it
    # Resolved when the outcome is in, or when this request leads a group (`apply`; None in `execute`).
    called: asyncio.Future[None] | None = None
    leads: bool = False
    outcome: list[StoredEvent] | BaseException | None = None

    def settle(self, outcome: list[StoredEvent] | BaseException) -> None:
        self.outcome = outcome
        if self.called is not None and not self.called.done():  # not if its caller was cancelled meanwhile
            self.called.set_result(None)

    def result(self) -> list[StoredEvent]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return self.outcome


@dataclass(frozen=True, kw_only=True)
class Ledger:
    uow: UnitOfWorkFactory[CreditsUnitOfWork]
    clock: Clock
    max_group: int = MAX_GROUP
    # user id -> the requests waiting while a transaction for that user runs (no entry: none running).
    _waiting: dict[str, list[_Request]] = field(default_factory=dict, init=False, repr=False, compare=False)

    async def apply(self, command: Command, *, caused_by: Envelope | None = None) -> list[StoredEvent]:
        """Runs `command` in a transaction of its own, or shared with the other commands for the same user
        that arrived while one of theirs was running (group commit): one lock, one snapshot and one commit for
        all of them, so a busy user's commands do not queue one transaction each on the row lock. Each
        command gets its own outcome; a group whose transaction fails runs again one command at a time."""
        request = _Request(
            command,
            caused_by,
            None if caused_by else current_correlation_id() or None,
            asyncio.get_running_loop().create_future(),
        )
        waiting = self._waiting.get(command.user_id)
        if waiting is None:
            waiting = self._waiting[command.user_id] = []
        else:
            waiting.append(request)
            try:
                await request.called  # type: ignore[misc]
            except asyncio.CancelledError:
                if request.leads:  # given the lead as it was cancelled: the next one waiting takes it
                    self._pass_the_lead(command.user_id, waiting)
                raise
            if not request.leads:
                return request.result()
        group = [request, *waiting[: self.max_group - 1]]
        del waiting[: len(group) - 1]
        try:
            await self._commit_group(group)
        finally:
            # Requests of the group left without an outcome (this caller was cancelled mid-transaction,
            # which rolled back) go first into the next group.
            waiting[:0] = [r for r in group[1:] if r.outcome is None and not _cancelled(r)]
            self._pass_the_lead(command.user_id, waiting)
        return request.result()

    async def execute(
        self, uow: CreditsUnitOfWork, command: Command, *, caused_by: Envelope | None = None
    ) -> list[StoredEvent]:
        """Runs `command` in the caller's transaction; a repeated cause records nothing."""
        (outcome,) = await self._execute_all(uow, [_Request(command, caused_by, None)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _commit_group(self, group: list[_Request]) -> None:
        try:
            async with self.uow() as uow:
                outcomes = await self._execute_all(uow, group)
        except Exception as error:
            if len(group) == 1:
                group[0].settle(error)
                return
            log.warning(
                "ledger group rolled back; its commands run one at a time",
                extra={"user_id": group[0].command.user_id, "commands": len(group)},
            )
            for request in group:
                try:
                    async with self.uow() as uow:
                        (outcome,) = await self._execute_all(uow, [request])
                except Exception as alone:
                    outcome = alone
                request.settle(outcome)
            return
        for request, outcome in zip(group, outcomes, strict=True):
            request.settle(outcome)

    def _pass_the_lead(self, user_id: str, waiting: list[_Request]) -> None:
        while waiting:
            request = waiting.pop(0)
            if not _cancelled(request):  # skip callers cancelled while they waited
                request.leads = True
                request.called.set_result(None)
                return
        del self._waiting[user_id]

    async def _execute_all(
        self, uow: CreditsUnitOfWork, requests: list[_Request]
    ) -> list[list[StoredEvent] | LedgerRuleBroken]:
        """Decides the commands of one user in order, each on the state the ones before it left, and records
        what they decided in one write. A command the ledger refuses gets its error and changes nothing."""
        store = uow.ledger
        user_id = requests[0].command.user_id
        keys = [idempotency_key(r.command) for r in requests]
        locked = await store.lock_account(
            user_id,
            causes=keys,
            reservations=[r.command.reservation_id for r in requests if _holds(r.command)],
        )
        before = account = locked.account
        applied = set(locked.applied)
        outcomes: list[list[StoredEvent] | LedgerRuleBroken] = []
        # (index of its outcome, request, decision, the account it was decided on)
        decided: list[tuple[int, _Request, Decision, Account]] = []
        for request, key in zip(requests, keys, strict=True):
            if key in applied:
                log.info("ledger command already applied", extra={"user_id": user_id, "key": key})
                outcomes.append([])
                continue
            try:
                events = decide(request.command, account)
            except LedgerRuleBroken as refused:
                outcomes.append(refused)
                continue
            if not events:
                outcomes.append([])
                continue
            updated = fold(account, events)
            check_invariants(updated)
            decided.append((len(outcomes), request, Decision(key, events), account))
            outcomes.append([])
            applied.add(key)  # the same cause twice in a group: the second is a repeat
            account = updated
        if not decided:
            return outcomes
        stored = await store.record(before, account, [d for _, _, d, _ in decided], self.clock.now())
        for index, request, decision, decided_from in decided:
            mine, stored = stored[: len(decision.events)], stored[len(decision.events) :]
            outcomes[index] = mine
            self._publish(uow, request, mine, decided_from)
        return outcomes

    def _publish(
        self, uow: CreditsUnitOfWork, request: _Request, stored: list[StoredEvent], decided_from: Account
    ) -> None:
        command = request.command
        for each in stored:
            # Published under the ledger's own event id and time: consumers of credits.events and the
            # replay/verify tooling match envelopes to ledger events by it.
            uow.publish(
                to_integration_event(command.user_id, each.event),
                caused_by=request.caused_by,
                correlation_id=request.correlation_id,
                event_id=UUID(each.event_id),
                time=each.occurred_at,
            )
        if isinstance(command, AdjustCredits):
            # Once per adjustment: a retry with the same Idempotency-Key is a repeat and records nothing.
            balance = {"from": decided_from.balance, "to": stored[-1].event.balance_after}  # type: ignore[union-attr]
            change = {"amount": command.amount, "balance": balance}
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


def _cancelled(request: _Request) -> bool:
    return request.called is not None and request.called.done()


def _holds(command: Command) -> TypeGuard[ReserveCredits | SettleReservation]:
    return isinstance(command, ReserveCredits | SettleReservation)


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
