"""The check behind the gateway's reply contract tests (tests/e2e/test_gateway_reply_contracts.py): a
member a service answers that the gateway's reply model would drop is named, however deep it is."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field, ValidationError

from funmagic_contracts.api import Reply
from funmagic_contracts.api.catalog import AdminToolView, ToolDetail, ToolPage
from funmagic_contracts.api.coverage import assert_reply_covers, undeclared_members


class Part(Reply):
    name: str


class Machine(Reply):
    id: str
    main: Part | None = None
    parts: list[Part] = Field(default_factory=list)
    spares: dict[str, Part] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)


def test_an_answer_with_declared_members_only_is_covered() -> None:
    body = {
        "id": "m-1",
        "main": {"name": "engine"},
        "parts": [{"name": "wheel"}],
        "spares": {"left": {"name": "tyre"}},
        "settings": {"anything": {"goes": ["here", 1]}},  # an open mapping declares whatever it holds
    }

    assert undeclared_members(Machine, body) == []
    assert_reply_covers(Machine, body)


def test_an_extra_member_is_named() -> None:
    with pytest.raises(AssertionError, match=r"Machine would drop colour\b"):
        assert_reply_covers(Machine, {"id": "m-1", "colour": "red"})


def test_extra_nested_members_are_named_by_their_path() -> None:
    body = {
        "id": "m-1",
        "main": {"name": "engine", "serial": "E-1"},
        "parts": [{"name": "wheel"}, {"name": "bolt", "torque": 12}, {"name": "nut", "torque": 3}],
        "spares": {"left": {"name": "tyre", "pressure": 2.1}},
    }

    assert undeclared_members(Machine, body) == ["main.serial", "parts[].torque", "spares[].pressure"]
    with pytest.raises(AssertionError, match=r"main\.serial, parts\[\]\.torque, spares\[\]\.pressure"):
        assert_reply_covers(Machine, body)


def test_a_member_withheld_on_purpose_is_no_failure_nor_is_anything_below_it() -> None:
    body = {"id": "m-1", "internal": {"deep": 1}, "parts": [{"name": "bolt", "cost": {"eur": 1}}]}

    assert_reply_covers(Machine, body, withheld=("internal", "parts[].cost"))
    with pytest.raises(AssertionError, match=r"parts\[\]\.cost"):
        assert_reply_covers(Machine, body, withheld=("internal",))


def test_an_answer_the_model_cannot_read_fails_as_such() -> None:
    with pytest.raises(ValidationError):
        assert_reply_covers(Machine, {"main": {"name": "engine"}})


TOOL = {
    "id": "t-1",
    "slug": "figme",
    "title": "Figme",
    "description": "",
    "thumbnail_asset_id": None,
    "credits_cost": 5,
    "is_featured": False,
    "tool_type": {"id": "tt-1", "name": "figures", "display_name": "Figures"},
}
STEP = {
    "id": "gen",
    "name": "Generate",
    "type": "image-gen",
    "cost": 5,
    "input": {"image": "none", "prompt": "optional"},
}


def test_the_catalogs_public_models_drop_a_steps_provider_and_say_so() -> None:
    # The public tool hides providers on purpose: a contract test lists them as withheld.
    step = {**STEP, "provider": {"name": "openai", "model": "gpt-image-1", "options": {}}, "prompt": "secret"}
    body = {**TOOL, "config": {"steps": [step], "styleReferences": [], "pipeline": True}}

    assert undeclared_members(ToolDetail, body) == ["config.steps[].provider", "config.steps[].prompt"]
    assert_reply_covers(ToolDetail, body, withheld=("config.steps[].provider", "config.steps[].prompt"))


def test_a_field_added_to_every_item_of_a_page_is_caught() -> None:
    body = {"items": [{**TOOL, "rating": 4.5}, TOOL], "next_cursor": None}

    with pytest.raises(AssertionError, match=r"ToolPage would drop items\[\]\.rating"):
        assert_reply_covers(ToolPage, body)


def test_the_admin_tool_declares_the_step_details_the_public_one_hides() -> None:
    step = {
        **STEP,
        "provider": {"name": "openai", "model": "m", "options": {}},
        "prompt": None,
        "timeoutSeconds": 60,
    }
    body = {
        **TOOL,
        "tool_type_id": "tt-1",
        "config": {"steps": [step], "styleReferences": [], "pipeline": True},
        "is_active": True,
        "translations": {"de": {"title": "Figme"}},
        "usage_count": 3,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }

    assert_reply_covers(AdminToolView, body)
