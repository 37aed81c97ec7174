"""The apps' API types are generated from the gateway's OpenAPI document (`make web-types`); committed
types that no longer match the document fail here, so a route change cannot leave the apps typed against
yesterday's API."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APPS = [REPO / "apps" / "web"]


def generate_types(app: Path, out: Path) -> str:
    document = out.with_suffix(".json")
    subprocess.run(
        [sys.executable, str(REPO / "deploy" / "local" / "openapi_document.py"), str(document)],
        check=True,
        cwd=REPO,
    )
    npx = shutil.which("npx")
    if npx is None:
        pytest.fail("npx is not installed: Node.js 20+ is required for the apps (make setup)")
    subprocess.run(
        [npx, "openapi-typescript", str(document), "--default-non-nullable", "false", "-o", str(out)],
        check=True,
        cwd=app,
        capture_output=True,
    )
    return out.read_text()


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.name)
def test_the_committed_api_types_match_the_gateways_document(app: Path, tmp_path: Path) -> None:
    committed = (app / "src" / "api" / "schema.d.ts").read_text()

    regenerated = generate_types(app, tmp_path / "schema.d.ts")

    assert committed == regenerated, f"{app.name}: API types are stale; run `make web-types` and commit them"
