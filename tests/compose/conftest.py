"""Fixtures for the composed platform: the images `make images` built, run by deploy/compose/all.sh.

`make test-compose` starts the platform before these tests and removes it (with its volumes) after.
The tests reach it only through the loopback ports compose publishes (the web edge and S3) and through
`docker compose` itself (one-shot commands, scaling, stopping containers).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ALL_SH = REPO / "deploy" / "compose" / "all.sh"
# Set by `make test-compose`, which starts the platform first. Without it this folder is not collected:
# a plain `pytest tests` has no composed platform to drive (and must not point the e2e clients at one).
ENV_FILE = Path(os.environ["FUNMAGIC_COMPOSE_ENV"]) if os.environ.get("FUNMAGIC_COMPOSE_ENV") else None
collect_ignore_glob = [] if ENV_FILE else ["*.py"]


def compose_settings(env_file: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs if not name.startswith("#")}


SETTINGS = compose_settings(ENV_FILE) if ENV_FILE else {}
if ENV_FILE:
    # The clients of tests/e2e, pointed at the composed platform's web edge (nginx → gateway).
    os.environ["FUNMAGIC_GATEWAY_URL"] = f"http://127.0.0.1:{SETTINGS['WEB_PUBLISH_PORT']}"
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    sys.path.insert(0, str(REPO / "tests" / "fakes"))
    sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.compose)


Compose = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def s3_origin() -> str:
    """Where browsers reach S3 on the host: presigned URLs and the app's Content-Security-Policy name it."""
    return f"http://127.0.0.1:{SETTINGS['S3_PUBLISH_PORT']}"


@pytest.fixture(scope="session")
def compose() -> Compose:
    """`docker compose` over the platform's files (all.sh); fails the test with the output on an error."""

    def run(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, FUNMAGIC_ENV_FILE=str(ENV_FILE))
        result = subprocess.run(
            [str(ALL_SH), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            pytest.fail(f"docker compose {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="session")
def seeded_tools(compose: Compose) -> None:
    """The seeded tools (local provider), as an operator seeds them: a one-shot run of the tasks image."""
    compose("run", "--rm", "-T", "tasks", "seed")
