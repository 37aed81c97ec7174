"""Kafka reactions of tasks (consumer group `tasks`), each in the consumer's unit of work.

- credits.events: CreditsReserved → running, first step requested; CreditsReservationRejected → failed.
- providers.events: StepCompleted → next step or completed; StepFailed → failed. Other step events
  (started, progress, delayed) are for the live stream, which the gateway projects itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from funmagic_contracts.credits.events import CreditsReservationRejected, CreditsReserved
from funmagic_contracts.envelope import Envelope, parse_event
from funmagic_contracts.providers.events import StepCompleted, StepFailed
from funmagic_contracts.topics import CREDITS_EVENTS, PROVIDERS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_kit.db import UnitOfWork
from funmagic_tasks.application.tasks import TaskService

__all__ = ["TaskReactions"]


class TaskReactions:
    def __init__(self, tasks: TaskService) -> None:
        self._tasks = tasks

    def subscriptions(self) -> Sequence[Subscription]:
        return (
            Subscription(
                CREDITS_EVENTS.name,
                {
                    "CreditsReserved": self.credits_reserved,
                    "CreditsReservationRejected": self.reservation_rejected,
                },
            ),
            Subscription(
                PROVIDERS_EVENTS.name, {"StepCompleted": self.step_completed, "StepFailed": self.step_failed}
            ),
        )

    async def credits_reserved(self, envelope: Envelope, uow: UnitOfWork | None) -> None:
        event = parse_event(envelope)
        assert isinstance(event, CreditsReserved)
        assert uow is not None
        await self._tasks.credits_reserved(uow.conn, event.reservation_id, envelope)

    async def reservation_rejected(self, envelope: Envelope, uow: UnitOfWork | None) -> None:
        event = parse_event(envelope)
        assert isinstance(event, CreditsReservationRejected)
        assert uow is not None
        await self._tasks.reservation_rejected(uow.conn, event.reservation_id, event.reason, envelope)

    async def step_completed(self, envelope: Envelope, uow: UnitOfWork | None) -> None:
        event = parse_event(envelope)
        assert isinstance(event, StepCompleted)
        assert uow is not None
        output = event.output.model_dump(mode="json")
        await self._tasks.step_completed(
            uow.conn, event.task_id, event.step_id, event.attempt, output, envelope
        )

    async def step_failed(self, envelope: Envelope, uow: UnitOfWork | None) -> None:
        event = parse_event(envelope)
        assert isinstance(event, StepFailed)
        assert uow is not None
        await self._tasks.step_failed(
            uow.conn,
            event.task_id,
            event.step_id,
            event.attempt,
            event.error_code,
            event.error_message,
            envelope,
        )
