"""The task saga's rules: what a request may ask for, what it costs, which step runs next, what is charged.

Pure decisions; the application applies them in one transaction with the events they imply. The flow
(DESIGN §4): pending → (credits reserved) running → step after step → completed | failed | cancelled.
A task runs either one step of a tool (`stepId`, or a tool that is not a pipeline) or every step in
order (a pipeline). A chained task (`parentTaskId`) runs a later step on its parent's output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from funmagic_tasks.domain.catalog import StepSpec, Tool

__all__ = [
    "ACTIVE_STATUSES",
    "MAX_PROMPT_LENGTH",
    "TERMINAL_STATUSES",
    "ParentTask",
    "TaskInput",
    "TaskPlan",
    "TaskRefused",
    "charged_for",
    "next_step",
    "plan_steps",
    "plan_task",
    "primary_asset",
    "resolve_prompt",
    "step_input",
]

TaskStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
ACTIVE_STATUSES: tuple[TaskStatus, ...] = ("pending", "running")
TERMINAL_STATUSES: tuple[TaskStatus, ...] = ("completed", "failed", "cancelled")
MAX_PROMPT_LENGTH = 4000


class TaskRefused(ValueError):
    """The request cannot become a task; `code` and `field` say why, for a 4xx answer."""

    def __init__(self, code: str, message: str, *, field: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.status = status


@dataclass(frozen=True)
class TaskInput:
    image_asset_id: str | None = None
    prompt: str | None = None
    style_reference_id: str | None = None


@dataclass(frozen=True)
class ParentTask:
    id: str
    tool_id: str
    status: str
    step_ids: tuple[str, ...]
    output_assets: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class TaskPlan:
    step_ids: tuple[str, ...]
    price: int
    # The first step's image: the user's asset, or the parent's output (chained tasks).
    image_asset_id: str | None


def plan_task(tool: Tool, step_id: str | None, parent: ParentTask | None, task_input: TaskInput) -> TaskPlan:
    if not tool.is_active:
        raise TaskRefused("tool_inactive", f"the tool {tool.slug!r} is not available", field="toolSlug")
    steps = tool.config.steps
    if step_id is not None:
        spec = tool.config.step(step_id)
        if spec is None:
            known = ", ".join(s.id for s in steps)
            raise TaskRefused(
                "unknown_step", f"{tool.slug!r} has no step {step_id!r} (steps: {known})", field="stepId"
            )
        chosen: tuple[StepSpec, ...] = (spec,)
    else:
        chosen = steps if tool.config.pipeline else steps[:1]
    first = chosen[0]
    image = task_input.image_asset_id
    if parent is not None:
        image = _image_from_parent(tool, first, parent, image)
    elif first is not steps[0] and image is None and first.image_input == "required":
        raise TaskRefused(
            "parent_required",
            f"step {first.id!r} continues an earlier step: give parentTaskId (or an image)",
            field="parentTaskId",
        )
    _check_input(tool, first, task_input, image)
    return TaskPlan(tuple(s.id for s in chosen), sum(s.cost for s in chosen), image)


def _image_from_parent(tool: Tool, first: StepSpec, parent: ParentTask, image: str | None) -> str | None:
    if parent.tool_id != tool.id:
        raise TaskRefused("parent_mismatch", "the parent task ran another tool", field="parentTaskId")
    if parent.status != "completed":
        raise TaskRefused("parent_not_completed", "the parent task has not completed", field="parentTaskId")
    index = next(i for i, s in enumerate(tool.config.steps) if s.id == first.id)
    if index == 0 or tool.config.steps[index - 1].id not in parent.step_ids:
        raise TaskRefused(
            "parent_mismatch", f"step {first.id!r} does not continue the parent's steps", field="parentTaskId"
        )
    if image is not None:
        return image
    asset = primary_asset(parent.output_assets)
    if asset is None:
        raise TaskRefused(
            "parent_without_output", "the parent task has no output to continue", field="parentTaskId"
        )
    return asset


def _check_input(tool: Tool, first: StepSpec, task_input: TaskInput, image: str | None) -> None:
    if first.image_input == "required" and image is None:
        raise TaskRefused(
            "image_required",
            f"step {first.id!r} needs an image (input.imageAssetId)",
            field="input.imageAssetId",
        )
    if first.image_input == "none" and task_input.image_asset_id is not None:
        raise TaskRefused(
            "image_not_accepted", f"step {first.id!r} takes no image", field="input.imageAssetId"
        )
    prompt = task_input.prompt
    if prompt is not None and len(prompt) > MAX_PROMPT_LENGTH:
        raise TaskRefused(
            "prompt_too_long", f"a prompt has at most {MAX_PROMPT_LENGTH} characters", field="input.prompt"
        )
    if first.prompt_input == "none" and prompt:
        raise TaskRefused("prompt_not_accepted", f"step {first.id!r} takes no prompt", field="input.prompt")
    style = task_input.style_reference_id
    if style is not None and not any(s.id == style for s in tool.config.style_references):
        raise TaskRefused(
            "unknown_style", f"{tool.slug!r} has no style reference {style!r}", field="input.styleReferenceId"
        )
    has_prompt = bool(prompt) or style is not None or bool(first.prompt)
    if first.prompt_input == "required" and not has_prompt:
        raise TaskRefused("prompt_required", f"step {first.id!r} needs a prompt", field="input.prompt")


def plan_steps(tool: Tool, step_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The steps a task runs, as they are when it is created: an edit of the tool later changes nothing
    for it (not its price, not its providers)."""
    specs = {s.id: s for s in tool.config.steps}
    return [
        {
            "id": specs[step_id].id,
            "name": specs[step_id].name,
            "type": specs[step_id].type,
            "provider": specs[step_id].provider.name,
            "model": specs[step_id].provider.model,
            "options": dict(specs[step_id].provider.options),
            "cost": specs[step_id].cost,
            "timeout_seconds": specs[step_id].timeout_seconds,
            "prompt": specs[step_id].prompt,
            "image_input": specs[step_id].image_input,
        }
        for step_id in step_ids
    ]


def resolve_prompt(tool: Tool, task_input: TaskInput) -> str | None:
    """The user's prompt, else the chosen style reference's prompt (a step's own default comes last)."""
    if task_input.prompt:
        return task_input.prompt
    if task_input.style_reference_id:
        style = next(s for s in tool.config.style_references if s.id == task_input.style_reference_id)
        return style.prompt
    return None


def step_input(
    plan_step: Mapping[str, Any], prompt: str | None, image_asset_id: str | None
) -> dict[str, Any]:
    """What providers gets for a step: asset ids, the prompt to use, the tool's provider options."""
    takes_image = image_asset_id is not None and plan_step["image_input"] != "none"
    return {
        "asset_ids": [image_asset_id] if takes_image else [],
        "prompt": prompt or plan_step.get("prompt"),
        "options": dict(plan_step.get("options") or {}),
    }


def primary_asset(assets: Sequence[Mapping[str, Any]]) -> str | None:
    """The asset the next step works on: the image if there is one, else the first output."""
    for asset in assets:
        if asset.get("role") == "image":
            return str(asset["asset_id"])
    return str(assets[0]["asset_id"]) if assets else None


def charged_for(plan: Sequence[Mapping[str, Any]], completed_step_ids: Sequence[str]) -> int:
    """What a task that ends now pays: the cost of the steps it completed, nothing for the rest."""
    done = set(completed_step_ids)
    return sum(int(step["cost"]) for step in plan if step["id"] in done)


def next_step(plan: Sequence[Mapping[str, Any]], step_id: str) -> Mapping[str, Any] | None:
    ids = [step["id"] for step in plan]
    index = ids.index(step_id)
    return plan[index + 1] if index + 1 < len(plan) else None
