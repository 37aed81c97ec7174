"""Kafka reactions of tasks (consumer group `tasks`), each in the consumer's unit of work with its inbox row.

- credits.events: CreditsReserved → running, first step requested; CreditsReservationRejected → failed.
- providers.events, by the step's scope: `web` steps drive tasks — StepCompleted → next step or completed;
  StepFailed → failed (started, progress and delayed are for the live stream, which the gateway projects
  itself); `admin` steps are studio replies — StepStarted → running, StepCompleted → completed,
  StepFailed → failed.
- identity.events: UserDisabled and UserDeleted → the account requests no task, and its pending and running
  tasks are cancelled (credits releases their holds as for any cancel); UserEnabled → a disabled account may
  request tasks again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from funmagic_contracts.base import ProviderScope
from funmagic_contracts.credits.events import CreditsReservationRejected, CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserDeleted, UserDisabled, UserEnabled
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepStarted
from funmagic_contracts.topics import CREDITS_EVENTS, IDENTITY_EVENTS, PROVIDERS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_tasks.application.ports import TasksUnitOfWork
from funmagic_tasks.application.studio import StudioService
from funmagic_tasks.application.tasks import TaskService

__all__ = ["subscriptions"]


class _ScopedStep(Protocol):
    @property
    def scope(self) -> ProviderScope: ...


StepT = TypeVar("StepT", bound=_ScopedStep)
Handler = Callable[[StepT, Envelope, TasksUnitOfWork], Awaitable[None]]


def _in_studio(event: _ScopedStep) -> bool:
    return event.scope == "admin"


def _by_scope(web: Handler[StepT], admin: Handler[StepT]) -> Handler[StepT]:
    async def handle(event: StepT, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        await (admin if _in_studio(event) else web)(event, envelope, uow)

    return handle


def subscriptions(tasks: TaskService, studio: StudioService) -> tuple[Subscription[TasksUnitOfWork], ...]:
    credits: Subscription[TasksUnitOfWork] = (
        Subscription(CREDITS_EVENTS)
        .on(CreditsReserved, tasks.credits_reserved)
        .on(CreditsReservationRejected, tasks.reservation_rejected)
    )
    steps: Subscription[TasksUnitOfWork] = (
        Subscription(PROVIDERS_EVENTS)
        # Only a studio reply shows that its step started; a task's step leaves the task as it is.
        .on(StepStarted, studio.reply_started, when=_in_studio)
        .on(StepCompleted, _by_scope(tasks.step_completed, studio.reply_completed))
        .on(StepFailed, _by_scope(tasks.step_failed, studio.reply_failed))
    )
    identity: Subscription[TasksUnitOfWork] = (
        Subscription(IDENTITY_EVENTS)
        .on(UserDisabled, tasks.user_disabled)
        .on(UserEnabled, tasks.user_enabled)
        .on(UserDeleted, tasks.user_deleted)
    )
    return credits, steps, identity
