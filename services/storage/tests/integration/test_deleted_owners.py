"""UserDeleted and the purge worker's step: storage's own subscriptions (`build(...).parts`) fed without
Kafka, through the kit's consumer (parsing, inbox) and the service's unit of work, on real S3 and
Postgres. A deleted account's files stay for the grace period, then go, records and objects, each with
AssetDeleted (published ones stay); nothing new is registered for the account; a disabled account keeps
everything."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import aiohttp
import pytest
from storage_test_support import (
    PNG,
    Storage,
    deletions,
    exists,
    get,
    object_of,
    output,
    put,
    upload,
    uploaded_ticket,
)

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserDeleted, UserDisabled
from funmagic_kit.testing import InMemoryConsumer
from funmagic_storage.domain.deleted_owners import OwnerDeleted

GRACE = timedelta(
    hours=72
)  # the default of DELETED_USER_ASSET_GRACE_HOURS, which the fixture's settings keep


def new_task() -> str:
    return str(uuid.uuid4())


async def test_a_deleted_accounts_files_stay_for_the_grace_period_then_go_but_the_published_ones(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user, other = storage.new_user(), storage.new_user()
    uploaded = (await upload(storage, http, user))["id"]
    made = await output(storage, user, new_task())
    admin_only = await output(storage, user, new_task(), visibility="admin-private")
    shared = await output(storage, user, new_task())
    cdn_url = (await storage.assets.publish(user, shared))["url"]
    someone_elses = await output(storage, other, new_task())
    doomed = [uploaded, made, admin_only]
    objects = [await object_of(storage, asset_id) for asset_id in doomed]

    envelope = Envelope.wrap(UserDeleted(user_id=user))
    assert await consumer.deliver(envelope) == "handled"
    assert await consumer.deliver(envelope) == "duplicate"

    # Within the grace period, everything is still there, whatever the worker does.
    storage.clock.advance(GRACE - timedelta(minutes=1))
    assert await storage.assets.purge_deleted_owners() == 0
    assert all([await exists(storage, asset_id) for asset_id in [*doomed, shared, someone_elses]])
    # The same news again (identity published it twice) does not push the purge back.
    await consumer.deliver_event(UserDeleted(user_id=user))

    storage.clock.advance(timedelta(minutes=1))
    assert await storage.assets.purge_deleted_owners() == 3

    for asset_id, stored in zip(doomed, objects, strict=True):
        assert not await exists(storage, asset_id)
        assert await storage.objects.head(*stored) is None
    assert sorted(e.data["asset_id"] for e in await deletions(storage)) == sorted(doomed)
    assert await exists(storage, shared)  # published: it stays at its public link
    assert (await get(http, cdn_url))[0] == 200
    assert await exists(storage, someone_elses)
    # Done once: the next rounds find nothing to do.
    storage.clock.advance(GRACE)
    assert await storage.assets.purge_deleted_owners() == 0
    assert len(await deletions(storage)) == 3


async def test_nothing_new_is_registered_for_a_deleted_account(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="late.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200

    await consumer.deliver_event(UserDeleted(user_id=user))

    with pytest.raises(OwnerDeleted):  # a provider's output of a task that was finishing
        await output(storage, user, new_task())
    with pytest.raises(OwnerDeleted):  # an upload confirmed late
        await storage.assets.complete_upload(user, ticket["upload_id"])
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []


async def test_an_account_deleted_while_its_upload_is_checked_gets_nothing_registered(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await uploaded_ticket(storage, http, user, filename="late.png")
    objects = storage.assets.objects

    class DeletedDuringTheCheck:
        async def inspect(self, *args: object, **kwargs: object) -> object:
            await consumer.deliver_event(UserDeleted(user_id=user))
            return await objects.inspect(*args, **kwargs)

        def __getattr__(self, name: str) -> object:
            return getattr(objects, name)

    racing = dataclasses.replace(storage.assets, objects=DeletedDuringTheCheck())
    with pytest.raises(OwnerDeleted):
        await racing.complete_upload(user, ticket["upload_id"])
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []


async def test_a_disabled_account_keeps_its_files(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    uploaded = (await upload(storage, http, user))["id"]

    outcome = await consumer.deliver(Envelope.wrap(UserDisabled(user_id=user, by="admin-1", reason="abuse")))

    assert outcome == "skipped"  # storage does not even subscribe to it
    storage.clock.advance(GRACE * 2)
    assert await storage.assets.purge_deleted_owners() == 0
    assert await exists(storage, uploaded)
    assert await output(storage, user, new_task())  # it may still get files (an admin may enable it again)
