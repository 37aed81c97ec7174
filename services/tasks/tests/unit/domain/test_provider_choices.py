"""A step's provider choices: what an admin may offer (catalog), what a user may pick per request (tasks),
and what the planned step then runs on. Given a tool, when a config is parsed or a request planned, then…"""

from __future__ import annotations

from types import MappingProxyType

import pytest

from funmagic_tasks.domain.catalog import (
    InvalidCatalogEntry,
    Tool,
    choice_fields,
    config_to_json,
    parse_tool_config,
    public_config,
)
from funmagic_tasks.domain.tasks import ProviderPick, TaskInput, TaskRefused, plan_steps, plan_task

IMAGE = "5b0c2d7e-6a2f-4a57-9f0e-2f0f9d1f2a11"

LOCAL = {"provider": "local", "label": "Built-in", "models": ["default"]}
TRIPO = {
    "provider": "tripo-main",
    "label": "Tripo",
    "models": ["v2.5-20250123", "v3.0-20250812"],
    "options": {
        "face_limit": {"type": "integer", "min": 1000, "max": 50000, "default": 10000},
        "pbr": {"type": "boolean", "default": True},
        "texture_quality": {"type": "enum", "values": ["standard", "detailed"]},
    },
}


def image_to_3d(*choices: dict, provider: dict | None = None) -> dict:
    return {
        "steps": [{
            "id": "3d-gen", "name": "3D", "type": "3d-gen", "cost": 30,
            "provider": provider or {"name": "local", "model": "default", "options": {"grid": 24}},
            "input": {"image": "required", "prompt": "none"},
            "choices": list(choices),
        }],
        "pipeline": False,
    }  # fmt: skip


def given_tool(*choices: dict, provider: dict | None = None) -> Tool:
    return Tool(
        "tool-3d",
        "image-to-3d",
        "Image to 3D",
        True,
        30,
        parse_tool_config(image_to_3d(*choices, provider=provider)),
    )


def refused_config(document: dict) -> InvalidCatalogEntry:
    with pytest.raises(InvalidCatalogEntry) as caught:
        parse_tool_config(document)
    return caught.value


def refused_pick(tool: Tool, pick: ProviderPick) -> TaskRefused:
    with pytest.raises(TaskRefused) as caught:
        plan_task(tool, None, None, TaskInput(image_asset_id=IMAGE, provider=pick))
    return caught.value


# --- the catalog: what an admin may offer ------------------------------------------------------------


def test_choices_are_parsed_and_stored_in_their_canonical_form() -> None:
    config = parse_tool_config(image_to_3d(LOCAL, TRIPO))

    step = config.steps[0]
    assert [c.provider for c in step.choices] == ["local", "tripo-main"]
    assert step.choice("tripo-main").options["face_limit"].high == 50000
    stored = config_to_json(config)["steps"][0]["choices"]
    assert stored[1] == TRIPO
    assert parse_tool_config(config_to_json(config)) == config


def test_a_choice_without_a_label_shows_its_provider_name() -> None:
    config = parse_tool_config(image_to_3d({"provider": "local"}))
    assert config.steps[0].choices[0].label == "local"


@pytest.mark.parametrize(
    ("choices", "field"),
    [
        ([TRIPO], "config.steps[0].choices"),  # the step's own provider must be offered
        ([LOCAL, TRIPO, TRIPO], "config.steps[0].choices[2].provider"),
        ([{"provider": "Not A Name"}], "config.steps[0].choices[0].provider"),
        ([{**LOCAL, "models": ["other", "default"]}], "config.steps[0].choices[0].models"),
        ([LOCAL, {**TRIPO, "models": ["v3", "v3"]}], "config.steps[0].choices[1].models"),
        ([LOCAL, {**TRIPO, "colour": "red"}], "config.steps[0].choices[1].colour"),
        (
            [LOCAL, {**TRIPO, "options": {"x": {"type": "float"}}}],
            "config.steps[0].choices[1].options.x.type",
        ),
        (
            [LOCAL, {**TRIPO, "options": {"x": {"type": "integer", "min": 5, "max": 1}}}],
            "config.steps[0].choices[1].options.x.max",
        ),
        (
            [LOCAL, {**TRIPO, "options": {"x": {"type": "integer", "min": 1, "max": 5, "default": 9}}}],
            "config.steps[0].choices[1].options.x.default",
        ),
        (
            [LOCAL, {**TRIPO, "options": {"x": {"type": "enum", "values": []}}}],
            "config.steps[0].choices[1].options.x.values",
        ),
        (
            [LOCAL, {**TRIPO, "options": {"x": {"type": "boolean", "min": 1}}}],
            "config.steps[0].choices[1].options.x.min",
        ),
        (
            [LOCAL, {**TRIPO, "options": {"1bad": {"type": "boolean"}}}],
            "config.steps[0].choices[1].options.1bad",
        ),
    ],
)
def test_a_broken_choice_is_refused_naming_its_field(choices: list, field: str) -> None:
    assert refused_config(image_to_3d(*choices)).field == field


def test_a_save_checks_every_chosen_provider_in_the_registry() -> None:
    config = parse_tool_config(image_to_3d(LOCAL, TRIPO))
    assert choice_fields(config) == [
        ("config.steps[0].choices[0].provider", "local"),
        ("config.steps[0].choices[1].provider", "tripo-main"),
    ]


def test_users_see_the_choices_with_the_default_marked_and_not_the_steps_options() -> None:
    shown = public_config(parse_tool_config(image_to_3d(LOCAL, TRIPO)))["steps"][0]

    assert [(c["provider"], c["label"], c["default"]) for c in shown["choices"]] == [
        ("local", "Built-in", True),
        ("tripo-main", "Tripo", False),
    ]
    assert shown["choices"][1]["options"]["face_limit"] == {
        "type": "integer", "min": 1000, "max": 50000, "default": 10000,
    }  # fmt: skip
    assert "provider" not in shown
    assert "grid" not in str(shown)


# --- a request: what a user may pick ---------------------------------------------------------------


def test_no_pick_runs_the_steps_own_provider() -> None:
    tool = given_tool(LOCAL, TRIPO)
    plan = plan_task(tool, None, None, TaskInput(image_asset_id=IMAGE))

    (step,) = plan_steps(tool, plan.step_ids, plan.provider)

    assert (step.provider, step.model, dict(step.options)) == ("local", "default", {"grid": 24})


def test_a_pick_runs_the_chosen_provider_with_its_first_model_and_the_users_options() -> None:
    tool = given_tool(LOCAL, TRIPO)
    pick = ProviderPick("tripo-main", options=MappingProxyType({"face_limit": 20000, "pbr": False}))
    plan = plan_task(tool, None, None, TaskInput(image_asset_id=IMAGE, provider=pick))

    (step,) = plan_steps(tool, plan.step_ids, plan.provider)

    # Another provider gets the user's options alone: the step's own (`grid`) are its own provider's.
    assert (step.provider, step.model, dict(step.options)) == (
        "tripo-main", "v2.5-20250123", {"face_limit": 20000, "pbr": False},
    )  # fmt: skip


def test_a_pick_of_the_steps_own_provider_merges_the_users_options_over_the_steps() -> None:
    own = {**LOCAL, "options": {"grid": {"type": "integer", "min": 8, "max": 64}}}
    tool = given_tool(own, TRIPO)
    pick = ProviderPick("local", model="default", options=MappingProxyType({"grid": 32}))
    plan = plan_task(tool, None, None, TaskInput(image_asset_id=IMAGE, provider=pick))

    (step,) = plan_steps(tool, plan.step_ids, plan.provider)

    assert (step.provider, dict(step.options)) == ("local", {"grid": 32})


def test_a_chosen_model_is_kept() -> None:
    tool = given_tool(LOCAL, TRIPO)
    plan = plan_task(
        tool,
        None,
        None,
        TaskInput(image_asset_id=IMAGE, provider=ProviderPick("tripo-main", "v3.0-20250812")),
    )
    assert plan.provider is not None
    assert plan.provider.model == "v3.0-20250812"


@pytest.mark.parametrize(
    ("pick", "code", "field"),
    [
        (ProviderPick("openai"), "provider_not_allowed", "input.provider.name"),
        (ProviderPick("tripo-main", "v9"), "model_not_allowed", "input.provider.model"),
        (ProviderPick("local", "v2.5-20250123"), "model_not_allowed", "input.provider.model"),
        (
            ProviderPick("tripo-main", options=MappingProxyType({"seed": 1})),
            "option_not_allowed",
            "input.provider.options.seed",
        ),
        (
            ProviderPick("local", options=MappingProxyType({"face_limit": 2000})),
            "option_not_allowed",
            "input.provider.options.face_limit",
        ),
        (
            ProviderPick("tripo-main", options=MappingProxyType({"face_limit": 999})),
            "option_out_of_range",
            "input.provider.options.face_limit",
        ),
        (
            ProviderPick("tripo-main", options=MappingProxyType({"face_limit": True})),
            "option_out_of_range",
            "input.provider.options.face_limit",
        ),
        (
            ProviderPick("tripo-main", options=MappingProxyType({"pbr": "yes"})),
            "option_out_of_range",
            "input.provider.options.pbr",
        ),
        (
            ProviderPick("tripo-main", options=MappingProxyType({"texture_quality": "ultra"})),
            "option_out_of_range",
            "input.provider.options.texture_quality",
        ),
    ],
)
def test_a_pick_the_step_does_not_allow_is_refused_by_name(pick: ProviderPick, code: str, field: str) -> None:
    refusal = refused_pick(given_tool(LOCAL, TRIPO), pick)
    assert (refusal.code, refusal.field) == (code, field)


def test_a_step_without_choices_refuses_any_pick() -> None:
    tool = given_tool()
    refusal = refused_pick(tool, ProviderPick("local"))
    assert refusal.code == "provider_not_allowed"
    assert "no choice of provider" in str(refusal)
