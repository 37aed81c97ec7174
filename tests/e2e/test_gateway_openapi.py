"""The gateway's OpenAPI document is valid, and schemathesis finds nothing wrong with the gateway.

Every check schemathesis has (server errors, statuses, content types, headers and bodies the document does
not declare, schema-valid requests rejected, invalid ones accepted, ignored authentication, unsupported
methods, `Allow` headers…) runs against every operation, as an anonymous caller, a user and a super admin.
A schema-valid request may be refused (422) only where the operation's description names the business rule
that refuses it (`Business rule:`); those operations are listed in the test's output.

The super admin's run writes tools, providers, packages, banners… into the platform, so the fuzz tests
run after every other test of the session (tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from clients import GATEWAY_URL, PASSWORD, bearer, browser, call, sign_in, sign_up, unique_email
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


BUSINESS_RULE = "Business rule:"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# Hypothesis' example budget per operation and phase: enough to reach every operation with valid and invalid
# input of each kind, small enough for the three runs to take a few minutes on two cores.
MAX_EXAMPLES = 10


def _excused_operations(document: dict) -> dict[str, str]:
    """operationId → the business rule its description names, for operations that may refuse a schema-valid
    request (422) because of it."""
    excused = {}
    for item in document["paths"].values():
        for operation in item.values():
            description = operation.get("description", "")
            if BUSINESS_RULE in description:
                rule = description.split(BUSINESS_RULE, 1)[1].strip()
                assert rule, f"{operation['operationId']} says {BUSINESS_RULE!r} but names no rule"
                excused[operation["operationId"]] = rule
    return excused


def _config(caller: str, email: str | None, excused: dict[str, str]) -> str:
    """The schemathesis.toml of one run: every check, everywhere, except "valid request rejected" on the
    operations whose description names the business rule behind the refusal."""
    lines = [
        f"hooks = {json.dumps(str(HOOKS))}",
        "workers = 1",
        "max-redirects = 0",
        "[warnings]",
        # 429s would mean an operation was not reached; the e2e platform's limits are raised for the session.
        'fail-on = ["rate_limited"]',
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "[checks]",
        "enabled = true",
    ]
    if email is not None:
        # Signed in through the API and again whenever a token is refused (it lives five minutes, and a
        # fuzzed sign-out-everywhere ends it): the run keeps its caller however long it takes.
        payload = {"email": email, "password": PASSWORD, "mode": "token"}
        lines += [
            "[auth.dynamic.openapi.bearer]",
            'path = "/api/auth/sign-in/email"',
            "payload = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in payload.items()) + " }",
            'extract_selector = "/access_token"',
            "retry_on = [401]",
        ]
    if excused:
        lines += [
            "[[operations]]",
            f"include-operation-id = {json.dumps(sorted(excused))}",
            "checks.positive_data_acceptance.enabled = false",
        ]
    return "\n".join(lines) + "\n"


def _schemathesis(
    config: str, report_dir: Path, rate_limits: dict | None, redis_url: str
) -> tuple[int, ElementTree.Element, str]:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis, "schemathesis is a dev dependency (requirements-dev.txt)"
    config_file = report_dir / "schemathesis.toml"
    config_file.write_text(config)
    command = [
        schemathesis,
        f"--config-file={config_file}",
        "run",
        f"{GATEWAY_URL}/openapi.json",
        "--seed=20261125",
        "--report=junit",
        f"--report-dir={report_dir}",
    ]
    env = {**os.environ, "FUNMAGIC_FUZZ_GATEWAY_URL": GATEWAY_URL, "FUNMAGIC_FUZZ_REDIS_URL": redis_url}
    if rate_limits is not None:
        env["FUNMAGIC_FUZZ_RATE_LIMITS"] = json.dumps(rate_limits)
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, env=env)
    (report_dir / "schemathesis.log").write_text(result.stdout + result.stderr)
    output = result.stdout[-20000:] + result.stderr[-3000:]
    reports = list(report_dir.glob("*.xml"))
    assert len(reports) == 1, output
    return result.returncode, ElementTree.parse(reports[0]).getroot(), output


@pytest.mark.parametrize("caller", ["anonymous", "user", "super_admin"])
async def test_schemathesis_finds_nothing_wrong(
    platform, identity_command, e2e_redis_url: str, caller: str, tmp_path: Path
) -> None:
    email = None if caller == "anonymous" else unique_email(f"fuzz-{caller.replace('_', '-')}")
    rate_limits = None
    async with browser() as client:
        _, document, _ = await call(client, "GET", "/openapi.json")
        if caller == "user":
            await sign_up(client, email, mode="token")
        if caller == "super_admin":
            result = identity_command(
                "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
            )
            assert result.returncode == 0, result.stderr
            _, signed_in = await sign_in(client, email, mode="token")
            # The session's relaxed limits, put back after each fuzzed change (schemathesis_hooks.py).
            status, rate_limits, _ = await call(
                client, "GET", "/api/admin/settings/rate-limit", headers=bearer(signed_in["access_token"])
            )
            assert status == 200, rate_limits
    operations = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    excused = _excused_operations(document)
    # Named in the output, for the notes that say which refusals are business rules.
    print(f"{caller}: 'valid request rejected' is excused on {len(excused)} operations:")
    for operation_id, rule in sorted(excused.items()):
        print(f"  {operation_id}: {rule}")

    returncode, report, output = await asyncio.to_thread(
        _schemathesis, _config(caller, email, excused), tmp_path, rate_limits, e2e_redis_url
    )

    assert report.get("failures") == "0", output
    assert report.get("errors") == "0", output
    tested = {case.get("name") for case in report.iter("testcase")}
    assert tested - {"Stateful tests"} == operations, f"every operation was tested\n{output}"
    assert returncode == 0, output
