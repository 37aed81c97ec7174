"""What a task request may ask for, what it costs, which step runs next, what is charged.

Pure planning rules; the task aggregate (`domain/task.py`) applies them. The flow (DESIGN §4): pending →
(credits reserved) running → step after step → completed | failed | cancelled. A task runs either one
step of a tool (`stepId`, or a tool that is not a pipeline) or every step in order (a pipeline). A chained
task (`parentTaskId`) runs a later step on its parent's output.

A request may choose the provider of the step it starts with (`input.provider`: name, model, options),
where that step offers `choices` (see `catalog`): the choice must be one the step offers, the model one of
the choice's, each option one the choice lets the user set, with a value it allows. The planned step then
runs on the chosen provider (so providers rate-limits the chosen one, not the step's default), with the
chosen model and the options merged over the step's own (only when the choice is the step's own provider:
another provider's options are its choice's alone).

Refusals derive from the kit's kinds, which say how the edge answers (404 for a missing tool or parent,
409 for a reused Idempotency-Key, 429 for too many tasks, 422 for the rest); the `code` is what clients
read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from funmagic_contracts.tasks.events import StepInput
from funmagic_kit.errors import IdempotencyKeyReused, LimitReached, NotFound, Refused
from funmagic_tasks.domain.catalog import ProviderChoice, StepSpec, Tool
from funmagic_tasks.domain.json_values import JsonObject, JsonValue

__all__ = [
    "ACTIVE_STATUSES",
    "MAX_PROMPT_LENGTH",
    "TERMINAL_STATUSES",
    "ChosenProvider",
    "IdempotencyKeyReused",
    "ParentNotFound",
    "ParentTask",
    "PlannedStep",
    "ProducedAsset",
    "ProviderPick",
    "TaskInput",
    "TaskNotFound",
    "TaskPlan",
    "TaskRefused",
    "TaskRequest",
    "TaskStatus",
    "TooManyTasks",
    "ToolNotFound",
    "charged_for",
    "choose_provider",
    "fingerprint",
    "next_step",
    "plan_steps",
    "plan_task",
    "primary_asset",
    "request_document",
    "resolve_prompt",
    "resolve_style_image",
    "step_input",
]

TaskStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
ACTIVE_STATUSES: tuple[TaskStatus, ...] = ("pending", "running")
TERMINAL_STATUSES: tuple[TaskStatus, ...] = ("completed", "failed", "cancelled")
MAX_PROMPT_LENGTH = 4000


# --- refusals ------------------------------------------------------------------------------------------


class TaskRefused(Refused, code="task_refused"):
    """The request cannot become a task; `code` and `field` say why."""


class TaskNotFound(NotFound):
    """No such task for this caller (another user's task looks exactly like a missing one)."""


class ToolNotFound(NotFound, code="tool_not_found"):
    """The request names a tool that does not exist (or no longer does)."""

    def __init__(self, slug: str) -> None:
        super().__init__(f"no tool {slug!r}", field="toolSlug")


class ParentNotFound(NotFound, code="parent_not_found"):
    """The request continues a task that does not exist or is another user's."""

    def __init__(self) -> None:
        super().__init__("no such parent task", field="parentTaskId")


class TooManyTasks(LimitReached, code="too_many_tasks"):
    """The user already has as many pending and running tasks as the policy allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} tasks may run at once; wait for one to end")


# --- values --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderPick:
    """The provider a user chose for the first step: a name, and maybe a model and options."""

    name: str
    model: str | None = None
    options: Mapping[str, JsonValue] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TaskInput:
    """What the first step works on, as the user gave it; the step says which parts it needs."""

    image_asset_id: str | None = None
    prompt: str | None = None
    style_reference_id: str | None = None
    provider: ProviderPick | None = None


@dataclass(frozen=True)
class TaskRequest:
    """What a user asked for, as the API received it."""

    tool_slug: str
    step_id: str | None = None
    parent_task_id: str | None = None
    input: TaskInput = field(default_factory=TaskInput)


@dataclass(frozen=True)
class ProducedAsset:
    """An asset a step produced, with the part it plays (`image`, `model`…)."""

    asset_id: str
    role: str


@dataclass(frozen=True)
class ParentTask:
    """What a chained task needs to know of the task it continues."""

    id: str
    tool_id: str
    status: TaskStatus
    step_ids: tuple[str, ...]
    output_assets: tuple[ProducedAsset, ...]


@dataclass(frozen=True)
class TaskPlan:
    step_ids: tuple[str, ...]
    price: int
    # The first step's image: the user's asset, or the parent's output (chained tasks).
    image_asset_id: str | None
    # The first step's provider as the user chose it (checked); None: the step's own.
    provider: ChosenProvider | None = None


@dataclass(frozen=True)
class ChosenProvider:
    """A user's choice of provider for a step, checked against the step's `choices`, resolved: the model
    to run and the options the user set."""

    name: str
    model: str
    options: Mapping[str, JsonValue]


@dataclass(frozen=True)
class PlannedStep:
    """One step of a task as it was when the task was created: a later edit of the tool changes nothing
    for the task (not its price, not its providers)."""

    id: str
    name: str
    type: str
    provider: str
    model: str
    options: Mapping[str, JsonValue]
    cost: int
    timeout_seconds: int
    prompt: str | None
    image_input: str  # "required" | "optional" | "none"
    use_style_image: bool = True


# --- the request ---------------------------------------------------------------------------------------


def request_document(request: TaskRequest) -> JsonObject:
    """The request as the API spells it, without the fields left out (what is stored with the task)."""
    document: JsonObject = {"toolSlug": request.tool_slug}
    if request.step_id is not None:
        document["stepId"] = request.step_id
    if request.parent_task_id is not None:
        document["parentTaskId"] = request.parent_task_id
    given = (
        ("imageAssetId", request.input.image_asset_id),
        ("prompt", request.input.prompt),
        ("styleReferenceId", request.input.style_reference_id),
    )
    document["input"] = {name: value for name, value in given if value is not None}
    pick = request.input.provider
    if pick is not None:
        chosen: JsonObject = {"name": pick.name}
        if pick.model is not None:
            chosen["model"] = pick.model
        if pick.options:
            chosen["options"] = dict(pick.options)
        document["input"]["provider"] = chosen
    return document


def fingerprint(request: TaskRequest) -> str:
    """What makes a retried request the same request (compared under one Idempotency-Key)."""
    return hashlib.sha256(json.dumps(request_document(request), sort_keys=True).encode()).hexdigest()


# --- planning ------------------------------------------------------------------------------------------


def plan_task(tool: Tool, step_id: str | None, parent: ParentTask | None, task_input: TaskInput) -> TaskPlan:
    if not tool.is_active:
        raise TaskRefused(f"the tool {tool.slug!r} is not available", code="tool_inactive", field="toolSlug")
    steps = tool.config.steps
    if step_id is not None:
        spec = tool.config.step(step_id)
        if spec is None:
            known = ", ".join(s.id for s in steps)
            raise TaskRefused(
                f"{tool.slug!r} has no step {step_id!r} (steps: {known})", code="unknown_step", field="stepId"
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
            f"step {first.id!r} continues an earlier step: give parentTaskId (or an image)",
            code="parent_required",
            field="parentTaskId",
        )
    _check_input(tool, first, task_input, image)
    provider = choose_provider(first, task_input.provider) if task_input.provider is not None else None
    return TaskPlan(tuple(s.id for s in chosen), sum(s.cost for s in chosen), image, provider)


def choose_provider(step: StepSpec, pick: ProviderPick) -> ChosenProvider:
    """The user's pick checked against what `step` offers; refused by name (`provider_not_allowed`,
    `model_not_allowed`, `option_not_allowed`, `option_out_of_range`), naming the field."""
    offered = step.choice(pick.name)
    if offered is None:
        names = ", ".join(c.provider for c in step.choices)
        raise TaskRefused(
            f"step {step.id!r} offers {'the providers ' + names if names else 'no choice of provider'}",
            code="provider_not_allowed",
            field="input.provider.name",
        )
    models = offered.models or (_default_model(step, offered),)
    model = models[0] if pick.model is None else pick.model
    if model not in models:
        raise TaskRefused(
            f"{offered.provider!r} offers the models {', '.join(models)}",
            code="model_not_allowed",
            field="input.provider.model",
        )
    for name, value in pick.options.items():
        rule = offered.options.get(name)
        if rule is None:
            known = ", ".join(offered.options) or "none"
            raise TaskRefused(
                f"{offered.provider!r} takes no option {name!r} from users (options: {known})",
                code="option_not_allowed",
                field=f"input.provider.options.{name}",
            )
        if not rule.allows(value):
            raise TaskRefused(
                f"{name} must be {rule.describe()}",
                code="option_out_of_range",
                field=f"input.provider.options.{name}",
            )
    return ChosenProvider(offered.provider, model, MappingProxyType(dict(pick.options)))


def _default_model(step: StepSpec, offered: ProviderChoice) -> str:
    """The first model the choice lists; else the step's own model for its own provider, else `default`."""
    if offered.models:
        return offered.models[0]
    return step.provider.model if offered.provider == step.provider.name else "default"


def _image_from_parent(tool: Tool, first: StepSpec, parent: ParentTask, image: str | None) -> str | None:
    if parent.tool_id != tool.id:
        raise TaskRefused("the parent task ran another tool", code="parent_mismatch", field="parentTaskId")
    if parent.status != "completed":
        raise TaskRefused(
            "the parent task has not completed", code="parent_not_completed", field="parentTaskId"
        )
    index = next(i for i, s in enumerate(tool.config.steps) if s.id == first.id)
    if index == 0 or tool.config.steps[index - 1].id not in parent.step_ids:
        raise TaskRefused(
            f"step {first.id!r} does not continue the parent's steps",
            code="parent_mismatch",
            field="parentTaskId",
        )
    if image is not None:
        return image
    asset = primary_asset(parent.output_assets)
    if asset is None:
        raise TaskRefused(
            "the parent task has no output to continue", code="parent_without_output", field="parentTaskId"
        )
    return asset


def _check_input(tool: Tool, first: StepSpec, task_input: TaskInput, image: str | None) -> None:
    if first.image_input == "required" and image is None:
        raise TaskRefused(
            f"step {first.id!r} needs an image (input.imageAssetId)",
            code="image_required",
            field="input.imageAssetId",
        )
    if first.image_input == "none" and task_input.image_asset_id is not None:
        raise TaskRefused(
            f"step {first.id!r} takes no image", code="image_not_accepted", field="input.imageAssetId"
        )
    prompt = task_input.prompt
    if prompt is not None and len(prompt) > MAX_PROMPT_LENGTH:
        raise TaskRefused(
            f"a prompt has at most {MAX_PROMPT_LENGTH} characters",
            code="prompt_too_long",
            field="input.prompt",
        )
    if first.prompt_input == "none" and prompt:
        raise TaskRefused(
            f"step {first.id!r} takes no prompt", code="prompt_not_accepted", field="input.prompt"
        )
    style = task_input.style_reference_id
    if style is not None and not any(s.id == style for s in tool.config.style_references):
        raise TaskRefused(
            f"{tool.slug!r} has no style reference {style!r}",
            code="unknown_style",
            field="input.styleReferenceId",
        )
    has_prompt = bool(prompt) or style is not None or bool(first.prompt)
    if first.prompt_input == "required" and not has_prompt:
        raise TaskRefused(f"step {first.id!r} needs a prompt", code="prompt_required", field="input.prompt")


def plan_steps(
    tool: Tool, step_ids: Sequence[str], provider: ChosenProvider | None = None
) -> tuple[PlannedStep, ...]:
    """The steps a task runs, as they are when it is created; the first on the provider the user chose."""
    specs = {s.id: s for s in tool.config.steps}
    planned = [
        PlannedStep(
            id=spec.id,
            name=spec.name,
            type=spec.type,
            provider=spec.provider.name,
            model=spec.provider.model,
            options=MappingProxyType(dict(spec.provider.options)),
            cost=spec.cost,
            timeout_seconds=spec.timeout_seconds,
            prompt=spec.prompt,
            image_input=spec.image_input,
            use_style_image=spec.use_style_image,
        )
        for spec in (specs[step_id] for step_id in step_ids)
    ]
    if provider is not None and planned:
        first = planned[0]
        # The step's options are its own provider's: another provider gets the user's options alone.
        base = dict(first.options) if provider.name == first.provider else {}
        planned[0] = replace(
            first,
            provider=provider.name,
            model=provider.model,
            options=MappingProxyType({**base, **provider.options}),
        )
    return tuple(planned)


def resolve_prompt(tool: Tool, task_input: TaskInput) -> str | None:
    """The user's prompt, else the chosen style reference's prompt (a step's own default comes last)."""
    if task_input.prompt:
        return task_input.prompt
    if task_input.style_reference_id:
        style = next(s for s in tool.config.style_references if s.id == task_input.style_reference_id)
        return style.prompt
    return None


def resolve_style_image(tool: Tool, task_input: TaskInput) -> str | None:
    """The chosen style reference's image (an asset the admin gave the tool), if it has one."""
    if not task_input.style_reference_id:
        return None
    style = next(s for s in tool.config.style_references if s.id == task_input.style_reference_id)
    return style.asset_id


def step_input(
    step: PlannedStep, prompt: str | None, image_asset_id: str | None, style_asset_id: str | None = None
) -> StepInput:
    """What providers gets for a step: asset ids, the prompt to use, the tool's provider options. An
    image-gen step that works on an image gets the style's image too, before it (the original's
    `images.edit` with [style image, user image]), unless it says `useStyleImage: false`; without an image
    it draws from the prompt alone (the original's `images.generate`), so the style's image is not sent."""
    takes_image = image_asset_id is not None and step.image_input != "none"
    takes_style = (
        takes_image and style_asset_id is not None and step.type == "image-gen" and step.use_style_image
    )
    return StepInput(
        asset_ids=(image_asset_id,) if takes_image and image_asset_id is not None else (),
        reference_asset_ids=(style_asset_id,) if takes_style and style_asset_id is not None else (),
        prompt=prompt or step.prompt,
        options=dict(step.options),
    )


def primary_asset(assets: Sequence[ProducedAsset]) -> str | None:
    """The asset the next step works on: the image if there is one, else the first output."""
    for asset in assets:
        if asset.role == "image":
            return asset.asset_id
    return assets[0].asset_id if assets else None


def charged_for(plan: Sequence[PlannedStep], completed_step_ids: Sequence[str]) -> int:
    """What a task that ends now pays: the cost of the steps it completed, nothing for the rest."""
    done = set(completed_step_ids)
    return sum(step.cost for step in plan if step.id in done)


def next_step(plan: Sequence[PlannedStep], step_id: str) -> PlannedStep | None:
    ids = [step.id for step in plan]
    index = ids.index(step_id)
    return plan[index + 1] if index + 1 < len(plan) else None
