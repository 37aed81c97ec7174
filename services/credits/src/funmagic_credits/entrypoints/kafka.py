"""Kafka reactions of credits (consumer group `credits`): each runs in the consumer's unit of work, so
the ledger change, its outbox rows and the inbox row commit together.

- UserRegistered → the sign-up bonus (once per user: the grant's cause is the user id).
- TaskRequested → hold the task's price, or reject it (`insufficient_credits`).
- TaskCompleted / TaskFailed / TaskCancelled → spend what the task used, release the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

from funmagic_contracts.envelope import Envelope, parse_event
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.tasks.events import TaskCancelled, TaskCompleted, TaskFailed, TaskRequested
from funmagic_contracts.topics import IDENTITY_EVENTS, TASKS_EVENTS
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.domain.ledger import GrantCredits, ReserveCredits, SettleReservation
from funmagic_kit.consumer import Subscription
from funmagic_kit.db import UnitOfWork

__all__ = ["CreditsReactions"]


class CreditsReactions:
    def __init__(self, ledger: Ledger, *, signup_bonus: int) -> None:
        self._ledger = ledger
        self._signup_bonus = signup_bonus

    def subscriptions(self) -> Sequence[Subscription]:
        return (
            Subscription(IDENTITY_EVENTS.name, {"UserRegistered": self.user_registered}),
            Subscription(
                TASKS_EVENTS.name,
                {
                    "TaskRequested": self.task_requested,
                    "TaskCompleted": self.task_ended,
                    "TaskFailed": self.task_ended,
                    "TaskCancelled": self.task_ended,
                },
            ),
        )

    async def user_registered(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = parse_event(envelope)
        assert isinstance(event, UserRegistered)
        if self._signup_bonus <= 0:
            return
        command = GrantCredits(event.user_id, self._signup_bonus, "signup_bonus", event.user_id)
        await self._ledger.execute(uow.conn, command, caused_by=envelope)

    async def task_requested(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = parse_event(envelope)
        assert isinstance(event, TaskRequested)
        command = ReserveCredits(event.user_id, event.task_id, event.price)
        await self._ledger.execute(uow.conn, command, caused_by=envelope)

    async def task_ended(self, envelope: Envelope, uow: UnitOfWork) -> None:
        event = parse_event(envelope)
        assert isinstance(event, TaskCompleted | TaskFailed | TaskCancelled)
        outcome = {TaskCompleted: "completed", TaskFailed: "failed", TaskCancelled: "cancelled"}[type(event)]
        command = SettleReservation(event.user_id, event.task_id, event.charged_credits, outcome)
        await self._ledger.execute(uow.conn, command, caused_by=envelope)
