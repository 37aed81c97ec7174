import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation

from funmagic_contracts.compat import dir_breakages, load_schema_dir
from funmagic_contracts.examples import EXAMPLES, example_envelope
from funmagic_contracts.registry import EVENT_TYPES
from funmagic_contracts.schemas import dump_json, envelope_schema_path, event_schema_path, render_schemas

CONTRACTS_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_SCHEMAS = CONTRACTS_ROOT / "schemas"

FORMATS = Draft202012Validator.FORMAT_CHECKER


def committed(path: str) -> dict:
    return json.loads((COMMITTED_SCHEMAS / path).read_text(encoding="utf-8"))


def test_the_committed_schemas_are_exactly_what_the_models_export():
    rendered = render_schemas()
    committed_paths = {p.relative_to(COMMITTED_SCHEMAS).as_posix() for p in COMMITTED_SCHEMAS.rglob("*.json")}

    assert committed_paths == set(rendered), "run `python -m funmagic_contracts.export` and commit"
    for path, schema in rendered.items():
        text = (COMMITTED_SCHEMAS / path).read_text(encoding="utf-8")
        assert text == dump_json(schema), f"{path} is stale: run `python -m funmagic_contracts.export`"


def test_the_models_are_backward_compatible_with_the_committed_schemas():
    assert dir_breakages(load_schema_dir(COMMITTED_SCHEMAS), render_schemas()) == []


def test_every_event_has_one_schema_file_per_version_under_its_topic():
    for (event_type, version), model in EVENT_TYPES.items():
        assert event_schema_path(model) == f"{model.TOPIC}/{event_type}.v{version}.json"
        assert (COMMITTED_SCHEMAS / event_schema_path(model)).is_file()
    assert (COMMITTED_SCHEMAS / "envelope.v1.json").is_file()


@pytest.mark.parametrize("key", sorted(EVENT_TYPES), ids=lambda k: f"{k[0]}.v{k[1]}")
def test_every_example_event_and_its_envelope_match_the_committed_schemas(key):
    envelope = example_envelope(EXAMPLES[key])
    validate_event = Draft202012Validator(
        committed(event_schema_path(EVENT_TYPES[key])), format_checker=FORMATS
    )
    validate_envelope = Draft202012Validator(committed(envelope_schema_path()), format_checker=FORMATS)

    validate_event.validate(envelope.data)
    validate_envelope.validate(envelope.model_dump(mode="json"))


def test_the_committed_schemas_reject_what_the_models_reject():
    validate = Draft202012Validator(committed("tasks.events/TaskRequested.v1.json"), format_checker=FORMATS)
    good = EXAMPLES[("TaskRequested", 1)].model_dump(mode="json")

    for bad in (
        good | {"price": -1},
        good | {"step_ids": []},
        {k: v for k, v in good.items() if k != "task_id"},
    ):
        with pytest.raises(SchemaViolation):
            validate.validate(bad)


def test_the_envelope_schema_requires_a_uuid7_id():
    validate = Draft202012Validator(committed(envelope_schema_path()), format_checker=FORMATS)
    envelope = example_envelope(EXAMPLES[("TaskRequested", 1)]).model_dump(mode="json")

    with pytest.raises(SchemaViolation, match="does not match"):
        validate.validate(envelope | {"id": "6f1c2a8e-0d7b-4c1a-9d3e-2b4f5a6c7d8e"})
