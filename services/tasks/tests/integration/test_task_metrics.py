"""What tasks tells its metrics, on real Postgres: each task that ends (completed, failed, cancelled, or
cancelled by a deletion) is timed once from its creation, by tool and outcome, only when its transaction
commits; the sweeper's overdue count is a gauge of its last round."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepOutput
from funmagic_contracts.tasks.events import TaskCancelRequested
from funmagic_kit.clock import ManualClock
from funmagic_kit.metrics import Metrics
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.domain.task import ResolvedInput, Task
from funmagic_tasks.domain.tasks import PlannedStep, TaskInput, TaskRequest

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
STEP = PlannedStep(
    id="one", name="One", type="remove-bg", provider="local", model="default", options={}, cost=5,
    timeout_seconds=60, prompt=None, image_input="required",
)  # fmt: skip


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics("tasks")


@pytest.fixture
def app(settings, pool, clock, ports, metrics) -> Tasks:
    return build(settings, pool=pool, http=None, clock=clock, metrics=metrics, **ports)


async def add_running_task(app: Tasks, tool: str) -> str:
    task = Task(
        id=str(uuid.uuid4()), user_id="user-1", tool_id=str(uuid.uuid4()), tool_slug=tool,
        parent_task_id=None, plan=(STEP,), price=5,
        request=TaskRequest(tool, input=TaskInput(image_asset_id="img-1")),
        resolved=ResolvedInput(prompt=None, image_asset_id="img-1"),
        idempotency_key=None, request_hash="h", created_at=T0, updated_at=T0,
    )  # fmt: skip
    async with app.parts.unit_of_work() as uow:
        await uow.tasks.add(task)
    reserved = CreditsReserved(
        user_id="user-1", reservation_id=task.id, amount=5, balance_after=0, reserved_after=5
    )
    async with app.parts.unit_of_work() as uow:
        await app.tasks.credits_reserved(reserved, cause(), uow)
    return task.id


def cause() -> Envelope:
    return Envelope.wrap(TaskCancelRequested(task_id=str(uuid.uuid4()), user_id="u", by="u"))


def ended(metrics: Metrics, tool: str, outcome: str, suffix: str = "count") -> float | None:
    labels = {"tool": tool, "outcome": outcome}
    return metrics.registry.get_sample_value(f"funmagic_task_seconds_{suffix}", labels)


async def test_each_ending_is_timed_once_from_creation_by_tool_and_outcome(app, clock, metrics) -> None:
    completed, failed, cancelled, deleted = [await add_running_task(app, "cutout") for _ in range(4)]
    clock.set(T0 + timedelta(seconds=42))
    output = StepOutput(assets=(OutputAsset(asset_id="a-1", role="image"),))
    done = StepCompleted(task_id=completed, user_id="user-1", step_id="one", attempt=1, output=output)
    broke = StepFailed(
        task_id=failed, user_id="user-1", step_id="one", attempt=1, error_code="provider_unavailable",
        error_message="down", retryable=False,
    )  # fmt: skip
    for _ in range(2):  # the second delivery is a duplicate: nothing ends twice
        async with app.parts.unit_of_work() as uow:
            await app.tasks.step_completed(done, cause(), uow)
            await app.tasks.step_failed(broke, cause(), uow)
    await app.tasks.cancel("user-1", cancelled)
    await app.tasks.delete("user-1", deleted)  # still running: cancelled first, then deleted
    await app.tasks.delete("user-1", completed)  # had ended: nothing more to time

    assert ended(metrics, "cutout", "completed") == 1
    assert ended(metrics, "cutout", "completed", "sum") == 42
    assert ended(metrics, "cutout", "failed") == 1
    assert ended(metrics, "cutout", "cancelled") == 2
    assert ended(metrics, "cutout", "cancelled", "sum") == 84


async def test_an_ending_whose_transaction_rolls_back_is_not_timed(app, metrics) -> None:
    task_id = await add_running_task(app, "rolled-back")
    broke = StepFailed(
        task_id=task_id, user_id="user-1", step_id="one", attempt=1, error_code="x", error_message="y",
        retryable=False,
    )  # fmt: skip

    async def fail_then_roll_back() -> None:
        async with app.parts.unit_of_work() as uow:
            await app.tasks.step_failed(broke, cause(), uow)
            raise RuntimeError("the handler's transaction fails after the decision")

    with pytest.raises(RuntimeError):
        await fail_then_roll_back()

    assert ended(metrics, "rolled-back", "failed") is None
    async with app.parts.unit_of_work() as uow:  # redelivered, it ends the task for real
        await app.tasks.step_failed(broke, cause(), uow)
    assert ended(metrics, "rolled-back", "failed") == 1


async def test_the_overdue_gauge_is_what_the_sweepers_last_round_found(app, clock, metrics) -> None:
    def overdue() -> float | None:
        return metrics.registry.get_sample_value("funmagic_tasks_overdue")

    await add_running_task(app, "slow")
    assert await app.tasks.sweep_overdue() == 0
    assert overdue() == 0
    clock.set(T0 + timedelta(seconds=91))  # past the step's 60 s and the 30 s grace
    assert await app.tasks.sweep_overdue() == 1
    assert overdue() == 1
    assert await app.tasks.sweep_overdue() == 0  # it ended the task: none left
    assert overdue() == 0
    assert ended(metrics, "slow", "failed", "sum") == 91
