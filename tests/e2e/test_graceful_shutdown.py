"""Every service stops cleanly on SIGTERM: exit code 0, after saying it stopped."""

import json

import run_services


def test_each_service_stops_cleanly_on_sigterm(stack_env, tmp_path) -> None:
    services = run_services.start_all(stack_env, run_services_port_base(), tmp_path)

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
