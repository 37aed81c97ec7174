"""The saga's rules: what a task request may ask for, what it costs, what runs next, what is charged."""

from dataclasses import replace

import pytest

from funmagic_contracts.tasks.events import StepInput
from funmagic_tasks.domain.catalog import Tool, parse_tool_config
from funmagic_tasks.domain.tasks import (
    ParentTask,
    PlannedStep,
    ProducedAsset,
    TaskInput,
    TaskRefused,
    charged_for,
    next_step,
    plan_steps,
    plan_task,
    primary_asset,
    resolve_prompt,
    step_input,
)

IMAGE = "5b0c2d7e-6a2f-4a57-9f0e-2f0f9d1f2a11"


def step(
    step_id: str, cost: int, step_type: str = "remove-bg", image: str = "required", prompt: str = "optional"
):
    return {
        "id": step_id, "name": step_id.title(), "type": step_type, "cost": cost,
        "provider": {"name": "local", "model": "default", "options": {"style": "vintage"}},
        "input": {"image": image, "prompt": prompt},
    }  # fmt: skip


def tool(*steps: dict, pipeline: bool = True, active: bool = True, styles: tuple = ()) -> Tool:
    config = parse_tool_config({"steps": list(steps), "pipeline": pipeline, "styleReferences": list(styles)})
    return Tool("tool-1", "figme", "FigMe", active, sum(s["cost"] for s in steps), config)


FIGME = tool(
    step("image-gen", 20, "image-gen"),
    step("3d-gen", 30, "3d-gen", image="optional"),
    styles=({"id": "anime", "name": "Anime", "prompt": "Transform into anime style"},),
)


def refused(code: str, *args) -> TaskRefused:
    with pytest.raises(TaskRefused) as caught:
        plan_task(*args)
    assert caught.value.code == code
    return caught.value


def test_a_pipeline_runs_every_step_and_costs_their_sum() -> None:
    plan = plan_task(FIGME, None, None, TaskInput(image_asset_id=IMAGE))
    assert (plan.step_ids, plan.price, plan.image_asset_id) == (("image-gen", "3d-gen"), 50, IMAGE)


def test_a_tool_that_is_not_a_pipeline_runs_its_first_step() -> None:
    single = tool(step("a", 3), step("b", 4, image="optional"), pipeline=False)
    assert plan_task(single, None, None, TaskInput(image_asset_id=IMAGE)).step_ids == ("a",)


def test_one_named_step_costs_that_step() -> None:
    plan = plan_task(FIGME, "image-gen", None, TaskInput(image_asset_id=IMAGE))
    assert (plan.step_ids, plan.price) == (("image-gen",), 20)


def test_a_chained_task_continues_on_its_parents_output() -> None:
    parent = ParentTask("p", "tool-1", "completed", ("image-gen",), (ProducedAsset("out-1", "image"),))
    plan = plan_task(FIGME, "3d-gen", parent, TaskInput())
    assert (plan.step_ids, plan.price, plan.image_asset_id) == (("3d-gen",), 30, "out-1")


@pytest.mark.parametrize(
    ("parent", "code"),
    [
        (ParentTask("p", "other-tool", "completed", ("image-gen",), (ProducedAsset("o", "image"),)),
         "parent_mismatch"),
        (ParentTask("p", "tool-1", "running", ("image-gen",), ()), "parent_not_completed"),
        (ParentTask("p", "tool-1", "completed", (), ()), "parent_mismatch"),
        (ParentTask("p", "tool-1", "completed", ("image-gen",), ()), "parent_without_output"),
    ],
)  # fmt: skip
def test_a_parent_must_be_a_completed_earlier_step_of_the_same_tool(parent: ParentTask, code: str) -> None:
    refused(code, FIGME, "3d-gen", parent, TaskInput())


def test_inputs_are_checked_against_the_first_step() -> None:
    assert refused("image_required", FIGME, None, None, TaskInput()).field == "input.imageAssetId"
    refused("unknown_step", FIGME, "nope", None, TaskInput(image_asset_id=IMAGE))
    refused("unknown_style", FIGME, None, None, TaskInput(image_asset_id=IMAGE, style_reference_id="nope"))
    refused("prompt_too_long", FIGME, None, None, TaskInput(image_asset_id=IMAGE, prompt="x" * 4001))
    no_prompt = tool(step("a", 1, prompt="none"))
    refused("prompt_not_accepted", no_prompt, None, None, TaskInput(image_asset_id=IMAGE, prompt="hi"))
    needs_prompt = tool(step("a", 1, "image-gen", image="none", prompt="required"))
    refused("prompt_required", needs_prompt, None, None, TaskInput())
    refused("image_not_accepted", needs_prompt, None, None, TaskInput(image_asset_id=IMAGE, prompt="x"))


def test_an_inactive_tool_takes_no_tasks() -> None:
    refused("tool_inactive", tool(step("a", 1), active=False), None, None, TaskInput(image_asset_id=IMAGE))


def test_a_later_step_without_a_parent_needs_one() -> None:
    refused("parent_required", tool(step("a", 1), step("b", 1)), "b", None, TaskInput())


def test_the_plan_is_a_snapshot_of_the_steps() -> None:
    (first, second) = plan_steps(FIGME, ("image-gen", "3d-gen"))
    assert first == PlannedStep(
        id="image-gen", name="Image-Gen", type="image-gen", provider="local", model="default",
        options={"style": "vintage"}, cost=20, timeout_seconds=600, prompt=None,
        image_input="required",
    )  # fmt: skip
    assert next_step([first, second], "image-gen") == second
    assert next_step([first, second], "3d-gen") is None


def test_the_prompt_is_the_users_then_the_styles() -> None:
    assert resolve_prompt(FIGME, TaskInput(prompt="mine", style_reference_id="anime")) == "mine"
    assert resolve_prompt(FIGME, TaskInput(style_reference_id="anime")) == "Transform into anime style"
    assert resolve_prompt(FIGME, TaskInput()) is None


def test_a_step_gets_references_and_the_tools_options() -> None:
    (first,) = plan_steps(FIGME, ("image-gen",))
    assert step_input(first, "p", IMAGE) == StepInput(
        asset_ids=(IMAGE,),
        prompt="p",
        options={"style": "vintage"},
    )
    assert step_input(replace(first, image_input="none"), None, IMAGE).asset_ids == ()


def test_the_next_step_works_on_the_image_output_first() -> None:
    assets = [ProducedAsset("m", "model"), ProducedAsset("i", "image")]
    assert primary_asset(assets) == "i"
    assert primary_asset([ProducedAsset("m", "model")]) == "m"
    assert primary_asset([]) is None


def test_only_completed_steps_are_charged() -> None:
    plan = plan_steps(FIGME, ("image-gen", "3d-gen"))
    assert charged_for(plan, []) == 0
    assert charged_for(plan, ["image-gen"]) == 20
    assert charged_for(plan, ["image-gen", "3d-gen"]) == 50
