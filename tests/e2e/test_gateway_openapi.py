"""The gateway's OpenAPI document is valid, and a property-based run against it finds no server error."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from clients import GATEWAY_URL, PASSWORD, browser, call, sign_in, sign_up, unique_email
from openapi_spec_validator import validate


async def test_the_openapi_document_is_valid_and_served_with_a_docs_page(platform) -> None:
    async with browser() as client:
        status, document, _ = await call(client, "GET", "/openapi.json")
        assert status == 200
        validate(document)
        assert document["openapi"].startswith("3.1")
        assert "/api/auth/sign-in/email" in document["paths"]
        status, page, response = await call(client, "GET", "/docs")
        assert status == 200
        assert response.content_type == "text/html"
        assert "/openapi.json" in page


def _schemathesis(token: str, report_dir: Path, *path_filter: str) -> tuple[int, ElementTree.Element, str]:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis, "schemathesis is a dev dependency (requirements-dev.txt)"
    command = [
        schemathesis,
        "run",
        f"{GATEWAY_URL}/openapi.json",
        "--checks=not_a_server_error",
        "--phases=examples,coverage,fuzzing",
        "--max-examples=25",
        "--seed=20261125",
        # One worker: hypothesis describing filters from several threads at once trips a CPython 3.11 ast
        # bug ("AST constructor recursion depth mismatch").
        "--workers=1",
        "--max-redirects=0",
        f"--header=Authorization: Bearer {token}",
        *path_filter,
        "--report=junit",
        f"--report-dir={report_dir}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout[-6000:] + result.stderr[-2000:]
    reports = list(report_dir.glob("*.xml"))
    assert len(reports) == 1, output
    return result.returncode, ElementTree.parse(reports[0]).getroot(), output


async def test_schemathesis_finds_no_server_error_as_a_user(platform, tmp_path: Path) -> None:
    async with browser() as client:
        account = await sign_up(client, unique_email("fuzz"), mode="token")
        _, document, _ = await call(client, "GET", "/openapi.json")
    operations = sum(len(item) for item in document["paths"].values())

    # Deleting the fuzzing account or signing it out everywhere would end the run's own session.
    returncode, report, output = await asyncio.to_thread(
        _schemathesis,
        account["access_token"],
        tmp_path,
        "--exclude-path-regex=^/api/auth/(me|sign-out-everywhere)$",
    )

    assert returncode == 0, output
    assert report.get("failures") == "0", output
    assert report.get("errors") == "0", output
    assert int(report.get("tests")) == operations - 3, "every other operation was exercised"


async def test_schemathesis_finds_no_server_error_as_a_super_admin(
    platform, identity_command, tmp_path: Path
) -> None:
    email = unique_email("fuzz-root")
    result = identity_command(
        "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stderr
    async with browser() as client:
        _, signed_in = await sign_in(client, email, mode="token")
        _, document, _ = await call(client, "GET", "/openapi.json")
    admin_user_operations = sum(
        len(item) for path, item in document["paths"].items() if path.startswith("/api/admin/users")
    )

    # The rate-limit settings are left alone: fuzzed limits would throttle the rest of the suite.
    returncode, report, output = await asyncio.to_thread(
        _schemathesis, signed_in["access_token"], tmp_path, "--include-path-regex=^/api/admin/users"
    )

    assert returncode == 0, output
    assert report.get("failures") == "0", output
    assert int(report.get("tests")) == admin_user_operations, output
