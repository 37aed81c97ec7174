import pytest
from pydantic import ValidationError

from funmagic_contracts.storage import events
from funmagic_contracts.storage.events import AssetCreated

FIELDS = dict(
    asset_id="a",
    user_id="u",
    bucket="funmagic-private",
    storage_key="u/figme/1_x.png",
    visibility="private",
    module="figme",
    mime_type="image/png",
    size=10,
)


def test_storage_events_are_published_on_storage_events_keyed_by_user():
    models = [getattr(events, n) for n in events.__all__ if hasattr(getattr(events, n), "EVENT_TYPE")]

    assert {(m.TOPIC, m.SUBJECT_FIELD) for m in models} == {("storage.events", "user_id")}


def test_an_asset_may_come_from_a_task_or_not():
    assert AssetCreated(**FIELDS).task_id is None
    assert AssetCreated(**FIELDS, task_id="t").task_id == "t"


@pytest.mark.parametrize(("field", "value"), [("visibility", "secret"), ("size", -1), ("storage_key", "")])
def test_an_asset_with_a_bad_value_is_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        AssetCreated(**(FIELDS | {field: value}))
