"""The task saga on real Postgres: transitions write their events in the same transaction, stale and
redelivered events change nothing, and the sweeper ends tasks that can no longer end by themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.tasks.events import TaskCancelRequested
from funmagic_kit.db import UnitOfWork
from funmagic_tasks.adapters.catalog_records import CatalogRecords
from funmagic_tasks.adapters.task_records import TaskRecords
from funmagic_tasks.application.tasks import TaskPolicy, TaskService
from funmagic_tasks.bootstrap import publish

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PLAN = [
    {"id": "one", "name": "One", "type": "remove-bg", "provider": "local", "model": "default", "options": {},
     "cost": 5, "timeout_seconds": 60, "prompt": None, "image_input": "required"},
    {"id": "two", "name": "Two", "type": "3d-gen", "provider": "local", "model": "default", "options": {},
     "cost": 7, "timeout_seconds": 60, "prompt": None, "image_input": "optional"},
]  # fmt: skip


class Clock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def service(pool, clock) -> TaskService:
    return TaskService(
        uow=lambda: UnitOfWork(pool), tasks=TaskRecords, catalog=CatalogRecords, assets=None,  # type: ignore[arg-type]
        publish=publish, clock=clock,
        policy=TaskPolicy(deadline_grace=timedelta(seconds=30), pending_timeout=timedelta(minutes=10)),
    )  # fmt: skip


async def add_task(pool, *, created_at: datetime = T0) -> str:
    task_id = str(uuid.uuid4())
    async with UnitOfWork(pool) as uow:
        await TaskRecords(uow.conn).add(
            {"id": task_id, "user_id": "user-1", "tool_id": str(uuid.uuid4()), "tool_slug": "slow",
             "parent_task_id": None, "plan": PLAN, "step_ids": ["one", "two"], "price": 12,
             "idempotency_key": None, "request_hash": "h", "now": created_at},
            {"request": {"toolSlug": "slow", "input": {"imageAssetId": "img-1"}},
             "resolved": {"prompt": None, "image_asset_id": "img-1"}},
        )  # fmt: skip
    return task_id


def cause() -> Envelope:
    return Envelope.wrap(TaskCancelRequested(task_id=str(uuid.uuid4()), user_id="u", by="u"))


async def events(pool) -> list[tuple[str, dict]]:
    async with UnitOfWork(pool) as uow:
        rows = await (await uow.conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    decoded = [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]
    return [(e.type, e.data) for e in decoded]


async def task(pool, task_id: str) -> dict:
    async with UnitOfWork(pool) as uow:
        row = await TaskRecords(uow.conn).get(task_id)
    assert row is not None
    return row


async def test_a_reserved_task_runs_its_first_step(pool, service) -> None:
    task_id = await add_task(pool)
    async with UnitOfWork(pool) as uow:
        await service.credits_reserved(uow.conn, task_id, cause())
    row = await task(pool, task_id)
    assert (row["status"], row["current_step_id"]) == ("running", "one")
    assert row["step_deadline_at"] == T0 + timedelta(seconds=60 + 30)
    (started, requested) = [e for e in await events(pool) if e[0] != "TaskRequested"]
    assert started[0] == "TaskStarted"
    assert requested[0] == "StepRequested"
    assert requested[1]["input"]["asset_ids"] == ["img-1"]
    assert requested[1]["deadline_at"].startswith("2026-11-25T12:01:00")


async def test_steps_run_in_order_and_stale_or_repeated_news_changes_nothing(pool, service) -> None:
    task_id = await add_task(pool)
    async with UnitOfWork(pool) as uow:
        await service.credits_reserved(uow.conn, task_id, cause())
    output = {"assets": [{"asset_id": "cut-1", "role": "image"}], "metadata": {}}
    for step_id, attempt in (("one", 2), ("two", 1)):  # another attempt, another step: stale
        async with UnitOfWork(pool) as uow:
            await service.step_completed(uow.conn, task_id, step_id, attempt, output, cause())
    assert (await task(pool, task_id))["completed_steps"] == []
    for _ in range(2):  # a redelivery of the real one
        async with UnitOfWork(pool) as uow:
            await service.step_completed(uow.conn, task_id, "one", 1, output, cause())
    row = await task(pool, task_id)
    assert (row["completed_steps"], row["current_step_id"]) == (["one"], "two")
    step_requests = [e for e in await events(pool) if e[0] == "StepRequested"]
    assert [e[1]["step_id"] for e in step_requests] == ["one", "two"]
    assert step_requests[1][1]["input"]["asset_ids"] == ["cut-1"]
    async with UnitOfWork(pool) as uow:
        await service.step_completed(
            uow.conn, task_id, "two", 1, {"assets": [{"asset_id": "m", "role": "model"}]}, cause()
        )
    row = await task(pool, task_id)
    assert (row["status"], row["charged_credits"]) == ("completed", 12)
    completed = next(e for e in await events(pool) if e[0] == "TaskCompleted")
    assert completed[1]["output"]["assets"] == [{"asset_id": "m", "role": "model"}]
    assert [s["step_id"] for s in completed[1]["output"]["metadata"]["steps"]] == ["one", "two"]


async def test_a_failed_step_charges_only_the_steps_done(pool, service) -> None:
    task_id = await add_task(pool)
    async with UnitOfWork(pool) as uow:
        await service.credits_reserved(uow.conn, task_id, cause())
        done = {"assets": [{"asset_id": "a", "role": "image"}]}
        await service.step_completed(uow.conn, task_id, "one", 1, done, cause())
        await service.step_failed(uow.conn, task_id, "two", 1, "provider_unavailable", "it broke", cause())
    row = await task(pool, task_id)
    assert (row["status"], row["charged_credits"], row["error_code"]) == ("failed", 5, "provider_unavailable")
    failed = next(e for e in await events(pool) if e[0] == "TaskFailed")
    assert failed[1]["charged_credits"] == 5
    assert "step 'two' failed: it broke" in failed[1]["error_message"]


async def test_a_rejected_reservation_fails_the_task_with_nothing_charged(pool, service) -> None:
    task_id = await add_task(pool)
    async with UnitOfWork(pool) as uow:
        await service.reservation_rejected(uow.conn, task_id, "insufficient_credits", cause())
        await service.credits_reserved(uow.conn, task_id, cause())  # too late: nothing happens
    row = await task(pool, task_id)
    assert (row["status"], row["charged_credits"], row["error_code"]) == ("failed", 0, "insufficient_credits")
    assert "not enough credits: this task costs 12" in row["error_message"]
    assert [e[0] for e in await events(pool)] == ["TaskFailed"]


async def test_the_sweeper_ends_a_step_past_its_deadline_and_stops_its_job(pool, service, clock) -> None:
    task_id = await add_task(pool)
    on_time = await add_task(pool)
    async with UnitOfWork(pool) as uow:
        await service.credits_reserved(uow.conn, task_id, cause())
    clock.current = T0 + timedelta(seconds=60)
    async with UnitOfWork(pool) as uow:
        await service.credits_reserved(uow.conn, on_time, cause())
    clock.current = T0 + timedelta(seconds=91)
    assert await service.sweep_overdue() == 1
    row = await task(pool, task_id)
    assert (row["status"], row["error_code"], row["charged_credits"]) == ("failed", "step_timeout", 0)
    assert "did not finish within 60 s" in row["error_message"]
    assert (await task(pool, on_time))["status"] == "running"
    kinds = [e[0] for e in await events(pool)]
    assert kinds[-2:] == ["TaskCancelRequested", "TaskFailed"]
    assert await service.sweep_overdue() == 0


async def test_the_sweeper_ends_a_task_whose_credits_never_answered(pool, service, clock) -> None:
    task_id = await add_task(pool, created_at=T0)
    clock.current = T0 + timedelta(minutes=10, seconds=1)
    assert await service.sweep_overdue() == 1
    row = await task(pool, task_id)
    assert (row["status"], row["error_code"], row["charged_credits"]) == ("failed", "reservation_timeout", 0)


async def test_news_about_a_task_that_is_not_ours_is_passed_over(pool, service) -> None:
    # Reservations and step events of other producers share the topics; ids need not even be UUIDs.
    async with UnitOfWork(pool) as uow:
        await service.credits_reserved(uow.conn, "task-a", cause())
        await service.credits_reserved(uow.conn, str(uuid.uuid4()), cause())
        await service.step_failed(uow.conn, "task-b", "one", 1, "x", "y", cause())
    assert await events(pool) == []
