"""The ledger use case: lock the stream, decide, record (events, snapshot, holds, projections), publish — one
command per transaction, or commands together in one (group commit): one user's that arrive while one of
theirs is being committed, and other users' that arrive while every transaction slot is taken."""

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
from funmagic_credits.application.ports import (
    AccountAsk,
    CreditsUnitOfWork,
    Decision,
    LockedAccount,
    StoredEvent,
    StreamChange,
)
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
    ReservationClosed,
    ReservationRejected,
    ReserveCredits,
    Reserved,
    SettleReservation,
    Spent,
    a_repeat_must_ask_for_the_same_adjustment,
    causes_of,
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


# How many commands share a transaction at most (group commit).
MAX_GROUP = 100
# How many transactions `apply` runs at once; the commands that arrive while all are running wait and share
# the next one, whichever users they are for.
MAX_TRANSACTIONS = 4


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
    in_batch: bool = False  # in a transaction now (whoever leads it settles this request)

    def settle(self, outcome: list[StoredEvent] | BaseException) -> None:
        self.outcome = outcome
        if self.called is not None and not self.called.done():  # not if its caller was cancelled meanwhile
            self.called.set_result(None)

    def result(self) -> list[StoredEvent]:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        assert self.outcome is not None
        return self.outcome


@dataclass(eq=False)
class _Ready:
    """One user's group waiting for a transaction shared with other users' groups (`_commit_shared`)."""

    group: list[_Request]
    # Resolved to wake the group's leader: its group was committed (`done`), or a transaction slot is free.
    turn: asyncio.Future[None]
    done: bool = False

    def wake(self) -> None:
        if not self.turn.done():
            self.turn.set_result(None)


@dataclass
class _Batches:
    ready: list[_Ready] = field(default_factory=list)
    running: int = 0
    # Transactions of several callers' groups, kept until done (the event loop holds only weak references).
    committing: set[asyncio.Task[None]] = field(default_factory=set)


@dataclass(frozen=True, kw_only=True)
class Ledger:
    uow: UnitOfWorkFactory[CreditsUnitOfWork]
    clock: Clock
    max_group: int = MAX_GROUP
    max_transactions: int = MAX_TRANSACTIONS
    # user id -> the requests waiting while a transaction for that user runs (no entry: none running).
    _waiting: dict[str, list[_Request]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _batches: _Batches = field(default_factory=_Batches, init=False, repr=False, compare=False)

    async def apply(self, command: Command, *, caused_by: Envelope | None = None) -> list[StoredEvent]:
        """Runs `command` in a transaction of its own, or shared with the other commands for the same user
        that arrived while one of theirs was running (group commit): one lock, one snapshot and one commit for
        all of them, so a busy user's commands do not queue one transaction each on the row lock. While
        `max_transactions` are running, the groups of other users wait and then share the next one (one lock
        statement, one write, one commit for all of them). Each command gets its own outcome; a transaction
        that fails runs again one group, then one command, at a time."""
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
            await self._commit_shared(group)
        finally:
            # Requests of the group left without an outcome (this caller was cancelled mid-transaction,
            # which rolled back) go first into the next group; ones in another caller's transaction get
            # their outcome from it.
            waiting[:0] = [r for r in group[1:] if r.outcome is None and not _cancelled(r) and not r.in_batch]
            self._pass_the_lead(command.user_id, waiting)
        return request.result()

    async def adjust(self, command: AdjustCredits) -> list[StoredEvent]:
        """An admin's adjustment, once per idempotency key: a repeat asking for the same change records
        nothing (the retry of a request whose answer was lost); one asking for another change is refused."""
        recorded = await self.apply(command)
        if recorded:
            return recorded
        async with self.uow() as uow:
            earlier = await uow.ledger.event_of_cause(command.user_id, idempotency_key(command))
        if isinstance(earlier, Adjusted):
            a_repeat_must_ask_for_the_same_adjustment(command, earlier)
        return recorded

    async def execute(
        self, uow: CreditsUnitOfWork, command: Command, *, caused_by: Envelope | None = None
    ) -> list[StoredEvent]:
        """Runs `command` in the caller's transaction; a repeated cause records nothing."""
        (outcome,) = await self._execute_all(uow, [_Request(command, caused_by, None)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _commit_shared(self, group: list[_Request]) -> None:
        """Commits one user's `group` in a transaction of its own while fewer than `max_transactions` run,
        else waits for a slot; whoever takes a slot takes every group waiting (up to `max_group` commands)."""
        batches = self._batches
        ready = _Ready(group, asyncio.get_running_loop().create_future())
        batches.ready.append(ready)
        try:
            while not ready.done:
                if batches.running < self.max_transactions and ready in batches.ready:
                    await self._run_batch(ready)
                    continue
                # No await between this check and the wait: a wake cannot come in between and be lost.
                ready.turn = asyncio.get_running_loop().create_future()
                await ready.turn
        except asyncio.CancelledError:
            if ready in batches.ready:  # not in a transaction: nobody else will run it
                batches.ready.remove(ready)
                self._wake_waiting()
            raise

    async def _run_batch(self, own: _Ready) -> None:
        """Takes the waiting groups (oldest first, one per user, up to `max_group` commands) into one
        transaction. Its own group alone runs in the caller's task: cancelling the caller rolls it back, as
        without batches. With other callers' groups it runs in a task of its own that the caller's
        cancellation does not reach, so every group in it gets its outcome."""
        batches = self._batches
        batch: list[_Ready] = []
        users: set[str] = set()
        size = 0
        for waiting in list(batches.ready):
            if batch and size + len(waiting.group) > self.max_group:
                break
            user_id = waiting.group[0].command.user_id
            if user_id in users:  # one group per user in a transaction: the next one takes it
                continue
            batches.ready.remove(waiting)
            batch.append(waiting)
            users.add(user_id)
            size += len(waiting.group)
            for request in waiting.group:
                request.in_batch = True
        batches.running += 1
        if batch == [own]:
            await self._commit_batch(batch)
            return
        committing = asyncio.get_running_loop().create_task(self._commit_batch(batch))
        batches.committing.add(committing)
        committing.add_done_callback(batches.committing.discard)
        await asyncio.shield(committing)

    async def _commit_batch(self, batch: list[_Ready]) -> None:
        """Commits a batch taken by `_run_batch` (which counted it as running), then wakes its groups' callers
        and as many waiting groups as there are free slots."""
        batches = self._batches
        try:
            await self._commit_groups([taken.group for taken in batch])
        finally:
            batches.running -= 1
            for taken in batch:
                for request in taken.group:
                    request.in_batch = False
                # Outcomes missing: the caller of a lone group was cancelled mid-transaction (rolled back).
                if all(r.outcome is not None for r in taken.group):
                    taken.done = True
                    taken.wake()
            self._wake_waiting()

    def _wake_waiting(self) -> None:
        """Wakes as many waiting groups as there are free transaction slots (each then takes one or waits)."""
        batches = self._batches
        for waiting in batches.ready[: max(self.max_transactions - batches.running, 0)]:
            waiting.wake()

    async def _commit_groups(self, groups: list[list[_Request]]) -> None:
        if len(groups) == 1:
            await self._commit_group(groups[0])
            return
        try:
            # Pipelined (a round trip for the locks' read and one for the writes and the commit): a failure
            # of any statement fails the batch, which then runs group by group.
            async with self.uow().pipelined() as uow:
                outcomes = await self._execute_groups(uow, groups)
        except Exception:
            log.warning(
                "ledger batch rolled back; its users' groups run one at a time",
                extra={"users": len(groups), "commands": sum(len(g) for g in groups)},
            )
            for group in groups:
                await self._commit_group(group)
            return
        for group, group_outcomes in zip(groups, outcomes, strict=True):
            for request, outcome in zip(group, group_outcomes, strict=True):
                request.settle(outcome)

    async def _commit_group(self, group: list[_Request]) -> None:
        try:
            async with self.uow().pipelined() as uow:
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
        """The commands of one user, decided and recorded (`_execute_groups`)."""
        (outcomes,) = await self._execute_groups(uow, [requests])
        return outcomes

    async def _execute_groups(
        self, uow: CreditsUnitOfWork, groups: list[list[_Request]]
    ) -> list[list[list[StoredEvent] | LedgerRuleBroken]]:
        """Decides the commands of each group (each group one user's, each user in one group) in order, each
        on the state the ones before it left, and records what they all decided in one write, after locking
        every stream in one statement. A command the ledger refuses gets its error and changes nothing."""
        store = uow.ledger
        keys = [[idempotency_key(r.command) for r in group] for group in groups]
        locked = await store.lock_accounts(
            [
                AccountAsk(
                    group[0].command.user_id,
                    [cause for r in group for cause in causes_of(r.command)],
                    [r.command.reservation_id for r in group if _holds(r.command)],
                )
                for group in groups
            ]
        )
        all_outcomes: list[list[list[StoredEvent] | LedgerRuleBroken]] = []
        # per stream that changed: (its change, [(index of the outcome, request, decision, decided from)])
        changed: list[tuple[list[list[StoredEvent] | LedgerRuleBroken], StreamChange, list[tuple]]] = []
        for group, group_keys in zip(groups, keys, strict=True):
            outcomes, change, decided = self._decide(locked[group[0].command.user_id], group, group_keys)
            all_outcomes.append(outcomes)
            if change is not None:
                changed.append((outcomes, change, decided))
        if not changed:
            return all_outcomes
        stored_by_user = await store.record_all([change for _, change, _ in changed], self.clock.now())
        for outcomes, change, decided in changed:
            stored = stored_by_user[change.after.user_id]
            for index, request, decision, decided_from in decided:
                mine, stored = stored[: len(decision.events)], stored[len(decision.events) :]
                outcomes[index] = mine
                self._publish(uow, request, mine, decided_from)
        return all_outcomes

    def _decide(
        self, locked: LockedAccount, requests: list[_Request], keys: list[str]
    ) -> tuple[list[list[StoredEvent] | LedgerRuleBroken], StreamChange | None, list[tuple]]:
        """One user's commands decided in order on the locked account: each one's outcome (its events are
        filled in once recorded), what the stream records (None: nothing) and the decisions behind it."""
        user_id = locked.account.user_id
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
            return outcomes, None, decided
        return outcomes, StreamChange(before, account, [d for _, _, d, _ in decided]), decided

    def _publish(
        self, uow: CreditsUnitOfWork, request: _Request, stored: list[StoredEvent], decided_from: Account
    ) -> None:
        command = request.command
        for each in stored:
            published = to_integration_event(command.user_id, each.event)
            if published is None:
                continue
            # Published under the ledger's own event id and time: consumers of credits.events and the
            # replay/verify tooling match envelopes to ledger events by it.
            uow.publish(
                published,
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


def to_integration_event(user_id: str, event: LedgerEvent) -> IntegrationEvent | None:
    """The event other services read of a ledger event; None for the ledger's own bookkeeping."""
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
        case ReservationClosed():
            return None  # moves no credits; the task's own end is the news
    raise TypeError(f"not a ledger event: {event!r}")
