import json
import shutil
from pathlib import Path

import pytest

from funmagic_contracts.export import default_root, main, render_files

CONTRACTS_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_SCHEMAS = CONTRACTS_ROOT / "schemas"
COMMITTED_ASYNCAPI = CONTRACTS_ROOT / "asyncapi.json"

TASK_REQUESTED = "schemas/tasks.events/TaskRequested.v1.json"


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A temporary copy of the committed export."""
    shutil.copytree(COMMITTED_SCHEMAS, tmp_path / "schemas")
    shutil.copy(COMMITTED_ASYNCAPI, tmp_path / "asyncapi.json")
    return tmp_path


def test_the_default_output_folder_is_the_contracts_project_whatever_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert default_root() == CONTRACTS_ROOT


def test_check_mode_passes_on_the_committed_files(capsys):
    assert main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_check_mode_fails_when_a_committed_file_differs_from_the_models(published, capsys):
    path = published / TASK_REQUESTED
    path.write_text(path.read_text().replace('"Tool Slug"', '"Tool slug"'))

    assert main(["--check", "--out", str(published)]) == 1
    assert f"{TASK_REQUESTED}: differs from the models" in capsys.readouterr().err


def test_check_mode_fails_when_a_file_is_missing_or_has_no_model(published, capsys):
    (published / "asyncapi.json").unlink()
    (published / "schemas/tasks.events/TaskTeleported.v1.json").write_text("{}")

    assert main(["--check", "--out", str(published)]) == 1
    err = capsys.readouterr().err
    assert "asyncapi.json: missing" in err
    assert "TaskTeleported.v1.json: committed but no model exports it" in err


def test_export_writes_every_file_into_an_empty_folder_and_then_checks_clean(tmp_path):
    assert main(["--out", str(tmp_path)]) == 0

    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")} == set(render_files())
    assert main(["--check", "--out", str(tmp_path)]) == 0


def test_export_refuses_to_replace_a_published_schema_with_an_incompatible_one(published, capsys):
    path = published / TASK_REQUESTED
    schema = json.loads(path.read_text())
    schema["properties"]["legacy_code"] = {"type": "string"}
    schema["required"].append("legacy_code")
    path.write_text(json.dumps(schema))
    before = path.read_text()

    assert main(["--out", str(published)]) == 1
    assert "field 'legacy_code' was removed" in capsys.readouterr().err
    assert path.read_text() == before

    assert main(["--out", str(published), "--force"]) == 0
    assert "legacy_code" not in path.read_text()


def test_export_replaces_a_published_schema_with_a_compatible_one(published):
    path = published / TASK_REQUESTED
    schema = json.loads(path.read_text())
    schema["properties"]["tool_slug"]["description"] = "an older description"
    path.write_text(json.dumps(schema))

    assert main(["--out", str(published)]) == 0
    assert main(["--check", "--out", str(published)]) == 0
