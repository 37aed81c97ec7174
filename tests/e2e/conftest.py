"""E2E fixtures: the six services as separate processes on their own ports, driven from outside."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "deploy" / "local"))

import run_services  # noqa: E402

E2E_PORT_BASE = int(os.environ.get("FUNMAGIC_E2E_PORT_BASE", "18000"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    needed = ["KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "POSTGRES_URL", "S3_ENDPOINT"]
    missing = [v for v in needed if not os.environ.get(v)]
    if missing:
        pytest.fail(f"the local stack is not configured ({', '.join(missing)} unset): run `make test`")
    return dict(os.environ)


@pytest.fixture(scope="session")
def platform(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """All six services, started once for the e2e session and stopped with SIGTERM at its end."""
    run_dir = tmp_path_factory.mktemp("services")
    services = run_services.start_all(stack_env, E2E_PORT_BASE, run_dir)
    by_name = {s.name: s for s in services}
    try:
        yield by_name
    finally:
        run_services.stop_all(services)
