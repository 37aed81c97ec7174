"""The platform comes up as six processes and reports every dependency and service green."""

import json
import urllib.request

import psycopg
import pytest
import run_services
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from workload import every_task_ends, new_user, start_task

from funmagic_kit.testing import wait_until

SERVICES_WITH_DATABASE = ["identity", "tasks", "credits", "storage", "providers"]


def test_the_gateway_reports_every_dependency_and_service_green(platform) -> None:
    status, body = run_services.get_json(platform["gateway"].url + "/health/all")

    assert status == 200, body
    assert body["status"] == "ok"
    checks = body["checks"]
    assert set(checks) == {"redis", "kafka", "db", *SERVICES_WITH_DATABASE}
    assert checks["db"]["detail"] == dict.fromkeys(SERVICES_WITH_DATABASE, True)
    assert all(check["ok"] for check in checks.values()), checks
    # Each service's own checks, as the gateway saw them.
    assert checks["credits"]["detail"] == {"db": True, "redis": True, "kafka": True}
    assert checks["storage"]["detail"] == {"db": True, "redis": True, "kafka": True, "s3": True}


def test_each_service_answers_its_dependency_routes(platform) -> None:
    for name in SERVICES_WITH_DATABASE:
        for dependency in ("db", "redis", "kafka"):
            status, body = run_services.get_json(f"{platform[name].url}/health/{dependency}")
            assert status == 200, (name, dependency, body)
            assert body[dependency]["ok"] is True


def test_each_service_applied_its_migrations_on_start(platform, platform_env) -> None:
    for name in SERVICES_WITH_DATABASE:
        with psycopg.connect(platform_env[f"{name.upper()}_DATABASE_URL"]) as conn:
            tables = {
                row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            }
            components = {row[0] for row in conn.execute("SELECT component FROM schema_migrations")}
        assert {"outbox", "processed_events", "schema_migrations"} <= tables, name
        assert "kit" in components, name


def scrape(service) -> list[Sample]:
    """Every sample a service's /metrics serves now."""
    with urllib.request.urlopen(service.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    """The values of `name`'s samples that carry `labels` (and any others)."""
    return [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]


async def test_every_service_serves_prometheus_metrics(platform, seeded_tools) -> None:
    # Some traffic first: a user signs up, uploads an image and runs a task on the local provider to its
    # end, which every service takes part in.
    user = await new_user("metrics")
    task_id = await start_task(user)
    (task,) = await every_task_ends([user], {task_id}, timeout=60)
    assert task["status"] == "completed", task

    for service in platform.values():
        samples = scrape(service)
        assert values(samples, "funmagic_http_requests_total"), service.name
        # The latency histogram, by route: some request of this traffic was answered and timed.
        assert sum(values(samples, "funmagic_http_request_seconds_count")) > 0, service.name
        assert values(samples, "funmagic_http_request_seconds_bucket", le="+Inf"), service.name

    async def tasks_saw_it_end() -> bool:
        ended = "funmagic_task_seconds_count"
        return sum(values(scrape(platform["tasks"]), ended, tool=task["tool_slug"], outcome="completed")) >= 1

    await wait_until(tasks_saw_it_end, timeout=10, what="the task's time in funmagic_task_seconds")
    assert values(scrape(platform["tasks"]), "funmagic_tasks_overdue") == [0]

    providers = scrape(platform["providers"])
    assert (
        sum(values(providers, "funmagic_provider_call_seconds_count", provider="local", outcome="succeeded"))
        >= 1
    )
    # The local provider was called on this replica: its breaker is exported, closed (0) or not (1).
    circuit = values(providers, "funmagic_provider_circuit_open", scope="web", provider="local")
    assert len(circuit) == 1
    assert circuit[0] in (0, 1)

    # Lag and dead letters come from the queue monitor's background round (QUEUE_LAG_SAMPLE_SECONDS, 10).
    async def queue_sampled() -> bool:
        sampled = scrape(platform["providers"])
        lag = values(sampled, "funmagic_consumer_lag", group="tasks", topic="providers.events")
        return bool(lag) and bool(values(sampled, "funmagic_dead_letters", topic="tasks.events.dlq"))

    await wait_until(
        queue_sampled, timeout=30, what="funmagic_consumer_lag and funmagic_dead_letters", interval=0.5
    )
    providers = scrape(platform["providers"])
    assert all(lag >= 0 for lag in values(providers, "funmagic_consumer_lag"))
    assert all(count >= 0 for count in values(providers, "funmagic_dead_letters"))


def test_an_unknown_api_route_is_a_problem_json_404(platform) -> None:
    # Other unknown paths are the web app's deep links: it answers them with its own 404 page.
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(platform["gateway"].url + "/api/no/such/route", timeout=5)

    error = raised.value
    assert error.code == 404
    assert error.headers["Content-Type"].startswith("application/problem+json")
    assert json.loads(error.read())["status"] == 404
