"""Outputs that lose their task, fast: storage's own subscriptions (`build(...).parts`) fed without Kafka,
through the kit's consumer (parsing, inbox) and the service's unit of work, on real S3 and Postgres.

TaskDeleted: the deleted tasks' outputs go, objects and records, each with AssetDeleted; published ones
stay; an output arriving for a deleted task afterwards is refused. StepOutputDiscarded (a cancel or a
timeout won the race with the step, so nothing paid for its output): the named outputs of that task go the
same way, and nothing else."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from storage_test_support import PNG, Storage, deletions, exists, get, object_of, output

from funmagic_contracts.tasks.events import StepOutputDiscarded, TaskDeleted
from funmagic_kit.testing import InMemoryConsumer, wait_until
from funmagic_storage.domain.assets import OutputOfDeletedTask

SERVICE = {"X-Test-Internal": "yes", "Content-Type": "image/png"}


def new_id() -> str:
    return str(uuid.uuid4())


def deleted(user: str, task: str, *children: str, by: str | None = None) -> TaskDeleted:
    return TaskDeleted(task_id=task, user_id=user, deleted_task_ids=(task, *children), by=by or user)


def discarded(user: str, task: str, *asset_ids: str) -> StepOutputDiscarded:
    return StepOutputDiscarded(task_id=task, user_id=user, step_id="cut", attempt=1, asset_ids=asset_ids)


async def waiting_for_locks(storage: Storage, count: int) -> bool:
    """Whether `count` sessions of this database wait for an advisory lock."""
    async with storage.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        row = await cursor.fetchone()
    return row is not None and row["n"] >= count


async def test_the_outputs_of_a_deleted_task_and_its_children_go_with_asset_deleted_each(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    task, child = new_id(), new_id()
    outputs = [
        await output(storage, user, task),
        await output(storage, user, task),
        await output(storage, user, child),
        await output(storage, user, child, visibility="admin-private"),
    ]
    url = (await storage.assets.get(user, outputs[0]))["url"]
    objects = [await object_of(storage, asset_id) for asset_id in outputs]

    envelope = await consumer.deliver_event(deleted(user, task, child))

    for asset_id, stored in zip(outputs, objects, strict=True):
        assert not await exists(storage, asset_id)
        assert await storage.objects.head(*stored) is None
    assert (await get(http, url))[0] in (403, 404)  # a URL handed out earlier is dead
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []
    events = await deletions(storage)
    assert sorted(e.data["asset_id"] for e in events) == sorted(outputs)
    assert {e.subject for e in events} == {user}
    assert {e.causation_id for e in events} == {str(envelope.id)}
    assert {e.correlation_id for e in events} == {envelope.correlation_id}


async def test_a_published_output_stays_at_its_public_link(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    task = new_id()
    kept, gone = await output(storage, user, task), await output(storage, user, task)
    cdn_url = (await storage.assets.publish(user, kept))["url"]

    await consumer.deliver_event(deleted(user, task))

    assert await exists(storage, kept)
    assert not await exists(storage, gone)
    assert (await get(http, cdn_url))[:2] == (200, PNG)
    assert [e.data["asset_id"] for e in await deletions(storage)] == [gone]
    [listed] = (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"]
    assert (listed["id"], listed["task_id"], listed["visibility"]) == (kept, task, "public")


async def test_other_tasks_other_users_and_uploads_are_untouched(
    storage: Storage, consumer: InMemoryConsumer
) -> None:
    user, other_user = storage.new_user(), storage.new_user()
    task, other_task = new_id(), new_id()
    untouched = [
        await output(storage, user, other_task),
        await output(storage, user, None),
        await output(storage, other_user, task),  # not the deleted task's owner: not theirs to delete
    ]
    gone = await output(storage, user, task)

    await consumer.deliver_event(deleted(user, task, by=new_id()))  # an admin deleted it

    assert not await exists(storage, gone)
    for asset_id in untouched:
        assert await exists(storage, asset_id)
    assert [e.data["asset_id"] for e in await deletions(storage)] == [gone]


async def test_a_redelivered_deletion_changes_nothing_and_one_without_outputs_is_handled(
    storage: Storage, consumer: InMemoryConsumer
) -> None:
    user = storage.new_user()
    task = new_id()
    await output(storage, user, task)
    envelope = await consumer.deliver_event(deleted(user, task))

    assert await consumer.deliver(envelope) == "duplicate"
    assert len(await deletions(storage)) == 1
    await consumer.deliver_event(deleted(user, new_id()))  # a task that produced nothing
    await consumer.deliver_event(deleted(user, task))  # the same task deleted again, another event
    assert len(await deletions(storage)) == 1


async def test_an_output_stored_after_its_task_was_deleted_is_refused_and_not_registered(
    storage: Storage, consumer: InMemoryConsumer, api: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    task, child = new_id(), new_id()
    await consumer.deliver_event(deleted(user, task, child))
    created_before = len(await storage.outbox())

    with pytest.raises(OutputOfDeletedTask) as caught:
        await output(storage, user, child)  # a provider call that was already finishing
    query = f"user_id={user}&module=image-gen&filename=late.png&task_id={task}"
    async with api.post(f"/v1/internal/assets?{query}", data=PNG, headers=SERVICE) as response:
        problem = await response.json(content_type=None)
        status = response.status

    assert caught.value.code == problem["code"] == "task_deleted"
    assert status == 409
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []
    assert len(await storage.outbox()) == created_before
    # Outputs of other tasks are stored as ever.
    assert await exists(storage, await output(storage, user, new_id()))


async def test_an_output_racing_the_deletion_of_its_task_does_not_outlive_it(
    storage: Storage, consumer: InMemoryConsumer
) -> None:
    user = storage.new_user()
    task = new_id()
    async with storage.parts.unit_of_work() as uow:  # holds the task, so both wait for it
        await uow.assets.lock_tasks([task])
        storing = asyncio.ensure_future(output(storage, user, task))
        deleting = asyncio.ensure_future(consumer.deliver_event(deleted(user, task)))
        await wait_until(lambda: waiting_for_locks(storage, 2), timeout=10, what="both to wait for the task")
    await deleting
    try:  # whichever went first: refused, or stored and then deleted
        stored = await storing
    except OutputOfDeletedTask:
        assert await deletions(storage) == []
    else:
        assert not await exists(storage, stored)
        assert [e.data["asset_id"] for e in await deletions(storage)] == [stored]
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []


async def test_a_discarded_step_output_goes_and_the_tasks_other_outputs_stay(
    storage: Storage, consumer: InMemoryConsumer, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    task = new_id()
    paid_for = await output(storage, user, task)  # an earlier step's output, charged
    late, late_mask = await output(storage, user, task), await output(storage, user, task)
    url = (await storage.assets.get(user, late))["url"]
    stored = await object_of(storage, late)

    envelope = await consumer.deliver_event(discarded(user, task, late, late_mask))

    assert not await exists(storage, late)
    assert not await exists(storage, late_mask)
    assert await storage.objects.head(*stored) is None
    assert (await get(http, url))[0] in (403, 404)  # the link the step's SSE frame carried is dead
    assert await exists(storage, paid_for)
    events = await deletions(storage)
    assert sorted(e.data["asset_id"] for e in events) == sorted([late, late_mask])
    assert {e.causation_id for e in events} == {str(envelope.id)}
    assert await consumer.deliver(envelope) == "duplicate"
    assert len(await deletions(storage)) == 2


async def test_a_discard_names_only_what_it_may_delete(storage: Storage, consumer: InMemoryConsumer) -> None:
    user, other_user = storage.new_user(), storage.new_user()
    task = new_id()
    of_another_task = await output(storage, user, new_id())
    upload = await output(storage, user, None)
    of_another_user = await output(storage, other_user, task)
    published = await output(storage, user, task)
    await storage.assets.publish(user, published)

    await consumer.deliver_event(
        discarded(user, task, of_another_task, upload, of_another_user, published, new_id())
    )

    for asset_id in (of_another_task, upload, of_another_user, published):
        assert await exists(storage, asset_id)
    assert await deletions(storage) == []
