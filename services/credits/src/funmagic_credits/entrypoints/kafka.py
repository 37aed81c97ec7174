"""Kafka reactions of credits (consumer group `credits`): each runs in the consumer's unit of work, so
the ledger change, its outbox rows and the inbox row commit together.

- UserRegistered → the sign-up bonus (once per user: the grant's cause is the user id).
- TaskRequested → hold the task's price, or reject it (`insufficient_credits`); and record the task's root
  task (`domain.task_roots`), by which the user's transactions are grouped.
- TaskCompleted / TaskFailed / TaskCancelled → spend what the task used, release the rest.
"""

from __future__ import annotations

from typing import Literal

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.tasks.events import TaskCancelled, TaskCompleted, TaskFailed, TaskRequested
from funmagic_contracts.topics import IDENTITY_EVENTS, TASKS_EVENTS
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.application.ports import CreditsUnitOfWork
from funmagic_credits.domain.ledger import GrantCredits, ReserveCredits, SettleReservation
from funmagic_credits.domain.task_roots import root_of
from funmagic_kit.consumer import Subscription

__all__ = ["CreditsReactions", "subscriptions"]

TaskEnded = TaskCompleted | TaskFailed | TaskCancelled


class CreditsReactions:
    """Each reaction turns its event into a ledger command, run in the consumer's transaction."""

    def __init__(self, ledger: Ledger, *, signup_bonus: int) -> None:
        self._ledger = ledger
        self._signup_bonus = signup_bonus

    async def user_registered(
        self, event: UserRegistered, envelope: Envelope, uow: CreditsUnitOfWork
    ) -> None:
        if self._signup_bonus <= 0:
            return
        command = GrantCredits(event.user_id, self._signup_bonus, "signup_bonus", event.user_id)
        await self._ledger.execute(uow, command, caused_by=envelope)

    async def task_requested(self, event: TaskRequested, envelope: Envelope, uow: CreditsUnitOfWork) -> None:
        parent = await uow.task_roots.get(event.parent_task_id) if event.parent_task_id else None
        await uow.task_roots.add(
            root_of(event.task_id, event.user_id, event.tool_slug, event.parent_task_id, parent)
        )
        command = ReserveCredits(event.user_id, event.task_id, event.price)
        await self._ledger.execute(uow, command, caused_by=envelope)

    async def task_ended(self, event: TaskEnded, envelope: Envelope, uow: CreditsUnitOfWork) -> None:
        command = SettleReservation(event.user_id, event.task_id, event.charged_credits, _outcome(event))
        await self._ledger.execute(uow, command, caused_by=envelope)


def _outcome(event: TaskEnded) -> Literal["completed", "failed", "cancelled"]:
    match event:
        case TaskCompleted():
            return "completed"
        case TaskFailed():
            return "failed"
        case TaskCancelled():
            return "cancelled"


def subscriptions(ledger: Ledger, *, signup_bonus: int) -> tuple[Subscription[CreditsUnitOfWork], ...]:
    reactions = CreditsReactions(ledger, signup_bonus=signup_bonus)
    identity: Subscription[CreditsUnitOfWork] = Subscription(IDENTITY_EVENTS).on(
        UserRegistered, reactions.user_registered
    )
    tasks: Subscription[CreditsUnitOfWork] = (
        Subscription(TASKS_EVENTS)
        .on(TaskRequested, reactions.task_requested)
        .on(TaskCompleted, reactions.task_ended)
        .on(TaskFailed, reactions.task_ended)
        .on(TaskCancelled, reactions.task_ended)
    )
    return identity, tasks
