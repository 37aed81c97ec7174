"""The Prometheus configuration in deploy/prometheus, checked and unit-tested with promtool.

`promtool check` validates the rules and the scrape configuration; `promtool test rules` runs
alerts.test.yml, where every alert fires on synthetic series above its threshold and stays quiet below it.
promtool comes with Debian's `prometheus` package (`make promtool` installs it); without it these tests
fail rather than skip, so a missing tool never passes for tested rules.

The Grafana dashboard (deploy/grafana) is checked here too: each of its queries reads a metric the rules
know or the services export, so a renamed metric breaks a test, not a panel.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from funmagic_kit.metrics import Metrics
from funmagic_providers.adapters.metrics import ProvidersMetrics
from funmagic_tasks.adapters.metrics import TasksMetrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "funmagic-main.json"

METRIC = re.compile(r"\b(funmagic_[a-z_]+|up)\b(?=\s*[{\[)])")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("promtool")
    if executable is None:
        pytest.fail("promtool is missing: `make promtool` installs it (Debian's prometheus package)")
    return subprocess.run(
        [executable, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_alerting_rules_are_valid() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_scrape_configuration_is_valid_and_loads_the_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


def test_every_alert_fires_above_its_threshold_and_stays_quiet_below_it() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def exported() -> set[str]:
    """The series names the services export (the kit's metrics, and those of tasks and providers), and
    `up`, which Prometheus adds."""
    registry = Metrics("any").registry
    TasksMetrics(registry)
    ProvidersMetrics(registry).watch_circuits(dict)
    names = {"up"}
    series = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    for family in registry.collect():
        suffixes = series.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def alerts() -> list[dict]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_unit_test_and_runbook_style_annotations() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    for rule in alerts():
        name = rule["alert"]
        assert name in fired, f"{name}: no test where it fires"
        assert name in quiet, f"{name}: no test where it stays quiet"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name


def test_the_rules_and_the_dashboard_read_only_metrics_the_services_export() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for row in dashboard["panels"] for p in [row, *row.get("panels", [])]]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    assert queries, "the dashboard has no queries"
    read = {m for text in [*(rule["expr"] for rule in alerts()), *queries] for m in METRIC.findall(text)}
    assert read, "no metric found in the queries"
    assert read <= exported(), read - exported()
    # Every new metric of the alerts' brief is on the dashboard.
    shown = {m for text in queries for m in METRIC.findall(text)}
    for metric in (
        "funmagic_http_request_seconds_bucket",
        "funmagic_task_seconds_bucket",
        "funmagic_provider_call_seconds_bucket",
        "funmagic_provider_circuit_open",
        "funmagic_consumer_lag",
        "funmagic_dead_letters",
    ):
        assert metric in shown, metric
