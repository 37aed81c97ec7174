"""The task saga on real Postgres: transitions write their events in the same transaction, stale and
redelivered events change nothing, and the sweeper ends tasks that can no longer end by themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReservationRejected, CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepOutput
from funmagic_contracts.tasks.events import TaskCancelRequested
from funmagic_kit.clock import ManualClock
from funmagic_tasks.application.tasks import TaskService
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.domain.task import ResolvedInput, Task
from funmagic_tasks.domain.tasks import PlannedStep, TaskInput, TaskRequest

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PLAN = (
    PlannedStep(id="one", name="One", type="remove-bg", provider="local", model="default", options={},
                cost=5, timeout_seconds=60, prompt=None, image_input="required"),
    PlannedStep(id="two", name="Two", type="3d-gen", provider="local", model="default", options={},
                cost=7, timeout_seconds=60, prompt=None, image_input="optional"),
)  # fmt: skip


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(settings, pool, clock, ports) -> Tasks:
    # The settings' defaults: a 30 s grace on step deadlines, 10 minutes for credits to answer.
    return build(settings, pool=pool, http=None, clock=clock, **ports)


@pytest.fixture
def service(app: Tasks) -> TaskService:
    return app.tasks


async def add_task(app: Tasks, *, created_at: datetime = T0) -> str:
    task = Task(
        id=str(uuid.uuid4()), user_id="user-1", tool_id=str(uuid.uuid4()), tool_slug="slow",
        parent_task_id=None, plan=PLAN, price=12,
        request=TaskRequest("slow", input=TaskInput(image_asset_id="img-1")),
        resolved=ResolvedInput(prompt=None, image_asset_id="img-1"),
        idempotency_key=None, request_hash="h", created_at=created_at, updated_at=created_at,
    )  # fmt: skip
    async with app.parts.unit_of_work() as uow:
        await uow.tasks.add(task)
    return task.id


def cause() -> Envelope:
    return Envelope.wrap(TaskCancelRequested(task_id=str(uuid.uuid4()), user_id="u", by="u"))


def reserved(task_id: str) -> CreditsReserved:
    return CreditsReserved(
        user_id="user-1", reservation_id=task_id, amount=12, balance_after=0, reserved_after=12
    )


def rejected(task_id: str, reason: str) -> CreditsReservationRejected:
    return CreditsReservationRejected(user_id="user-1", reservation_id=task_id, amount=12, reason=reason)


def step_completed(task_id: str, step_id: str, attempt: int, *assets: tuple[str, str]) -> StepCompleted:
    output = StepOutput(assets=tuple(OutputAsset(asset_id=a, role=r) for a, r in assets))
    return StepCompleted(task_id=task_id, user_id="user-1", step_id=step_id, attempt=attempt, output=output)


def step_failed(task_id: str, step_id: str, attempt: int, code: str, message: str) -> StepFailed:
    return StepFailed(
        task_id=task_id, user_id="user-1", step_id=step_id, attempt=attempt, error_code=code,
        error_message=message, retryable=False,
    )  # fmt: skip


async def events(pool: AsyncConnectionPool) -> list[tuple[str, dict]]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    decoded = [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]
    return [(e.type, e.data) for e in decoded]


async def task(pool: AsyncConnectionPool, task_id: str) -> dict:
    """The task's row as stored."""
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT * FROM tasks WHERE id = %s", (task_id,))).fetchone()
    assert row is not None
    return row


async def test_a_reserved_task_runs_its_first_step(pool, app, service) -> None:
    task_id = await add_task(app)
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved(task_id), cause(), uow)
    row = await task(pool, task_id)
    assert (row["status"], row["current_step_id"]) == ("running", "one")
    assert row["step_deadline_at"] == T0 + timedelta(seconds=60 + 30)
    (started, requested) = [e for e in await events(pool) if e[0] != "TaskRequested"]
    assert started[0] == "TaskStarted"
    assert requested[0] == "StepRequested"
    assert requested[1]["input"]["asset_ids"] == ["img-1"]
    assert requested[1]["deadline_at"].startswith("2026-11-25T12:01:00")


async def test_steps_run_in_order_and_stale_or_repeated_news_changes_nothing(pool, app, service) -> None:
    task_id = await add_task(app)
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved(task_id), cause(), uow)
    output = ("cut-1", "image")
    for step_id, attempt in (("one", 2), ("two", 1)):  # another attempt, another step: stale
        stale = (f"stale-{step_id}-{attempt}", "image")
        async with app.parts.unit_of_work() as uow:
            await service.step_completed(step_completed(task_id, step_id, attempt, stale), cause(), uow)
    assert (await task(pool, task_id))["completed_steps"] == []
    discarded = [e[1] for e in await events(pool) if e[0] == "StepOutputDiscarded"]
    assert [d["asset_ids"] for d in discarded] == [["stale-one-2"], ["stale-two-1"]]
    for _ in range(2):  # a redelivery of the real one
        async with app.parts.unit_of_work() as uow:
            await service.step_completed(step_completed(task_id, "one", 1, output), cause(), uow)
    row = await task(pool, task_id)
    assert (row["completed_steps"], row["current_step_id"]) == (["one"], "two")
    step_requests = [e for e in await events(pool) if e[0] == "StepRequested"]
    assert [e[1]["step_id"] for e in step_requests] == ["one", "two"]
    assert step_requests[1][1]["input"]["asset_ids"] == ["cut-1"]
    async with app.parts.unit_of_work() as uow:
        await service.step_completed(step_completed(task_id, "two", 1, ("m", "model")), cause(), uow)
    row = await task(pool, task_id)
    assert (row["status"], row["charged_credits"]) == ("completed", 12)
    completed = next(e for e in await events(pool) if e[0] == "TaskCompleted")
    assert completed[1]["output"]["assets"] == [{"asset_id": "m", "role": "model"}]
    assert [s["step_id"] for s in completed[1]["output"]["metadata"]["steps"]] == ["one", "two"]


async def test_a_step_that_completes_after_its_task_was_cancelled_has_its_output_discarded(
    pool, app, service
) -> None:
    task_id = await add_task(app)
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved(task_id), cause(), uow)
        await service.step_completed(step_completed(task_id, "one", 1, ("cut", "image")), cause(), uow)
    await service.cancel("user-1", task_id)
    before = await task(pool, task_id)

    async with app.parts.unit_of_work() as uow:  # the provider finished as the cancel went through
        await service.step_completed(step_completed(task_id, "two", 1, ("model", "model")), cause(), uow)
    for _ in range(2):  # and step one's completion, redelivered: the task paid for that one
        async with app.parts.unit_of_work() as uow:
            await service.step_completed(step_completed(task_id, "one", 1, ("cut", "image")), cause(), uow)

    after = await task(pool, task_id)
    assert (after["status"], after["charged_credits"]) == ("cancelled", 5)
    assert after == before
    kinds = [e[0] for e in await events(pool)]
    assert kinds[-3:] == ["TaskCancelRequested", "TaskCancelled", "StepOutputDiscarded"]
    discarded = (await events(pool))[-1][1]
    assert (discarded["step_id"], discarded["asset_ids"]) == ("two", ["model"])
    assert discarded["user_id"] == "user-1"


async def test_a_failed_step_charges_only_the_steps_done(pool, app, service) -> None:
    task_id = await add_task(app)
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved(task_id), cause(), uow)
        await service.step_completed(step_completed(task_id, "one", 1, ("a", "image")), cause(), uow)
        await service.step_failed(
            step_failed(task_id, "two", 1, "provider_unavailable", "it broke"), cause(), uow
        )
    row = await task(pool, task_id)
    assert (row["status"], row["charged_credits"], row["error_code"]) == ("failed", 5, "provider_unavailable")
    failed = next(e for e in await events(pool) if e[0] == "TaskFailed")
    assert failed[1]["charged_credits"] == 5
    assert "step 'two' failed: it broke" in failed[1]["error_message"]


async def test_a_rejected_reservation_fails_the_task_with_nothing_charged(pool, app, service) -> None:
    task_id = await add_task(app)
    async with app.parts.unit_of_work() as uow:
        await service.reservation_rejected(rejected(task_id, "insufficient_credits"), cause(), uow)
        await service.credits_reserved(reserved(task_id), cause(), uow)  # too late: nothing happens
    row = await task(pool, task_id)
    assert (row["status"], row["charged_credits"], row["error_code"]) == ("failed", 0, "insufficient_credits")
    assert "not enough credits: this task costs 12" in row["error_message"]
    assert [e[0] for e in await events(pool)] == ["TaskFailed"]


async def test_the_sweeper_ends_a_step_past_its_deadline_and_stops_its_job(pool, app, service, clock) -> None:
    task_id = await add_task(app)
    on_time = await add_task(app)
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved(task_id), cause(), uow)
    clock.set(T0 + timedelta(seconds=60))
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved(on_time), cause(), uow)
    clock.set(T0 + timedelta(seconds=91))
    assert await service.sweep_overdue() == 1
    row = await task(pool, task_id)
    assert (row["status"], row["error_code"], row["charged_credits"]) == ("failed", "step_timeout", 0)
    assert "did not finish within 60 s" in row["error_message"]
    assert (await task(pool, on_time))["status"] == "running"
    kinds = [e[0] for e in await events(pool)]
    assert kinds[-2:] == ["TaskCancelRequested", "TaskFailed"]
    assert await service.sweep_overdue() == 0


async def test_the_sweeper_ends_a_task_whose_credits_never_answered(pool, app, service, clock) -> None:
    task_id = await add_task(app, created_at=T0)
    clock.set(T0 + timedelta(minutes=10, seconds=1))
    assert await service.sweep_overdue() == 1
    row = await task(pool, task_id)
    assert (row["status"], row["error_code"], row["charged_credits"]) == ("failed", "reservation_timeout", 0)


async def test_one_task_the_sweeper_cannot_end_does_not_hold_back_the_others(
    pool: AsyncConnectionPool, app, service, clock
) -> None:
    # The oldest overdue task comes first every round: a bug that stops its ending (here a trigger refusing
    # its update) must not stop the round before the tasks behind it.
    stuck = await add_task(app, created_at=T0)
    behind = await add_task(app, created_at=T0 + timedelta(seconds=1))
    async with pool.connection() as conn:
        await conn.execute(
            "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'this task cannot be updated'; END $$"
        )
        await conn.execute(
            f"CREATE TRIGGER refuse_stuck BEFORE UPDATE ON tasks FOR EACH ROW"
            f" WHEN (OLD.id = '{stuck}') EXECUTE FUNCTION refuse_update()"
        )
    clock.set(T0 + timedelta(minutes=10, seconds=2))

    assert await service.sweep_overdue() == 1

    assert (await task(pool, behind))["status"] == "failed"
    assert (await task(pool, stuck))["status"] == "pending"


async def test_news_about_a_task_that_is_not_ours_is_passed_over(pool, app, service) -> None:
    # Reservations and step events of other producers share the topics; ids need not even be UUIDs.
    async with app.parts.unit_of_work() as uow:
        await service.credits_reserved(reserved("task-a"), cause(), uow)
        await service.credits_reserved(reserved(str(uuid.uuid4())), cause(), uow)
        await service.step_failed(step_failed("task-b", "one", 1, "x", "y"), cause(), uow)
    assert await events(pool) == []
