"""A closed account, given/when/then: given an account's standing and its tasks, when identity disables,
enables or deletes it, then this standing and these cancellations. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from funmagic_contracts.tasks.events import TaskCancelled, TaskCancelRequested
from funmagic_tasks.domain.accounts import (
    AccountClosed,
    Standing,
    check_may_request_tasks,
    delete,
    disable,
    enable,
    end_tasks_of_closed_account,
    ends_with_a_closed_account,
)
from funmagic_tasks.domain.catalog import Tool, parse_tool_config
from funmagic_tasks.domain.task import (
    Task,
    TaskPolicy,
    cancel,
    check_invariants,
    complete_step,
    request_task,
    start,
)
from funmagic_tasks.domain.tasks import ProducedAsset, TaskInput, TaskRequest, plan_task

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
USER, ADMIN = "user-1", "admin-1"
IMAGE = "5b0c2d7e-6a2f-4a57-9f0e-2f0f9d1f2a11"
POLICY = TaskPolicy()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _step(step_id: str, cost: int) -> dict:
    return {
        "id": step_id, "name": step_id, "type": "remove-bg", "cost": cost, "timeoutSeconds": 60,
        "provider": {"name": "local", "model": "default", "options": {}},
        "input": {"image": "optional", "prompt": "optional"},
    }  # fmt: skip


# cut (5) → model (7)
TOOL = Tool(
    "tool-1", "figme", "FigMe", True, 12, parse_tool_config({"steps": [_step("cut", 5), _step("model", 7)]})
)


def a_pending_task(task_id: str) -> Task:
    request = TaskRequest(tool_slug=TOOL.slug, input=TaskInput(image_asset_id=IMAGE))
    plan = plan_task(TOOL, None, None, request.input)
    return request_task(
        task_id=task_id, user_id=USER, tool=TOOL, request=request, plan=plan, idempotency_key=None, now=T0
    ).task


def a_running_task(task_id: str) -> Task:
    return start(a_pending_task(task_id), now=T0, policy=POLICY).task


def a_task_past_cut(task_id: str) -> Task:
    return complete_step(
        a_running_task(task_id),
        step_id="cut",
        attempt=1,
        assets=[ProducedAsset("cut-out", "image")],
        metadata={},
        now=at(1),
        policy=POLICY,
    ).task


OPEN = Standing(USER)


# --- the standing ---------------------------------------------------------------------------------------


def test_an_open_account_may_request_tasks() -> None:
    check_may_request_tasks(OPEN)


def test_disabling_an_open_account_closes_it_and_it_requests_no_task() -> None:
    disabled = disable(OPEN, now=at(1))

    assert disabled == Standing(USER, "disabled", at(1))
    with pytest.raises(AccountClosed) as refused:
        check_may_request_tasks(disabled)
    assert refused.value.code == "account_closed"


def test_enabling_a_disabled_account_opens_it_again() -> None:
    assert enable(disable(OPEN, now=at(1))) == OPEN


def test_disabling_twice_keeps_the_first_date() -> None:
    disabled = disable(OPEN, now=at(1))

    assert disable(disabled, now=at(2)) == disabled


def test_a_deleted_account_stays_deleted_whatever_comes_after() -> None:
    deleted = delete(disable(OPEN, now=at(1)), now=at(2))

    assert deleted == Standing(USER, "deleted", at(2))
    assert enable(deleted) == deleted
    assert disable(deleted, now=at(3)) == deleted
    assert delete(deleted, now=at(4)) == deleted
    with pytest.raises(AccountClosed):
        check_may_request_tasks(deleted)


def test_enabling_an_open_account_changes_nothing() -> None:
    assert enable(OPEN) == OPEN


# --- the account's tasks --------------------------------------------------------------------------------


def test_only_pending_and_running_tasks_end_with_the_account() -> None:
    running = a_running_task("t-running")
    cancelled = cancel(a_pending_task("t-cancelled"), by=USER, now=at(1)).task

    assert ends_with_a_closed_account(a_pending_task("t-pending"))
    assert ends_with_a_closed_account(running)
    assert not ends_with_a_closed_account(cancelled)


def test_closing_an_account_cancels_each_active_task_as_a_cancel_by_the_closer_would() -> None:
    pending, past_cut = a_pending_task("t-1"), a_task_past_cut("t-2")
    ended = cancel(a_running_task("t-3"), by=USER, now=at(1)).task

    changes = end_tasks_of_closed_account([pending, past_cut, ended], by=ADMIN, now=at(5))

    assert changes == (cancel(pending, by=ADMIN, now=at(5)), cancel(past_cut, by=ADMIN, now=at(5)))
    for change in changes:
        check_invariants(change.task)
        assert change.task.status == "cancelled"
    assert changes[1].events == (
        TaskCancelRequested(task_id="t-2", user_id=USER, by=ADMIN),
        # It pays for the step it completed; credits releases the rest of the hold.
        TaskCancelled(task_id="t-2", user_id=USER, charged_credits=5),
    )
    assert changes[0].events[-1] == TaskCancelled(task_id="t-1", user_id=USER, charged_credits=0)


def test_closing_an_account_again_ends_nothing_more() -> None:
    first = end_tasks_of_closed_account([a_running_task("t-1")], by=USER, now=at(1))

    assert end_tasks_of_closed_account([c.task for c in first], by=USER, now=at(2)) == ()
