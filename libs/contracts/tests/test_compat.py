import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from funmagic_contracts.compat import dir_breakages, load_schema_dir, main, schema_breakages

CONTRACTS_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_SCHEMAS = CONTRACTS_ROOT / "schemas"

TASK_REQUESTED = "tasks.events/TaskRequested.v1.json"
STEP_REQUESTED = "tasks.events/StepRequested.v1.json"
USER_REGISTERED = "identity.events/UserRegistered.v1.json"

Edit = Callable[[dict], None]


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """A temporary copy of the committed (published) schemas, free to break."""
    folder = tmp_path / "candidate"
    shutil.copytree(COMMITTED_SCHEMAS, folder)
    return folder


def edit(folder: Path, path: str, change: Edit) -> None:
    file = folder / path
    schema = json.loads(file.read_text(encoding="utf-8"))
    change(schema)
    file.write_text(json.dumps(schema, indent=2), encoding="utf-8")


def check(candidate: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([str(COMMITTED_SCHEMAS), str(candidate)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def remove_field(name: str) -> Edit:
    def change(schema: dict) -> None:
        del schema["properties"][name]
        schema["required"] = [r for r in schema.get("required", []) if r != name]

    return change


def retype(name: str, new: dict) -> Edit:
    def change(schema: dict) -> None:
        schema["properties"][name] = new

    return change


def require(name: str) -> Edit:
    def change(schema: dict) -> None:
        schema["required"].append(name)

    return change


def remove_enum_value(name: str, value: str) -> Edit:
    def change(schema: dict) -> None:
        schema["properties"][name]["enum"].remove(value)

    return change


BREAKING = [
    pytest.param(TASK_REQUESTED, remove_field("price"), "field 'price' was removed", id="field-removed"),
    pytest.param(
        TASK_REQUESTED,
        retype("price", {"type": "string"}),
        "field 'price' changed type from integer to string",
        id="field-retyped",
    ),
    pytest.param(
        TASK_REQUESTED,
        require("parent_task_id"),
        "field 'parent_task_id' became required",
        id="optional-made-required",
    ),
    pytest.param(
        USER_REGISTERED,
        remove_enum_value("method", "github"),
        "field 'method' lost the enum value 'github'",
        id="enum-value-removed",
    ),
    pytest.param(
        TASK_REQUESTED,
        lambda s: (s["properties"].update(priority={"type": "integer"}), s["required"].append("priority")),
        "new required field 'priority'",
        id="new-required-field",
    ),
    pytest.param(
        TASK_REQUESTED,
        lambda s: s["required"].remove("tool_slug"),
        "field 'tool_slug' became optional",
        id="required-made-optional",
    ),
    pytest.param(
        TASK_REQUESTED,
        lambda s: s["properties"]["parent_task_id"].update(anyOf=[{"type": "string", "minLength": 1}]),
        "field 'parent_task_id' changed type from string or null to string",
        id="null-no-longer-accepted",
    ),
    pytest.param(
        TASK_REQUESTED,
        lambda s: s["properties"]["step_ids"]["items"].update(type="integer"),
        "field 'step_ids[]' changed type from string to integer",
        id="array-items-retyped",
    ),
    pytest.param(
        STEP_REQUESTED,
        lambda s: s["properties"]["deadline_at"].update(format="date"),
        "field 'deadline_at' changed format from 'date-time' to 'date'",
        id="format-changed",
    ),
    pytest.param(
        STEP_REQUESTED,
        lambda s: s["$defs"]["StepInput"]["properties"].pop("prompt"),
        "field 'input.prompt' was removed",
        id="nested-field-removed-through-ref",
    ),
    pytest.param(
        STEP_REQUESTED,
        lambda s: s["properties"]["attempt"].update(minimum=2),
        "field 'attempt' tightened minimum from 1 to 2",
        id="constraint-tightened",
    ),
]


@pytest.mark.parametrize(("path", "change", "expected"), BREAKING)
def test_the_check_rejects_a_breaking_change_naming_the_field(candidate, capsys, path, change, expected):
    edit(candidate, path, change)

    code, output = check(candidate, capsys)

    assert code == 1
    assert f"{path}: {expected}" in output


def test_a_removed_schema_file_is_a_breakage(candidate, capsys):
    (candidate / TASK_REQUESTED).unlink()

    code, output = check(candidate, capsys)

    assert code == 1
    assert f"{TASK_REQUESTED}: the published schema was removed" in output


def test_every_breakage_is_listed_not_just_the_first(candidate):
    edit(candidate, TASK_REQUESTED, remove_field("price"))
    edit(candidate, TASK_REQUESTED, require("idempotency_key"))
    edit(candidate, USER_REGISTERED, remove_enum_value("method", "email"))

    breakages = dir_breakages(load_schema_dir(COMMITTED_SCHEMAS), load_schema_dir(candidate))

    assert len(breakages) == 3


COMPATIBLE = [
    pytest.param(
        TASK_REQUESTED,
        lambda s: s["properties"].update(
            priority={"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
        ),
        id="optional-field-added",
    ),
    pytest.param(
        USER_REGISTERED,
        lambda s: s["properties"]["method"]["enum"].append("apple"),
        id="enum-widened",
    ),
    pytest.param(
        TASK_REQUESTED,
        lambda s: s["properties"]["tool_slug"].update(description="The tool's URL name."),
        id="description-added",
    ),
    pytest.param(
        STEP_REQUESTED,
        lambda s: s["properties"]["attempt"].pop("minimum"),
        id="constraint-loosened",
    ),
]


@pytest.mark.parametrize(("path", "change"), COMPATIBLE)
def test_the_check_accepts_a_compatible_change(candidate, capsys, path, change):
    edit(candidate, path, change)

    code, output = check(candidate, capsys)

    assert code == 0, output
    assert "compatible" in output


def test_a_new_event_version_beside_the_published_one_is_compatible(candidate, capsys):
    v2 = json.loads((candidate / TASK_REQUESTED).read_text())
    v2["properties"]["price"] = {"type": "string"}
    (candidate / "tasks.events/TaskRequested.v2.json").write_text(json.dumps(v2))

    assert check(candidate, capsys)[0] == 0


def test_the_committed_schemas_are_compatible_with_themselves(capsys):
    code, output = check(COMMITTED_SCHEMAS, capsys)

    assert code == 0
    assert f"{len(list(COMMITTED_SCHEMAS.rglob('*.json')))} published schema(s) checked" in output


def test_the_command_line_refuses_a_folder_that_does_not_exist(tmp_path):
    with pytest.raises(SystemExit) as exited:
        main([str(COMMITTED_SCHEMAS), str(tmp_path / "missing")])

    assert exited.value.code == 2


# Direct checks of schema shapes the committed schemas do not (yet) use.


def obj(properties: dict, required: list[str] | None = None, **more) -> dict:
    return {"type": "object", "properties": properties, "required": required or list(properties), **more}


def test_a_map_whose_values_change_type_is_a_breakage():
    old = obj({"labels": {"type": "object", "additionalProperties": {"type": "string"}}})
    new = obj({"labels": {"type": "object", "additionalProperties": {"type": "integer"}}})

    assert schema_breakages(old, new) == ["field 'labels{}' changed type from string to integer"]


def test_closing_an_object_to_extra_keys_is_a_breakage():
    old = obj({"meta": {"type": "object"}})
    new = obj({"meta": {"type": "object", "additionalProperties": False}})

    assert schema_breakages(old, new) == ["field 'meta' no longer accepts additional keys"]


def test_a_free_string_restricted_to_an_enum_is_a_breakage():
    old = obj({"status": {"type": "string"}})
    new = obj({"status": {"type": "string", "enum": ["ok"]}})

    assert schema_breakages(old, new) == ["field 'status' is now restricted to ['ok']"]


def test_a_const_that_changes_is_a_breakage():
    old = obj({"kind": {"const": "a", "type": "string"}})
    new = obj({"kind": {"const": "b", "type": "string"}})

    assert schema_breakages(old, new) == ["field 'kind' lost the enum value 'a'"]


def test_a_union_that_gains_an_alternative_is_a_breakage():
    old = obj({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}]}})
    new = obj({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]}})

    assert schema_breakages(old, new) == [
        "field 'v' changed type from integer or string to boolean or integer or string"
    ]


def test_refs_are_followed_into_definitions_on_both_sides():
    old = obj({"a": {"$ref": "#/$defs/A"}}, **{"$defs": {"A": obj({"x": {"type": "string"}})}})
    new = obj({"a": {"$ref": "#/$defs/B"}}, **{"$defs": {"B": obj({"x": {"type": "number"}})}})

    assert schema_breakages(old, new) == ["field 'a.x' changed type from string to number"]


def test_a_recursive_schema_is_compared_without_looping():
    tree = obj({"children": {"type": "array", "items": {"$ref": "#"}}}, required=[])

    assert schema_breakages(tree, tree) == []
