"""Every service stops cleanly on SIGTERM: exit code 0, after saying it stopped."""

import json

import run_services
from clients import E2E_PORT_BASE


def test_each_service_stops_cleanly_on_sigterm(stack_env, tmp_path) -> None:
    # Storage sets the buckets' CORS rules at start: keep the session platform's origin in them, or the
    # browser tests that run later could not upload to the shared buckets.
    session_platform = run_services.service_environment("storage", stack_env, E2E_PORT_BASE)
    env = {**stack_env, "S3_CORS_ORIGINS": session_platform["S3_CORS_ORIGINS"]}
    services = run_services.start_all(env, run_services_port_base(), tmp_path)

    exit_codes = run_services.stop_all(services)

    assert exit_codes == {name: 0 for name in run_services.SERVICES}
    for service in services:
        messages = [
            json.loads(line)["message"]
            for line in service.log_path.read_text().splitlines()
            if line.startswith("{")
        ]
        assert "shutting down" in messages, service.name
        assert messages[-1] == "stopped", (service.name, messages[-5:])


def run_services_port_base() -> int:
    # Away from the session-wide platform fixture's ports, so both can run in one session.
    return 18100
