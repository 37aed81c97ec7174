"""Kafka reactions of tasks (consumer group `tasks`), each in the consumer's unit of work with its inbox row.

- credits.events: CreditsReserved → running, first step requested; CreditsReservationRejected → failed.
- providers.events: StepCompleted → next step or completed; StepFailed → failed. Other step events
  (started, progress, delayed) are for the live stream, which the gateway projects itself.
"""

from __future__ import annotations

from funmagic_contracts.credits.events import CreditsReservationRejected, CreditsReserved
from funmagic_contracts.providers.events import StepCompleted, StepFailed
from funmagic_contracts.topics import CREDITS_EVENTS, PROVIDERS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_tasks.application.ports import TasksUnitOfWork
from funmagic_tasks.application.tasks import TaskService

__all__ = ["subscriptions"]


def subscriptions(tasks: TaskService) -> tuple[Subscription[TasksUnitOfWork], ...]:
    credits: Subscription[TasksUnitOfWork] = (
        Subscription(CREDITS_EVENTS)
        .on(CreditsReserved, tasks.credits_reserved)
        .on(CreditsReservationRejected, tasks.reservation_rejected)
    )
    steps: Subscription[TasksUnitOfWork] = (
        Subscription(PROVIDERS_EVENTS)
        .on(StepCompleted, tasks.step_completed)
        .on(StepFailed, tasks.step_failed)
    )
    return credits, steps
