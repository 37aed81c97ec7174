"""Kafka subscriptions of providers (consumer group `providers`).

- StepRequested → a durable step job (the inbox makes a redelivery a no-op; the job's unique
  (task, step, attempt) makes a second StepRequested for the same attempt one too).
- TaskCancelRequested → the task's unfinished jobs are cancelled; a call in flight here stops at once,
  one on another replica stops at its next lease renewal.
"""

from __future__ import annotations

from collections.abc import Sequence

from funmagic_contracts.envelope import Envelope, parse_event
from funmagic_contracts.tasks.events import StepRequested, TaskCancelRequested
from funmagic_contracts.topics import TASKS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_kit.db import UnitOfWork
from funmagic_providers.application.steps import StepJobs

__all__ = ["ProvidersReactions"]


class ProvidersReactions:
    def __init__(self, jobs: StepJobs) -> None:
        self._jobs = jobs

    def subscriptions(self) -> Sequence[Subscription]:
        return (
            Subscription(
                TASKS_EVENTS.name,
                {"StepRequested": self.step_requested, "TaskCancelRequested": self.task_cancel_requested},
            ),
        )

    async def step_requested(self, envelope: Envelope, uow: UnitOfWork | None) -> None:
        event = parse_event(envelope)
        assert isinstance(event, StepRequested)
        assert uow is not None
        await self._jobs.accept(uow, envelope, event)

    async def task_cancel_requested(self, envelope: Envelope, uow: UnitOfWork | None) -> None:
        event = parse_event(envelope)
        assert isinstance(event, TaskCancelRequested)
        assert uow is not None
        await self._jobs.cancel(uow.conn, event.task_id)
