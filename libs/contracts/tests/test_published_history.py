"""A published schema never changes incompatibly, not even through a forced re-export.

The committed `schemas/` folder is compared with every earlier committed version of each file in git
history: a file may gain optional fields over time, but nothing a consumer relied on may break.
"""

import json
import subprocess
from pathlib import Path

from funmagic_contracts.compat import load_schema_dir, schema_breakages

CONTRACTS_ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = CONTRACTS_ROOT / "schemas"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout


REPO_ROOT = Path(
    subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=CONTRACTS_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
)


def published_versions(relative: str) -> list[tuple[str, dict]]:
    """Every committed version of one schema file, oldest first."""
    path = (SCHEMAS / relative).relative_to(REPO_ROOT).as_posix()
    commits = git("log", "--format=%H", "--reverse", "--", path).split()
    return [(commit, json.loads(git("show", f"{commit}:{path}"))) for commit in commits]


def test_the_schemas_folder_is_tracked_by_git() -> None:
    tracked = git("ls-files", str(SCHEMAS)).split()

    assert len(tracked) == len(load_schema_dir(SCHEMAS))


def test_every_schema_is_compatible_with_each_of_its_published_versions() -> None:
    problems, compared = [], 0
    for relative, current in load_schema_dir(SCHEMAS).items():
        for commit, published in published_versions(relative):  # none yet for a file not committed
            compared += 1
            problems += [f"{relative} vs {commit[:10]}: {b}" for b in schema_breakages(published, current)]

    assert compared >= len(git("ls-files", "--", str(SCHEMAS)).split()), "every tracked schema was compared"
    assert problems == []


def test_the_history_check_sees_an_incompatible_edit(tmp_path: Path) -> None:
    relative = "tasks.events/TaskRequested.v1.json"
    (_, first_published), *_ = published_versions(relative)
    edited = json.loads((SCHEMAS / relative).read_text(encoding="utf-8"))
    edited["required"] = [*edited.get("required", []), "idempotency_key"]

    assert any("idempotency_key" in b for b in schema_breakages(first_published, edited))
