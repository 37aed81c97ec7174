"""Kafka reactions of storage (consumer group `storage`): each runs in the consumer's unit of work, so the
records' change, its outbox rows and the inbox row commit together.

- TaskDeleted → the deleted tasks' outputs go (objects and records, AssetDeleted each), except the
  published ones.
- StepOutputDiscarded → the discarded outputs go the same way (a cancel or a timeout won the race with
  the step: nothing paid for them).
- StudioChatDeleted → the same for the images the chat's replies made (their task id is the reply's id).
- UserDeleted → the account's files are scheduled for removal after the grace period
  (DELETED_USER_ASSET_GRACE_HOURS; the purge worker removes them), and nothing new is stored for it.
  UserDisabled removes nothing: storage does not subscribe to it.
"""

from __future__ import annotations

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserDeleted
from funmagic_contracts.tasks.events import StepOutputDiscarded, StudioChatDeleted, TaskDeleted
from funmagic_contracts.topics import IDENTITY_EVENTS, TASKS_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_storage.application.assets import AssetService
from funmagic_storage.application.ports import StorageUnitOfWork

__all__ = ["StorageReactions", "subscriptions"]


class StorageReactions:
    def __init__(self, assets: AssetService) -> None:
        self._assets = assets

    async def task_deleted(self, event: TaskDeleted, envelope: Envelope, uow: StorageUnitOfWork) -> None:
        await self._assets.delete_task_outputs(
            uow,
            user_id=event.user_id,
            task_ids=(event.task_id, *event.deleted_task_ids),
            caused_by=envelope,
        )

    async def step_output_discarded(
        self, event: StepOutputDiscarded, envelope: Envelope, uow: StorageUnitOfWork
    ) -> None:
        await self._assets.delete_discarded_outputs(
            uow, user_id=event.user_id, task_id=event.task_id, asset_ids=event.asset_ids, caused_by=envelope
        )

    async def studio_chat_deleted(
        self, event: StudioChatDeleted, envelope: Envelope, uow: StorageUnitOfWork
    ) -> None:
        await self._assets.delete_task_outputs(
            uow, user_id=event.admin_id, task_ids=event.message_ids, caused_by=envelope
        )

    async def user_deleted(self, event: UserDeleted, envelope: Envelope, uow: StorageUnitOfWork) -> None:
        await self._assets.schedule_owner_purge(uow, user_id=event.user_id)


def subscriptions(assets: AssetService) -> tuple[Subscription[StorageUnitOfWork], ...]:
    reactions = StorageReactions(assets)
    tasks: Subscription[StorageUnitOfWork] = (
        Subscription(TASKS_EVENTS)
        .on(TaskDeleted, reactions.task_deleted)
        .on(StepOutputDiscarded, reactions.step_output_discarded)
        .on(StudioChatDeleted, reactions.studio_chat_deleted)
    )
    identity: Subscription[StorageUnitOfWork] = Subscription(IDENTITY_EVENTS).on(
        UserDeleted, reactions.user_deleted
    )
    return tasks, identity
