"""Kafka subscriptions of providers (consumer group `providers`).

- StepRequested → a durable step job (the inbox makes a redelivery a no-op; the job's unique
  (task, step, attempt) makes a second StepRequested for the same attempt one too).
- TaskCancelRequested → the task's unfinished jobs are cancelled; a call in flight here stops at once,
  one on another replica stops at its next lease renewal. StudioReplyCancelled does the same for a studio
  reply's job (its task id is the reply's id).
"""

from __future__ import annotations

from collections.abc import Sequence

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.tasks.events import StepRequested, StudioReplyCancelled, TaskCancelRequested
from funmagic_contracts.topics import TASKS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_providers.application.ports import ProvidersUnitOfWork
from funmagic_providers.application.steps import StepJobs

__all__ = ["subscriptions"]


def subscriptions(jobs: StepJobs) -> Sequence[Subscription[ProvidersUnitOfWork]]:
    async def step_requested(event: StepRequested, envelope: Envelope, uow: ProvidersUnitOfWork) -> None:
        await jobs.accept(event, envelope, uow)

    async def task_cancel_requested(
        event: TaskCancelRequested, envelope: Envelope, uow: ProvidersUnitOfWork
    ) -> None:
        await jobs.cancel(event.task_id, uow)

    async def studio_reply_cancelled(
        event: StudioReplyCancelled, envelope: Envelope, uow: ProvidersUnitOfWork
    ) -> None:
        await jobs.cancel(event.message_id, uow)

    tasks_events = Subscription[ProvidersUnitOfWork](TASKS_EVENTS)
    return (
        tasks_events.on(StepRequested, step_requested)
        .on(TaskCancelRequested, task_cancel_requested)
        .on(StudioReplyCancelled, studio_reply_cancelled),
    )
