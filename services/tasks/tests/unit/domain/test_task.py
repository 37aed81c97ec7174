"""The task aggregate, given/when/then: given a task in some state (reached through earlier transitions),
when a transition is decided, then these events and this state. No I/O.

Every state a transition produces is checked against the invariants (`when`), and news that is not about
the task's current state changes nothing and says nothing (`then_nothing_changed`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.tasks.events import (
    StepInput,
    StepOutputDiscarded,
    StepRequested,
    TaskCancelled,
    TaskCancelRequested,
    TaskCompleted,
    TaskDeleted,
    TaskFailed,
    TaskOutput,
    TaskRequested,
    TaskStarted,
)
from funmagic_tasks.domain.catalog import Tool, parse_tool_config
from funmagic_tasks.domain.task import (
    InvariantViolated,
    ResolvedInput,
    StepResult,
    Task,
    TaskChange,
    TaskDeletion,
    TaskError,
    TaskPolicy,
    TaskResult,
    cancel,
    charged_is_the_cost_of_completed_steps,
    check_invariants,
    complete_step,
    delete,
    event_is_about_the_current_step,
    fail_step,
    is_a_use_of_its_tool,
    may_request_another,
    parent_of,
    reject_reservation,
    request_task,
    start,
    step_result_document,
    time_out,
    visible_to,
)
from funmagic_tasks.domain.tasks import (
    ParentTask,
    ProducedAsset,
    TaskInput,
    TaskRequest,
    fingerprint,
    plan_task,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
USER, ADMIN, STRANGER = "user-1", "admin-1", "user-2"
TASK_ID = "7d1f3c2a-0b4e-4c55-9a7e-1f2e3d4c5b6a"
CHILD_ID, SECOND_CHILD_ID = "7d1f3c2a-0b4e-4c55-9a7e-00000000c001", "7d1f3c2a-0b4e-4c55-9a7e-00000000c002"
IMAGE = "5b0c2d7e-6a2f-4a57-9f0e-2f0f9d1f2a11"
POLICY = TaskPolicy(
    max_active_per_user=3, deadline_grace=timedelta(seconds=30), pending_timeout=timedelta(minutes=10)
)


def step(step_id: str, cost: int, step_type: str = "remove-bg", *, image: str = "required", **extra: object):
    return {
        "id": step_id, "name": step_id.title(), "type": step_type, "cost": cost, "timeoutSeconds": 60,
        "provider": {"name": "local", "model": "default", "options": {"quality": "high"}},
        "input": {"image": image, "prompt": "optional"}, **extra,
    }  # fmt: skip


def tool(*steps: dict, pipeline: bool = True, tool_id: str = "tool-1", styles: tuple = ()) -> Tool:
    config = parse_tool_config({"steps": list(steps), "pipeline": pipeline, "styleReferences": list(styles)})
    return Tool(tool_id, "figme", "FigMe", True, sum(int(s["cost"]) for s in steps), config)


# cut (5) → model (7); and gen (10) → cut (5) → model (7)
TWO_STEPS = tool(step("cut", 5), step("model", 7, "3d-gen", image="optional"))
THREE_STEPS = tool(
    step("gen", 10, "image-gen", image="optional"),
    step("cut", 5),
    step("model", 7, "3d-gen", image="optional"),
    styles=({"id": "anime", "name": "Anime", "prompt": "Transform into anime style"},),
)


def when(change: TaskChange) -> TaskChange:
    """The decision, after checking that what it produced holds together."""
    check_invariants(change.task)
    return change


def step_requested(change: TaskChange) -> StepRequested:
    """The step the change asks providers to run."""
    (requested,) = [e for e in change.events if isinstance(e, StepRequested)]
    return requested


def then_nothing_changed(before: Task, change: TaskChange) -> None:
    assert change.events == ()
    assert not change.changed
    assert change.task == before


def then_only_discarded(before: Task, change: TaskChange, step_id: str, *asset_ids: str, attempt: int = 1):
    """The task stays as it was; what the step made is discarded (nobody pays for it)."""
    assert change.task == before
    assert change.events == (
        StepOutputDiscarded(
            task_id=before.id, user_id=before.user_id, step_id=step_id, attempt=attempt, asset_ids=asset_ids
        ),
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def request(
    on: Tool = TWO_STEPS,
    *,
    step_id: str | None = None,
    image: str | None = IMAGE,
    prompt: str | None = None,
    style: str | None = None,
    parent: Task | None = None,
    key: str | None = None,
    now: datetime = T0,
    task_id: str = TASK_ID,
) -> TaskChange:
    """A user's request for a task on `on`, planned and decided."""
    wanted = TaskRequest(
        tool_slug=on.slug,
        step_id=step_id,
        parent_task_id=parent.id if parent else None,
        input=TaskInput(image_asset_id=image, prompt=prompt, style_reference_id=style),
    )
    plan = plan_task(on, step_id, parent_of(parent) if parent else None, wanted.input)
    return when(
        request_task(
            task_id=task_id, user_id=USER, tool=on, request=wanted, plan=plan, idempotency_key=key, now=now
        )
    )


def a_pending_task(on: Tool = TWO_STEPS, **options: Any) -> Task:
    return request(on, **options).task


def a_running_task(on: Tool = TWO_STEPS, started: datetime = T0, **options: Any) -> Task:
    return when(start(a_pending_task(on, **options), now=started, policy=POLICY)).task


def completion(task: Task, step_id: str, *assets: tuple[str, str], attempt: int = 1, now: datetime = T0):
    return when(
        complete_step(
            task,
            step_id=step_id,
            attempt=attempt,
            assets=[ProducedAsset(asset_id, role) for asset_id, role in assets],
            metadata={"seconds": 3},
            now=now,
            policy=POLICY,
        )
    )


def a_task_past(task: Task, *step_ids: str) -> Task:
    """The task after its steps `step_ids` completed, each producing an image named after it."""
    for step_id in step_ids:
        task = completion(task, step_id, (f"{step_id}-out", "image")).task
    return task


def a_completed_task(on: Tool = TWO_STEPS) -> Task:
    running = a_running_task(on)
    return a_task_past(running, *running.step_ids)


# --- requesting ----------------------------------------------------------------------------------------


def test_a_request_becomes_a_pending_task_and_asks_credits_to_hold_its_price() -> None:
    change = request(key="retry-1")

    assert change.events == (
        TaskRequested(
            task_id=TASK_ID, user_id=USER, tool_id="tool-1", tool_slug="figme", step_ids=("cut", "model"),
            price=12, parent_task_id=None, idempotency_key="retry-1",
        ),
    )  # fmt: skip
    task = change.task
    assert (task.status, task.price, task.step_ids, task.created_at) == ("pending", 12, ("cut", "model"), T0)
    assert (task.current_step_id, task.started_at, task.charged_credits) == (None, None, None)
    assert task.resolved == ResolvedInput(prompt=None, image_asset_id=IMAGE)
    assert task.request_hash == fingerprint(task.request)


def test_the_plan_is_a_snapshot_of_the_tools_steps() -> None:
    task = a_pending_task()

    (cut, model) = task.plan
    assert (cut.id, cut.type, cut.provider, cut.model, cut.cost, cut.timeout_seconds) == (
        "cut", "remove-bg", "local", "default", 5, 60)  # fmt: skip
    assert dict(cut.options) == {"quality": "high"}
    assert (model.id, model.image_input) == ("model", "optional")


def test_one_named_step_is_planned_and_priced_alone() -> None:
    task = a_pending_task(THREE_STEPS, step_id="gen", image=None, prompt="a cat")

    assert (task.step_ids, task.price) == (("gen",), 10)
    assert task.resolved == ResolvedInput(prompt="a cat", image_asset_id=None)


def test_a_chained_task_continues_on_its_parents_output() -> None:
    parent = a_completed_task(
        tool(step("cut", 5), step("model", 7, "3d-gen", image="optional"), pipeline=False)
    )
    assert parent.step_ids == ("cut",)

    change = request(TWO_STEPS, step_id="model", image=None, parent=parent)

    assert change.task.parent_task_id == parent.id
    assert change.task.resolved.image_asset_id == "cut-out"
    assert isinstance(change.events[0], TaskRequested)
    assert change.events[0].parent_task_id == parent.id
    started = when(start(change.task, now=T0, policy=POLICY))
    assert step_requested(started).input.asset_ids == ("cut-out",)


def test_the_parent_of_a_chained_task_is_what_a_task_completed_and_produced() -> None:
    running = a_running_task()
    done = completion(a_task_past(running, "cut"), "model", ("m-1", "model"), ("i-1", "image")).task

    assert parent_of(done) == ParentTask(
        id=TASK_ID, tool_id="tool-1", status="completed", step_ids=("cut", "model"),
        output_assets=(ProducedAsset("m-1", "model"), ProducedAsset("i-1", "image")),
    )  # fmt: skip
    assert parent_of(running).output_assets == ()


def test_the_same_request_has_the_same_fingerprint_and_another_one_another() -> None:
    same = TaskRequest("figme", input=TaskInput(image_asset_id=IMAGE))

    assert fingerprint(same) == fingerprint(TaskRequest("figme", input=TaskInput(image_asset_id=IMAGE)))
    assert fingerprint(same) != fingerprint(
        TaskRequest("figme", input=TaskInput(image_asset_id=IMAGE, prompt="x"))
    )
    assert fingerprint(same) != fingerprint(TaskRequest("figme", step_id="cut", input=same.input))


# --- starting ------------------------------------------------------------------------------------------


def test_reserved_credits_start_the_task_with_its_first_step() -> None:
    pending = a_pending_task()

    change = when(start(pending, now=at(5), policy=POLICY))

    assert change.events == (
        TaskStarted(task_id=TASK_ID, user_id=USER, reservation_id=TASK_ID),
        StepRequested(
            task_id=TASK_ID, user_id=USER, step_id="cut", step_type="remove-bg", provider="local",
            model="default", scope="web", attempt=1, deadline_at=at(5 + 60),
            input=StepInput(asset_ids=(IMAGE,), prompt=None, options={"quality": "high"}),
        ),
    )  # fmt: skip
    task = change.task
    assert (task.status, task.current_step_id, task.attempt, task.started_at) == ("running", "cut", 1, at(5))
    assert task.step_deadline_at == at(5 + 60 + 30), "the provider's deadline plus the grace"


def test_the_first_step_gets_the_users_prompt_else_the_styles_else_its_own() -> None:
    def first_request(on: Tool = THREE_STEPS, **options: Any) -> StepInput:
        return step_requested(when(start(a_pending_task(on, **options), now=T0, policy=POLICY))).input

    own_default = tool(step("gen", 10, "image-gen", image="optional", prompt="a house prompt"))

    assert first_request(image=None, prompt="mine", style="anime").prompt == "mine"
    assert first_request(image=None, style="anime").prompt == "Transform into anime style"
    assert first_request(image=None).prompt is None
    assert first_request(own_default, image=None).prompt == "a house prompt"


STYLE_IMAGE = "9a1e4f20-3c5b-4d6e-8f70-0a1b2c3d4e5f"
ANIME = {"id": "anime", "name": "Anime", "prompt": "Transform into anime style", "assetId": STYLE_IMAGE}
PLAIN = {"id": "plain", "name": "Plain", "prompt": "Keep it plain"}  # a style without an image


def figme(*, use_style_image: bool | None = None) -> Tool:
    """An image-gen step on the user's photo (then a 3D step), with a style that has an image."""
    extra = {} if use_style_image is None else {"useStyleImage": use_style_image}
    return tool(
        step("gen", 10, "image-gen", image="optional", **extra),
        step("model", 7, "3d-gen", image="optional"),
        styles=(ANIME, PLAIN),
    )


def first_step_input(on: Tool, **options: Any) -> StepInput:
    return step_requested(when(start(a_pending_task(on, **options), now=T0, policy=POLICY))).input


def test_a_styled_image_gen_step_gets_the_styles_image_before_the_users_and_the_styles_prompt() -> None:
    pending = a_pending_task(figme(), style="anime")

    assert pending.resolved == ResolvedInput(
        prompt="Transform into anime style", image_asset_id=IMAGE, style_asset_id=STYLE_IMAGE
    )
    given = first_step_input(figme(), style="anime")
    assert given == StepInput(
        asset_ids=(IMAGE,), reference_asset_ids=(STYLE_IMAGE,), prompt="Transform into anime style",
        options={"quality": "high"},
    )  # fmt: skip


def test_a_step_that_says_use_style_image_false_gets_the_users_image_alone() -> None:
    given = first_step_input(figme(use_style_image=False), style="anime")

    assert (given.asset_ids, given.reference_asset_ids) == ((IMAGE,), ())
    assert given.prompt == "Transform into anime style", "the style's prompt is used either way"


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"style": "anime", "image": None}, "no photo: the model draws from the prompt alone"),
        ({"style": "plain"}, "the style has no image"),
        ({}, "no style chosen"),
    ],
)
def test_no_style_image_is_sent_without_a_photo_or_a_styles_image(options: dict, why: str) -> None:
    given = first_step_input(figme(), **options)

    assert given.reference_asset_ids == (), why


def test_only_image_gen_steps_get_the_styles_image() -> None:
    cut_first = tool(step("cut", 5), step("model", 7, "3d-gen", image="optional"), styles=(ANIME,))

    assert first_step_input(cut_first, style="anime") == StepInput(
        asset_ids=(IMAGE,), prompt="Transform into anime style", options={"quality": "high"}
    )


def test_the_steps_after_the_first_get_no_style_image() -> None:
    running = a_running_task(figme(), style="anime")

    following = step_requested(completion(running, "gen", ("gen-out", "image")))

    assert (following.step_id, following.input.asset_ids) == ("model", ("gen-out",))
    assert following.input.reference_asset_ids == ()


def test_a_started_top_level_task_is_one_use_of_its_tool_and_nothing_else_is() -> None:
    pending = a_pending_task()
    started = start(pending, now=at(1), policy=POLICY)
    child = replace(pending, parent_task_id="parent-task")

    assert is_a_use_of_its_tool(started)
    assert not is_a_use_of_its_tool(start(started.task, now=at(2), policy=POLICY)), "a redelivery"
    assert not is_a_use_of_its_tool(start(child, now=at(1), policy=POLICY)), "a child task continues a use"
    assert not is_a_use_of_its_tool(cancel(pending, by=USER, now=at(1)))


def test_a_redelivered_reservation_starts_nothing_twice() -> None:
    running = a_running_task()

    then_nothing_changed(running, start(running, now=at(1), policy=POLICY))


@pytest.mark.parametrize("ending", ["cancelled", "rejected", "timed out"])
def test_a_reservation_after_the_task_ended_starts_nothing(ending: str) -> None:
    pending = a_pending_task()
    ended = {
        "cancelled": lambda: cancel(pending, by=USER, now=at(1)),
        "rejected": lambda: reject_reservation(pending, reason="insufficient_credits", now=at(1)),
        "timed out": lambda: time_out(pending, now=at(601), policy=POLICY),
    }[ending]().task

    then_nothing_changed(ended, start(ended, now=at(700), policy=POLICY))


# --- a rejected reservation ----------------------------------------------------------------------------


def test_a_rejected_reservation_fails_the_task_charging_nothing() -> None:
    change = when(reject_reservation(a_pending_task(), reason="insufficient_credits", now=at(2)))

    assert change.events == (
        TaskFailed(
            task_id=TASK_ID, user_id=USER, error_code="insufficient_credits",
            error_message="not enough credits: this task costs 12", charged_credits=0,
        ),
    )  # fmt: skip
    task = change.task
    assert (task.status, task.charged_credits, task.finished_at) == ("failed", 0, at(2))
    assert task.error == TaskError("insufficient_credits", "not enough credits: this task costs 12")


def test_another_rejection_reason_is_the_error_code_and_message() -> None:
    change = when(reject_reservation(a_pending_task(), reason="account_frozen", now=at(2)))

    assert change.task.error == TaskError("account_frozen", "account_frozen")


def test_a_rejection_of_a_running_or_ended_task_changes_nothing() -> None:
    running = a_running_task()
    failed = when(reject_reservation(a_pending_task(), reason="insufficient_credits", now=at(1))).task

    then_nothing_changed(running, reject_reservation(running, reason="insufficient_credits", now=at(2)))
    then_nothing_changed(failed, reject_reservation(failed, reason="insufficient_credits", now=at(2)))


# --- completing steps ----------------------------------------------------------------------------------


def test_a_completed_step_requests_the_next_one_on_its_output() -> None:
    running = a_running_task()

    change = completion(running, "cut", ("cut-1", "image"), now=at(40))

    assert change.events == (
        StepRequested(
            task_id=TASK_ID, user_id=USER, step_id="model", step_type="3d-gen", provider="local",
            model="default", scope="web", attempt=1, deadline_at=at(40 + 60),
            input=StepInput(asset_ids=("cut-1",), prompt=None, options={"quality": "high"}),
        ),
    )  # fmt: skip
    task = change.task
    assert (task.status, task.current_step_id, task.completed_steps) == ("running", "model", ("cut",))
    assert task.step_deadline_at == at(40 + 60 + 30)
    assert task.step_results == (StepResult("cut", 1, (ProducedAsset("cut-1", "image"),), {"seconds": 3}),)
    assert task.charged_credits is None, "nothing is charged before the task ends"


def test_the_next_step_works_on_the_image_among_the_outputs() -> None:
    change = completion(a_running_task(), "cut", ("mask-1", "mask"), ("cut-1", "image"))

    assert step_requested(change).input.asset_ids == ("cut-1",)


def test_the_last_step_completes_the_task_and_charges_every_step() -> None:
    after_cut = a_task_past(a_running_task(), "cut")

    change = completion(after_cut, "model", ("m-1", "model"), now=at(90))

    steps = (
        StepResult("cut", 1, (ProducedAsset("cut-out", "image"),), {"seconds": 3}),
        StepResult("model", 1, (ProducedAsset("m-1", "model"),), {"seconds": 3}),
    )
    assert change.events == (
        TaskCompleted(
            task_id=TASK_ID, user_id=USER, charged_credits=12,
            output=TaskOutput(
                assets=(OutputAsset(asset_id="m-1", role="model"),),
                metadata={"steps": [step_result_document(s) for s in steps]},
            ),
        ),
    )  # fmt: skip
    task = change.task
    assert (task.status, task.charged_credits, task.finished_at, task.step_deadline_at) == (
        "completed", 12, at(90), None)  # fmt: skip
    assert task.output == TaskResult(assets=(ProducedAsset("m-1", "model"),), steps=steps)
    assert step_result_document(steps[1]) == {
        "step_id": "model", "attempt": 1, "assets": [{"asset_id": "m-1", "role": "model"}],
        "metadata": {"seconds": 3},
    }  # fmt: skip


def test_a_three_step_pipeline_runs_each_step_on_the_previous_output() -> None:
    running = a_running_task(THREE_STEPS, image=None, prompt="a cat")

    after_gen = completion(running, "gen", ("gen-1", "image"))
    after_cut = completion(after_gen.task, "cut", ("cut-1", "image"))
    done = completion(after_cut.task, "model", ("m-1", "model"))

    assert [step_requested(c).step_id for c in (after_gen, after_cut)] == ["cut", "model"]
    assert step_requested(after_gen).input.asset_ids == ("gen-1",)
    assert step_requested(after_cut).input.asset_ids == ("cut-1",)
    assert (done.task.status, done.task.charged_credits) == ("completed", 22)


@pytest.mark.parametrize(
    ("done", "charged"), [((), 0), (("gen",), 10), (("gen", "cut"), 15)], ids=["none", "one", "two"]
)
def test_an_ended_pipeline_pays_for_the_steps_it_completed(done: tuple[str, ...], charged: int) -> None:
    task = a_task_past(a_running_task(THREE_STEPS, image=None, prompt="a cat"), *done)

    cancelled = when(cancel(task, by=USER, now=at(100))).task
    failed = when(
        fail_step(task, step_id=task.current_step_id or "", attempt=1, code="x", message="y", now=at(100))
    )
    timed_out = when(time_out(task, now=at(10_000), policy=POLICY))

    assert charged_is_the_cost_of_completed_steps(task) == charged
    assert cancelled.charged_credits == charged
    assert failed.task.charged_credits == charged
    assert timed_out.task.charged_credits == charged


def test_a_tool_that_is_not_a_pipeline_completes_after_its_first_step() -> None:
    single = tool(step("cut", 5), step("model", 7, "3d-gen", image="optional"), pipeline=False)

    change = completion(a_running_task(single), "cut", ("cut-1", "image"))

    assert (change.task.status, change.task.charged_credits) == ("completed", 5)
    assert [type(e) for e in change.events] == [TaskCompleted]


@pytest.mark.parametrize(
    ("step_id", "attempt"),
    [("model", 1), ("cut", 2), ("gen", 1)],
    ids=["other step", "other attempt", "unknown"],
)
def test_news_of_another_step_or_attempt_is_stale(step_id: str, attempt: int) -> None:
    running = a_running_task()

    then_only_discarded(
        running, completion(running, step_id, ("x", "image"), attempt=attempt), step_id, "x", attempt=attempt
    )
    then_nothing_changed(
        running, fail_step(running, step_id=step_id, attempt=attempt, code="x", message="y", now=at(1))
    )


def test_a_step_completed_twice_moves_the_task_once() -> None:
    running = a_running_task()
    once = completion(running, "cut", ("cut-1", "image")).task

    then_nothing_changed(once, completion(once, "cut", ("cut-1", "image")))


def test_news_after_the_task_ended_leaves_it_as_it_ended() -> None:
    running = a_running_task()
    cancelled = when(cancel(running, by=USER, now=at(1))).task
    completed = a_task_past(running, "cut", "model")
    failed = when(fail_step(running, step_id="cut", attempt=1, code="x", message="y", now=at(1))).task

    for ended in (cancelled, completed, failed):
        then_only_discarded(ended, completion(ended, "cut", ("x", "image")), "cut", "x")
        then_only_discarded(ended, completion(ended, "model", ("x", "image")), "model", "x")
        then_nothing_changed(
            ended, fail_step(ended, step_id="cut", attempt=1, code="x", message="y", now=at(2))
        )


def test_a_cancel_that_wins_the_race_with_the_step_discards_every_output_of_that_step() -> None:
    cancelled = when(cancel(a_running_task(), by=USER, now=at(1))).task

    late = completion(cancelled, "cut", ("cut-1", "image"), ("cut-1-mask", "mask"), now=at(2))

    then_only_discarded(cancelled, late, "cut", "cut-1", "cut-1-mask")
    assert cancelled.charged_credits == 0, "the cancel charged nothing for the step, so nothing keeps it"


def test_a_step_that_completes_after_it_timed_out_has_its_output_discarded() -> None:
    running = a_running_task()
    timed_out = when(time_out(running, now=at(10_000), policy=POLICY)).task
    assert timed_out.status == "failed"

    then_only_discarded(timed_out, completion(timed_out, "cut", ("cut-late", "image")), "cut", "cut-late")


def test_a_redelivered_completion_the_task_took_discards_nothing_even_after_the_task_ended() -> None:
    after_cut = a_task_past(a_running_task(), "cut")
    cancelled = when(cancel(after_cut, by=USER, now=at(5))).task

    for task in (after_cut, cancelled, a_completed_task()):
        then_nothing_changed(task, completion(task, "cut", ("cut-out", "image")))


def test_a_late_output_that_is_the_tasks_own_input_is_not_discarded() -> None:
    cancelled = when(cancel(a_running_task(), by=USER, now=at(1))).task

    then_nothing_changed(cancelled, completion(cancelled, "cut", (IMAGE, "image")))
    then_only_discarded(
        cancelled, completion(cancelled, "cut", (IMAGE, "image"), ("new", "mask")), "cut", "new"
    )


def test_a_step_event_is_about_the_current_step_only_while_running() -> None:
    running = a_running_task()

    assert event_is_about_the_current_step(running, "cut", 1)
    assert not event_is_about_the_current_step(running, "cut", 2)
    assert not event_is_about_the_current_step(running, "model", 1)
    assert not event_is_about_the_current_step(a_pending_task(), "cut", 1)
    assert not event_is_about_the_current_step(when(cancel(running, by=USER, now=at(1))).task, "cut", 1)


# --- failing steps -------------------------------------------------------------------------------------


def test_a_failed_step_fails_the_task_paying_for_the_steps_done() -> None:
    after_cut = a_task_past(a_running_task(), "cut")

    change = when(
        fail_step(
            after_cut, step_id="model", attempt=1, code="provider_unavailable", message="down", now=at(50)
        )
    )

    assert change.events == (
        TaskFailed(
            task_id=TASK_ID, user_id=USER, error_code="provider_unavailable",
            error_message="step 'model' failed: down", charged_credits=5,
        ),
    )  # fmt: skip
    task = change.task
    assert (task.status, task.finished_at, task.step_deadline_at) == ("failed", at(50), None)
    assert task.error == TaskError("provider_unavailable", "step 'model' failed: down")
    assert task.completed_steps == ("cut",)


def test_an_error_message_is_cut_to_a_thousand_characters() -> None:
    change = when(
        fail_step(a_running_task(), step_id="cut", attempt=1, code="x", message="y" * 5000, now=at(1))
    )

    (failed,) = change.events
    assert isinstance(failed, TaskFailed)
    assert change.task.error is not None
    assert len(change.task.error.message) == 1000
    assert failed.error_message == change.task.error.message


# --- cancelling ----------------------------------------------------------------------------------------


def test_cancelling_a_pending_task_charges_nothing() -> None:
    change = when(cancel(a_pending_task(), by=USER, now=at(3)))

    assert change.events == (
        TaskCancelRequested(task_id=TASK_ID, user_id=USER, by=USER),
        TaskCancelled(task_id=TASK_ID, user_id=USER, charged_credits=0),
    )
    assert (change.task.status, change.task.charged_credits, change.task.finished_at) == (
        "cancelled",
        0,
        at(3),
    )


def test_cancelling_a_running_task_stops_its_step_and_charges_the_steps_done() -> None:
    change = when(cancel(a_task_past(a_running_task(), "cut"), by=ADMIN, now=at(3)))

    assert change.events == (
        TaskCancelRequested(task_id=TASK_ID, user_id=USER, by=ADMIN),
        TaskCancelled(task_id=TASK_ID, user_id=USER, charged_credits=5),
    )
    assert (change.task.step_deadline_at, change.task.error) == (None, None)


def test_cancelling_an_ended_task_changes_nothing() -> None:
    running = a_running_task()
    cancelled = when(cancel(running, by=USER, now=at(1))).task

    then_nothing_changed(cancelled, cancel(cancelled, by=USER, now=at(2)))
    completed = a_task_past(running, "cut", "model")
    then_nothing_changed(completed, cancel(completed, by=USER, now=at(2)))


# --- deleting ------------------------------------------------------------------------------------------


def a_family() -> tuple[Task, Task, Task]:
    """A task that ran `cut` and completed, a child that ran `model` on its output and completed, and a
    second child (a retry of `model`) still running."""
    parent = a_task_past(when(start(a_pending_task(step_id="cut"), now=T0, policy=POLICY)).task, "cut")
    children = []
    for child_id in (CHILD_ID, SECOND_CHILD_ID):
        child = request(step_id="model", image=None, parent=parent, task_id=child_id).task
        children.append(when(start(child, now=at(1), policy=POLICY)).task)
    return parent, a_task_past(children[0], "model"), children[1]


def deleted(deletion: TaskDeletion) -> TaskDeletion:
    """The decision, after checking that each task it deleted holds together."""
    for task in deletion.tasks:
        check_invariants(task)
    return deletion


def test_deleting_an_ended_task_marks_it_deleted_and_says_so() -> None:
    completed = a_completed_task()

    deletion = deleted(delete(completed, descendants=(), by=USER, now=at(5)))

    assert deletion.events == (
        TaskDeleted(task_id=TASK_ID, user_id=USER, deleted_task_ids=(TASK_ID,), by=USER),
    )
    assert deletion.tasks == (replace(completed, deleted_at=at(5), updated_at=at(5)),)
    assert deletion.tasks[0].status == "completed"  # as it ended: the ledger and the audit keep it


def test_deleting_a_running_task_cancels_it_first_charging_the_steps_done() -> None:
    running = a_task_past(a_running_task(), "cut")

    deletion = deleted(delete(running, descendants=(), by=ADMIN, now=at(5)))

    assert deletion.events == (
        TaskCancelRequested(task_id=TASK_ID, user_id=USER, by=ADMIN),
        TaskCancelled(task_id=TASK_ID, user_id=USER, charged_credits=5),
        TaskDeleted(task_id=TASK_ID, user_id=USER, deleted_task_ids=(TASK_ID,), by=ADMIN),
    )
    (gone,) = deletion.tasks
    assert (gone.status, gone.charged_credits, gone.finished_at, gone.deleted_at) == (
        "cancelled", 5, at(5), at(5))  # fmt: skip


def test_deleting_a_task_deletes_its_children_cancelling_those_still_running() -> None:
    parent, done, running = a_family()

    deletion = deleted(delete(parent, descendants=(done, running), by=USER, now=at(9)))

    assert deletion.events == (
        TaskCancelRequested(task_id=SECOND_CHILD_ID, user_id=USER, by=USER),
        TaskCancelled(task_id=SECOND_CHILD_ID, user_id=USER, charged_credits=0),
        TaskDeleted(
            task_id=TASK_ID, user_id=USER, deleted_task_ids=(TASK_ID, CHILD_ID, SECOND_CHILD_ID), by=USER
        ),
    )
    assert [(t.id, t.status, t.deleted_at) for t in deletion.tasks] == [
        (TASK_ID, "completed", at(9)), (CHILD_ID, "completed", at(9)), (SECOND_CHILD_ID, "cancelled", at(9))
    ]  # fmt: skip


def test_a_deleted_task_is_not_deleted_again_nor_is_a_child_deleted_before() -> None:
    parent, done, running = a_family()
    child_deleted_before = deleted(delete(running, descendants=(), by=USER, now=at(2))).tasks[0]

    deletion = deleted(delete(parent, descendants=(done, child_deleted_before), by=USER, now=at(3)))
    again = delete(deletion.tasks[0], descendants=deletion.tasks[1:], by=USER, now=at(4))

    assert deletion.events == (
        TaskDeleted(task_id=TASK_ID, user_id=USER, deleted_task_ids=(TASK_ID, CHILD_ID), by=USER),
    )
    assert again == TaskDeletion(())


def test_a_deleted_task_is_visible_to_no_one() -> None:
    gone = deleted(delete(a_completed_task(), descendants=(), by=USER, now=at(1))).tasks[0]

    assert not visible_to(gone, USER, admin=False)
    assert not visible_to(gone, ADMIN, admin=True)


# --- deadlines -----------------------------------------------------------------------------------------


def test_a_step_past_its_deadline_fails_the_task_and_asks_providers_to_stop() -> None:
    running = a_running_task(started=T0)  # deadline: 60 s + 30 s grace

    then_nothing_changed(running, time_out(running, now=at(90), policy=POLICY))
    change = when(time_out(running, now=at(91), policy=POLICY))

    assert change.events == (
        TaskCancelRequested(task_id=TASK_ID, user_id=USER, by=USER),
        TaskFailed(
            task_id=TASK_ID, user_id=USER, error_code="step_timeout",
            error_message="step 'cut' did not finish within 60 s", charged_credits=0,
        ),
    )  # fmt: skip
    assert (change.task.status, change.task.finished_at) == ("failed", at(91))


def test_each_step_gets_its_own_deadline() -> None:
    after_cut = completion(a_running_task(started=T0), "cut", ("cut-1", "image"), now=at(80)).task

    then_nothing_changed(after_cut, time_out(after_cut, now=at(100), policy=POLICY))
    change = when(time_out(after_cut, now=at(80 + 91), policy=POLICY))
    assert change.task.error == TaskError("step_timeout", "step 'model' did not finish within 60 s")
    assert change.task.charged_credits == 5


def test_a_task_whose_credits_never_answered_fails_after_the_pending_timeout() -> None:
    pending = a_pending_task(now=T0)

    then_nothing_changed(pending, time_out(pending, now=at(600), policy=POLICY))
    change = when(time_out(pending, now=at(601), policy=POLICY))

    assert change.events == (
        TaskFailed(
            task_id=TASK_ID, user_id=USER, error_code="reservation_timeout",
            error_message="credits did not answer in time", charged_credits=0,
        ),
    )  # fmt: skip


def test_an_ended_task_never_times_out() -> None:
    running = a_running_task()
    for ended in (when(cancel(running, by=USER, now=at(1))).task, a_task_past(running, "cut", "model")):
        then_nothing_changed(ended, time_out(ended, now=at(100_000), policy=POLICY))


# --- who may see, how many may run -------------------------------------------------------------------


def test_a_task_is_visible_to_its_owner_and_to_admins() -> None:
    task = a_pending_task()

    assert visible_to(task, USER, admin=False)
    assert visible_to(task, ADMIN, admin=True)
    assert not visible_to(task, STRANGER, admin=False)


def test_a_user_may_request_tasks_up_to_the_cap() -> None:
    assert may_request_another(2, POLICY)
    assert not may_request_another(3, POLICY)


# --- invariants ----------------------------------------------------------------------------------------


def _broken_states() -> list[tuple[Task, str]]:
    pending = a_pending_task()
    running = a_running_task()
    completed = a_task_past(running, "cut", "model")
    failed = when(fail_step(running, step_id="cut", attempt=1, code="x", message="y", now=at(1))).task
    return [
        (replace(pending, plan=()), "at least one step"),
        (replace(pending, price=13), "price"),
        (replace(pending, started_at=T0), "pending task has not started"),
        (replace(running, current_step_id=None), "runs the step after"),
        (replace(running, current_step_id="model"), "runs the step after"),
        (replace(running, step_deadline_at=None), "deadline"),
        (replace(running, completed_steps=("model",)), "first steps, in order"),
        (replace(running, charged_credits=0), "only an ended task is charged"),
        (replace(running, attempt=0), "attempts"),
        (replace(completed, step_results=completed.step_results[:1]), "one step result"),
        (replace(completed, finished_at=None), "finished_at"),
        (replace(completed, charged_credits=5), "charged is the cost"),
        (replace(completed, output=None), "has output"),
        (
            replace(
                completed,
                completed_steps=("cut",),
                step_results=completed.step_results[:1],
                charged_credits=5,
            ),
            "completed every step",
        ),
        (replace(failed, error=None), "has an error"),
        (replace(failed, error=TaskError("x", "y" * 1001)), "at most 1000"),
        (replace(failed, step_deadline_at=T0), "no deadline"),
        (replace(running, deleted_at=T0), "a deleted task has ended"),
    ]


@pytest.mark.parametrize("index", range(len(_broken_states())))
def test_check_invariants_names_what_is_broken(index: int) -> None:
    broken, names = _broken_states()[index]

    with pytest.raises(InvariantViolated, match=names):
        check_invariants(broken)


def test_an_invariant_violation_is_an_assertion_that_survives_optimisation() -> None:
    assert issubclass(InvariantViolated, AssertionError)


def test_a_transition_that_would_break_an_invariant_raises_instead_of_returning_it() -> None:
    inconsistent = replace(a_pending_task(), price=99)  # a price that is not the cost of its steps

    with pytest.raises(InvariantViolated):
        cancel(inconsistent, by=USER, now=at(1))
