"""The platform comes up as six processes and reports every dependency and service green."""

import json
import urllib.request

import psycopg
import pytest
import run_services

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


def test_every_service_serves_prometheus_metrics(platform) -> None:
    for service in platform.values():
        with urllib.request.urlopen(service.url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        assert "funmagic_http_requests_total" in text, service.name


def test_an_unknown_api_route_is_a_problem_json_404(platform) -> None:
    # Other unknown paths are the web app's deep links: it answers them with its own 404 page.
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(platform["gateway"].url + "/api/no/such/route", timeout=5)

    error = raised.value
    assert error.code == 404
    assert error.headers["Content-Type"].startswith("application/problem+json")
    assert json.loads(error.read())["status"] == 404
