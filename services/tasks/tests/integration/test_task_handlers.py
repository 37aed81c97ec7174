"""Tasks' typed subscriptions on the kit's consumer, fed without Kafka, with the real Postgres
unit of work: each event is parsed into its contract class, handled with its inbox row, and what the saga
decided is in the outbox caused by it. Redeliveries are recognised, stale and foreign news changes nothing,
and data that does not match its contract is dead-lettered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReservationRejected, CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepOutput, StepStarted
from funmagic_contracts.topics import DLQ_ERROR_HEADER
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.domain.tasks import TaskInput, TaskRequest

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
USER = "user-1"
IMAGE = "5b0c2d7e-6a2f-4a57-9f0e-2f0f9d1f2a11"


@pytest.fixture
def app(settings, pool, ports) -> Tasks:
    return build(settings, pool=pool, http=None, clock=ManualClock(T0), **ports)


@pytest.fixture
async def consumer(app: Tasks) -> AsyncIterator[InMemoryConsumer]:
    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        yield c


@pytest.fixture
async def task_id(app: Tasks, figme: str) -> str:
    """A pending two-step task (cut 5 → model 7), requested over the use case as the API does."""
    view, created = await app.tasks.create(
        USER, TaskRequest("figme", input=TaskInput(image_asset_id=IMAGE)), None
    )
    assert created
    return str(view["id"])


def reserved(task_id: str) -> CreditsReserved:
    return CreditsReserved(
        user_id=USER, reservation_id=task_id, amount=12, balance_after=38, reserved_after=12
    )


def completed(task_id: str, step_id: str, attempt: int = 1, role: str = "image") -> StepCompleted:
    output = StepOutput(assets=(OutputAsset(asset_id=f"{step_id}-out", role=role),))
    return StepCompleted(task_id=task_id, user_id=USER, step_id=step_id, attempt=attempt, output=output)


async def outbox(pool: AsyncConnectionPool) -> list[Envelope]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    return [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]


async def state(pool: AsyncConnectionPool, task_id: str) -> dict:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT * FROM tasks WHERE id = %s", (task_id,))).fetchone()
    assert row is not None
    return row


async def test_reserved_credits_start_the_task_and_its_events_follow_from_the_reservation(
    pool, consumer, task_id
) -> None:
    cause = await consumer.deliver_event(reserved(task_id))

    row = await state(pool, task_id)
    assert (row["status"], row["current_step_id"], row["started_at"]) == ("running", "cut", T0)
    requested, started, step = [e for e in await outbox(pool) if e.subject == task_id]
    assert [e.type for e in (requested, started, step)] == ["TaskRequested", "TaskStarted", "StepRequested"]
    assert (started.causation_id, step.causation_id) == (str(cause.id), str(cause.id))
    assert step.correlation_id == cause.correlation_id
    assert (step.subject, step.data["step_id"], step.data["input"]["asset_ids"]) == (task_id, "cut", [IMAGE])


async def test_a_started_step_of_a_task_is_passed_over_without_a_transaction(pool, consumer, task_id) -> None:
    """Only a studio reply shows that its step started: a task's StepStarted leaves no inbox row."""
    await consumer.deliver_event(reserved(task_id))
    before = (await state(pool, task_id), len(await outbox(pool)))
    started = StepStarted(task_id=task_id, user_id=USER, step_id="cut", provider="local", attempt=1)

    assert await consumer.deliver(Envelope.wrap(started)) == "skipped"
    assert (await state(pool, task_id), len(await outbox(pool))) == before
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM processed_events WHERE event_type = 'StepStarted'"
        )
        assert (await cursor.fetchone())["n"] == 0


async def test_a_redelivered_event_is_a_duplicate_and_changes_nothing(pool, consumer, task_id) -> None:
    envelope = Envelope.wrap(reserved(task_id))

    first = await consumer.deliver(envelope)
    before = (await state(pool, task_id), len(await outbox(pool)))
    second = await consumer.deliver(envelope)

    assert (first, second) == ("handled", "duplicate")
    assert (await state(pool, task_id), len(await outbox(pool))) == before


async def test_the_same_news_in_a_new_envelope_is_handled_and_changes_nothing(
    pool, consumer, task_id
) -> None:
    await consumer.deliver_event(reserved(task_id))
    await consumer.deliver_event(completed(task_id, "cut"))
    before = (await state(pool, task_id), len(await outbox(pool)))

    await consumer.deliver_event(reserved(task_id))  # credits answered twice
    await consumer.deliver_event(completed(task_id, "cut"))  # providers retried its publish

    assert (await state(pool, task_id), len(await outbox(pool))) == before


async def test_a_step_completed_in_another_attempt_or_for_another_step_only_has_its_output_discarded(
    pool, consumer, task_id
) -> None:
    await consumer.deliver_event(reserved(task_id))
    before = (await state(pool, task_id), len(await outbox(pool)))

    assert await consumer.deliver(Envelope.wrap(completed(task_id, "cut", attempt=2))) == "handled"
    assert await consumer.deliver(Envelope.wrap(completed(task_id, "model"))) == "handled"

    assert await state(pool, task_id) == before[0]
    added = (await outbox(pool))[before[1] :]
    assert [(e.type, e.data["step_id"], e.data["asset_ids"]) for e in added] == [
        ("StepOutputDiscarded", "cut", ["cut-out"]),
        ("StepOutputDiscarded", "model", ["model-out"]),
    ]


async def test_the_steps_run_in_order_to_a_completed_task_that_charges_every_step(
    pool, consumer, task_id
) -> None:
    await consumer.deliver_event(reserved(task_id))
    await consumer.deliver_event(completed(task_id, "cut"))
    last = await consumer.deliver_event(completed(task_id, "model", role="model"))

    row = await state(pool, task_id)
    assert (row["status"], row["charged_credits"], row["completed_steps"]) == (
        "completed",
        12,
        ["cut", "model"],
    )
    envelopes = await outbox(pool)
    assert [e.data["step_id"] for e in envelopes if e.type == "StepRequested"] == ["cut", "model"]
    done = envelopes[-1]
    assert (done.type, done.causation_id, done.data["charged_credits"]) == ("TaskCompleted", str(last.id), 12)
    assert done.data["output"]["assets"] == [{"asset_id": "model-out", "role": "model"}]


async def test_a_failed_step_or_a_rejected_reservation_fails_the_task(pool, consumer, app, task_id) -> None:
    other, _ = await app.tasks.create(USER, TaskRequest("figme", input=TaskInput(image_asset_id=IMAGE)), None)
    await consumer.deliver_event(reserved(task_id))
    await consumer.deliver_event(
        StepFailed(task_id=task_id, user_id=USER, step_id="cut", attempt=1, error_code="provider_unavailable",
                   error_message="down", retryable=True)
    )  # fmt: skip
    await consumer.deliver_event(
        CreditsReservationRejected(
            user_id=USER, reservation_id=str(other["id"]), amount=12, reason="insufficient_credits"
        )
    )

    assert [
        (r["status"], r["error_code"])
        for r in [await state(pool, task_id), await state(pool, str(other["id"]))]
    ] == [
        ("failed", "provider_unavailable"),
        ("failed", "insufficient_credits"),
    ]
    failures = [e.data for e in await outbox(pool) if e.type == "TaskFailed"]
    assert [(f["task_id"], f["charged_credits"]) for f in failures] == [(task_id, 0), (other["id"], 0)]


@pytest.mark.parametrize(
    "foreign_id", ["job-7", "00000000-0000-4000-8000-000000000000"], ids=["not a uuid", "unknown"]
)
async def test_news_about_an_id_that_is_not_one_of_our_tasks_is_handled_and_changes_nothing(
    pool, consumer, task_id, foreign_id: str
) -> None:
    before = (await state(pool, task_id), len(await outbox(pool)))

    for event in (reserved(foreign_id), completed(foreign_id, "cut")):
        assert await consumer.deliver(Envelope.wrap(event)) == "handled"

    assert (await state(pool, task_id), len(await outbox(pool))) == before


async def test_data_that_does_not_match_its_contract_is_dead_lettered(pool, consumer, task_id) -> None:
    good = Envelope.wrap(reserved(task_id))
    forged = good.model_copy(update={"data": {**good.data, "amount": -12}})

    outcome = await consumer.deliver(forged)

    assert outcome == "dead_lettered"
    ((_, _, headers),) = consumer.dead_letters.sent
    assert "amount" in dict(headers)[DLQ_ERROR_HEADER].decode()
    assert (await state(pool, task_id))["status"] == "pending"
