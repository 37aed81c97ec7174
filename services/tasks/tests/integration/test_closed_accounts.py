"""Identity's closed accounts through tasks' own subscriptions (`build(...).parts`), fed without
Kafka to the kit's consumer (parsing, inbox) and the real Postgres unit of work: UserDisabled and
UserDeleted cancel the account's pending and running tasks exactly as a cancel does (TaskCancelRequested,
TaskCancelled with what the completed steps cost, so credits releases the rest), once; the account then
requests no task until an admin enables it (a deleted one never again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import UserDeleted, UserDisabled, UserEnabled
from funmagic_contracts.providers.events import StepCompleted, StepOutput
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.domain.accounts import AccountClosed
from funmagic_tasks.domain.tasks import TaskInput, TaskRequest

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
USER, OTHER, ADMIN = "user-1", "user-2", "admin-1"
IMAGE = "5b0c2d7e-6a2f-4a57-9f0e-2f0f9d1f2a11"


@pytest.fixture
def app(settings, pool, ports) -> Tasks:
    return build(settings, pool=pool, http=None, clock=ManualClock(T0), **ports)


@pytest.fixture
async def consumer(app: Tasks) -> AsyncIterator[InMemoryConsumer]:
    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        yield c


async def new_task(app: Tasks, user_id: str, tool: str) -> str:
    view, created = await app.tasks.create(
        user_id, TaskRequest(tool, input=TaskInput(image_asset_id=IMAGE)), None
    )
    assert created
    return str(view["id"])


async def past_cut(consumer: InMemoryConsumer, user_id: str, task_id: str) -> None:
    """The task runs (credits held 12) and completed its first step."""
    await consumer.deliver_event(
        CreditsReserved(
            user_id=user_id, reservation_id=task_id, amount=12, balance_after=38, reserved_after=12
        )
    )
    output = StepOutput(assets=(OutputAsset(asset_id="cut-out", role="image"),))
    await consumer.deliver_event(
        StepCompleted(task_id=task_id, user_id=user_id, step_id="cut", attempt=1, output=output)
    )


async def outbox(pool: AsyncConnectionPool) -> list[Envelope]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    return [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]


async def statuses(pool: AsyncConnectionPool) -> dict[str, tuple[str, int | None]]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT id::text AS id, status, charged_credits FROM tasks")
        ).fetchall()
    return {row["id"]: (row["status"], row["charged_credits"]) for row in rows}


async def test_a_disabled_account_has_its_tasks_cancelled_as_a_cancel_by_the_admin_would_once(
    app: Tasks, consumer: InMemoryConsumer, pool: AsyncConnectionPool, figme: str
) -> None:
    pending, running = await new_task(app, USER, figme), await new_task(app, USER, figme)
    await past_cut(consumer, USER, running)
    done = await new_task(app, USER, figme)
    await app.tasks.cancel(USER, done)
    others = await new_task(app, OTHER, figme)
    before = len(await outbox(pool))

    envelope = Envelope.wrap(UserDisabled(user_id=USER, by=ADMIN, reason="abuse"))
    assert await consumer.deliver(envelope) == "handled"

    assert await statuses(pool) == {
        pending: ("cancelled", 0),
        running: ("cancelled", 5),  # it pays for the step it completed; credits releases the other 7
        done: ("cancelled", 0),
        others: ("pending", None),
    }
    published = (await outbox(pool))[before:]
    # Per task (created at the same instant here, so in no particular order between them): the stop, then
    # the end with what it was charged.
    by_task = {
        t: [(e.type, e.data.get("by"), e.data.get("charged_credits")) for e in published if e.subject == t]
        for t in (pending, running)
    }
    assert by_task == {
        pending: [("TaskCancelRequested", ADMIN, None), ("TaskCancelled", None, 0)],
        running: [("TaskCancelRequested", ADMIN, None), ("TaskCancelled", None, 5)],
    }
    assert len(published) == 4
    assert {e.causation_id for e in published} == {str(envelope.id)}

    # The same event again (a redelivery), or the same news in a new envelope: nothing more.
    assert await consumer.deliver(envelope) == "duplicate"
    await consumer.deliver_event(UserDisabled(user_id=USER, by=ADMIN, reason="abuse"))
    assert len(await outbox(pool)) == before + 4


async def test_a_disabled_account_requests_no_task_until_it_is_enabled(
    app: Tasks, consumer: InMemoryConsumer, figme: str
) -> None:
    await consumer.deliver_event(UserDisabled(user_id=USER, by=ADMIN, reason="abuse"))

    with pytest.raises(AccountClosed):
        await new_task(app, USER, figme)
    await new_task(app, OTHER, figme)  # only that account is closed

    await consumer.deliver_event(UserEnabled(user_id=USER, by=ADMIN, reason="appeal"))
    await new_task(app, USER, figme)


async def test_a_deleted_account_has_its_tasks_cancelled_and_never_requests_one_again(
    app: Tasks, consumer: InMemoryConsumer, pool: AsyncConnectionPool, figme: str
) -> None:
    running = await new_task(app, USER, figme)
    await past_cut(consumer, USER, running)
    before = len(await outbox(pool))

    envelope = await consumer.deliver_event(UserDeleted(user_id=USER))

    assert (await statuses(pool))[running] == ("cancelled", 5)
    published = (await outbox(pool))[before:]
    assert [(e.type, e.data.get("by")) for e in published] == [
        ("TaskCancelRequested", USER),
        ("TaskCancelled", None),
    ]
    assert {e.causation_id for e in published} == {str(envelope.id)}
    # The cancelled task stays, for the user's ledger and the audit.
    assert (await app.tasks.search(user_id=USER))["items"][0]["status"] == "cancelled"

    await consumer.deliver_event(UserEnabled(user_id=USER, by=ADMIN, reason="too late"))
    with pytest.raises(AccountClosed):
        await new_task(app, USER, figme)
    assert len(await outbox(pool)) == before + 2
