from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from funmagic_contracts.tasks import events
from funmagic_contracts.tasks.events import (
    StepInput,
    StepOutputDiscarded,
    StepRequested,
    TaskDeleted,
    TaskRequested,
    ToolChanged,
    ToolTypeChanged,
)

REQUIRED = dict(task_id="t", user_id="u", tool_id="tool", tool_slug="figme", step_ids=["image-gen"], price=20)


def test_task_events_are_keyed_by_task_catalog_and_studio_events_by_their_own_id():
    keyed_by_task = [m for m in map(lambda n: getattr(events, n), events.__all__) if hasattr(m, "EVENT_TYPE")]

    assert {m.TOPIC for m in keyed_by_task} == {"tasks.events"}
    assert {m.EVENT_TYPE: m.SUBJECT_FIELD for m in keyed_by_task if m.SUBJECT_FIELD != "task_id"} == {
        "ToolChanged": "tool_id",
        "ToolTypeChanged": "tool_type_id",
        "BannerChanged": "banner_id",
        "StudioReplyCompleted": "message_id",
        "StudioReplyFailed": "message_id",
        "StudioReplyCancelled": "message_id",
        "StudioChatDeleted": "chat_id",
    }


def test_a_task_request_needs_only_the_catalogs_required_fields():
    event = TaskRequested(**REQUIRED)

    assert event.parent_task_id is None
    assert event.idempotency_key is None
    assert event.step_ids == ("image-gen",)


@pytest.mark.parametrize(
    ("field", "value"), [("price", -1), ("price", 2.5), ("step_ids", []), ("tool_slug", ""), ("task_id", "")]
)
def test_a_task_request_with_a_bad_value_is_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        TaskRequested(**(REQUIRED | {field: value}))


def test_a_step_request_has_a_scope_of_web_or_admin_and_an_attempt_from_one():
    fields = dict(
        task_id="t",
        user_id="u",
        step_id="s",
        step_type="image-gen",
        provider="openai",
        model="gpt-image-1",
        scope="web",
        input=StepInput(asset_ids=("a1",), prompt="a cat"),
        attempt=1,
        deadline_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    StepRequested(**fields)

    with pytest.raises(ValidationError, match="scope"):
        StepRequested(**(fields | {"scope": "studio"}))
    with pytest.raises(ValidationError, match="attempt"):
        StepRequested(**(fields | {"attempt": 0}))


def test_a_tool_change_is_created_updated_or_deleted():
    assert ToolChanged(tool_id="t", action="deleted").slug is None

    with pytest.raises(ValidationError, match="action"):
        ToolChanged(tool_id="t", action="renamed")


def test_a_deleted_task_names_itself_and_its_children_and_who_deleted_it():
    event = TaskDeleted(task_id="t", user_id="u", deleted_task_ids=["t", "c"], by="admin")

    assert event.deleted_task_ids == ("t", "c")
    with pytest.raises(ValidationError, match="deleted_task_ids"):
        TaskDeleted(task_id="t", user_id="u", deleted_task_ids=[], by="u")


def test_a_tool_type_change_says_its_name_whether_it_is_active_and_what_changed():
    event = ToolTypeChanged(tool_type_id="tt", name="image", change="deleted", is_active=False)

    assert (event.name, event.change, event.is_active) == ("image", "deleted", False)
    with pytest.raises(ValidationError, match="change"):
        ToolTypeChanged(tool_type_id="tt", name="image", change="renamed", is_active=True)


def test_a_discarded_step_output_names_at_least_one_asset_and_a_real_attempt():
    event = StepOutputDiscarded(task_id="t", user_id="u", step_id="cut", attempt=2, asset_ids=["a", "b"])

    assert (event.asset_ids, event.attempt) == (("a", "b"), 2)
    with pytest.raises(ValidationError, match="asset_ids"):
        StepOutputDiscarded(task_id="t", user_id="u", step_id="cut", attempt=1, asset_ids=[])
    with pytest.raises(ValidationError, match="attempt"):
        StepOutputDiscarded(task_id="t", user_id="u", step_id="cut", attempt=0, asset_ids=["a"])
