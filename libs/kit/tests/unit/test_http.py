"""problem_middleware over a real server: problem+json errors, kept headers, request ids, access log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.exceptions import ConnectionError as RedisConnectionError

from funmagic_kit.http import HttpProblem, metrics_route, problem, problem_middleware
from funmagic_kit.logs import JsonFormatter
from funmagic_kit.metrics import Metrics


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def throttled(request: web.Request) -> web.Response:
    raise web.HTTPTooManyRequests(headers={"Retry-After": "3"})


async def gone(request: web.Request) -> web.Response:
    raise web.HTTPGone(text="this link was used already")


async def conflict(request: web.Request) -> web.Response:
    raise HttpProblem(409, "Conflict", "already exists", headers={"ETag": '"v2"'}, current_version=2)


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def database_gone(request: web.Request) -> web.Response:
    # What a raw query on a pooled connection raises once Postgres was killed (no adapter translated it).
    raise psycopg.OperationalError('connection to server at "10.0.0.7", port 5432 failed: Connection refused')


async def busy(request: web.Request) -> web.Response:
    return problem(503, "Service Unavailable", "cannot check the session right now; retry")


async def redis_gone(request: web.Request) -> web.Response:
    raise RedisConnectionError("Error 104 while writing to socket. Connection reset by peer.")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics("test")


@pytest.fixture
async def client(metrics: Metrics) -> AsyncIterator[aiohttp.ClientSession]:
    app = web.Application(middlewares=[problem_middleware(metrics)])
    app.add_routes(
        [
            web.get("/x", ok),
            web.get("/items/{item_id}", ok),
            web.get("/throttled", throttled),
            web.get("/gone", gone),
            web.get("/conflict", conflict),
            web.get("/moved", moved),
            web.get("/broken", broken),
            web.get("/database-gone", database_gone),
            web.get("/redis-gone", redis_gone),
            web.get("/busy", busy),
            metrics_route(metrics),
        ]
    )
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
        yield session
    await server.close()


async def problem_of(response: aiohttp.ClientResponse, status: int) -> dict:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert body["status"] == status
    return body


async def test_a_raised_too_many_requests_keeps_its_retry_after_header(client: aiohttp.ClientSession) -> None:
    async with client.get("/throttled") as response:
        body = await problem_of(response, 429)
        assert response.headers["Retry-After"] == "3"
        assert response.headers["X-Request-Id"]
    assert body["title"] == "Too Many Requests"


async def test_a_method_not_allowed_keeps_its_allow_header(client: aiohttp.ClientSession) -> None:
    async with client.post("/x") as response:
        await problem_of(response, 405)
        assert "GET" in response.headers["Allow"]


async def test_an_http_exception_with_its_own_text_becomes_the_detail(client: aiohttp.ClientSession) -> None:
    async with client.get("/gone") as response:
        body = await problem_of(response, 410)
    assert body == {
        "type": "about:blank",
        "title": "Gone",
        "status": 410,
        "detail": "this link was used already",
    }


async def test_an_http_problem_keeps_its_headers_and_extensions(client: aiohttp.ClientSession) -> None:
    async with client.get("/conflict") as response:
        body = await problem_of(response, 409)
        assert response.headers["ETag"] == '"v2"'
    assert body == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "already exists",
        "current_version": 2,
    }


async def test_a_redirect_passes_through_with_its_location(client: aiohttp.ClientSession) -> None:
    async with client.get("/moved", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/elsewhere"


async def test_a_redirect_is_answered_without_relying_on_a_deprecated_aiohttp_behaviour(
    client: aiohttp.ClientSession, recwarn: pytest.WarningsRecorder
) -> None:
    async with client.get("/moved", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["X-Request-Id"]

    deprecated = [str(w.message) for w in recwarn if issubclass(w.category, DeprecationWarning)]
    assert not [m for m in deprecated if "HTTPException" in m]


async def test_an_unknown_path_is_a_404_problem(client: aiohttp.ClientSession) -> None:
    async with client.get("/nowhere") as response:
        await problem_of(response, 404)


async def test_an_unhandled_error_is_a_500_problem_with_the_request_id_and_no_internals(
    client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="funmagic_kit.http"):
        async with client.get("/broken", headers={"X-Request-Id": "req-42"}) as response:
            text = await response.text()
            body = await problem_of(response, 500)
            assert response.headers["X-Request-Id"] == "req-42"

    assert body["request_id"] == "req-42"
    assert "secret internals" not in text
    assert any(r.exc_info and "secret internals" in str(r.exc_info[1]) for r in caplog.records)


async def test_a_request_id_is_made_up_when_none_is_sent_and_echoed_when_one_is(
    client: aiohttp.ClientSession,
) -> None:
    async with client.get("/x") as first, client.get("/x") as second:
        assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    async with client.get("/x", headers={"X-Request-Id": "abc-123"}) as echoed:
        assert echoed.headers["X-Request-Id"] == "abc-123"


async def test_requests_are_counted_by_route_template_and_status(
    client: aiohttp.ClientSession, metrics: Metrics
) -> None:
    for item_id in ("a", "b"):
        async with client.get(f"/items/{item_id}") as response:
            assert response.status == 200
    async with client.get("/throttled") as response:
        assert response.status == 429

    def count(route: str, status: str) -> float | None:
        labels = {"method": "GET", "route": route, "status": status}
        return metrics.registry.get_sample_value("funmagic_http_requests_total", labels)

    assert count("/items/{item_id}", "200") == 2
    assert count("/throttled", "429") == 1


async def test_request_durations_are_observed_by_route_template_whatever_the_answer(
    client: aiohttp.ClientSession, metrics: Metrics
) -> None:
    for path in ("/items/a", "/items/b", "/broken", "/nowhere"):
        async with client.get(path) as response:
            assert response.status in (200, 404, 500)

    def sample(name: str, route: str, **extra: str) -> float | None:
        labels = {"method": "GET", "route": route, **extra}
        return metrics.registry.get_sample_value(f"funmagic_http_request_seconds_{name}", labels)

    assert sample("count", "/items/{item_id}") == 2
    assert sample("bucket", "/items/{item_id}", le="+Inf") == 2
    assert sample("count", "/broken") == 1  # a 500 is answered, and timed, too
    assert sample("count", "unmatched") == 1
    total = sample("sum", "/items/{item_id}")
    assert total is not None
    assert 0 < total < 10
    assert "funmagic_http_request_seconds_bucket" in metrics.exposition().decode()


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "funmagic.access"]


async def test_the_access_log_line_has_method_path_and_status_but_not_the_query_string(
    client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="funmagic.access"):
        async with client.get("/x?code=secret-code&state=s1") as response:
            assert response.status == 200

    (record,) = access_records(caplog)
    assert (record.method, record.path, record.route, record.status) == ("GET", "/x", "/x", 200)
    assert isinstance(record.duration_ms, float)
    line = JsonFormatter("test").format(record)
    assert json.loads(line)["path"] == "/x"
    assert "secret-code" not in line
    assert "code=" not in line


async def test_error_responses_are_access_logged_without_the_query_string_too(
    client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="funmagic.access"):
        async with client.get("/throttled?code=secret-code") as response:
            assert response.status == 429
        async with client.get("/nowhere?code=secret-code") as response:
            assert response.status == 404

    records = access_records(caplog)
    assert [(r.path, r.route, r.status) for r in records] == [
        ("/throttled", "/throttled", 429),
        ("/nowhere", "unmatched", 404),
    ]
    for record in records:
        assert "secret-code" not in JsonFormatter("test").format(record)


@asynccontextmanager
async def sampled_server(
    metrics: Metrics, draws: list[float], rate: float, slow_seconds: float = 1.0
) -> AsyncIterator[aiohttp.ClientSession]:
    """A server whose access log keeps `rate` of the quiet requests; the sampler's draws come from `draws`."""
    middleware = problem_middleware(
        metrics, access_log_sample=rate, slow_request_seconds=slow_seconds, sample=lambda: draws.pop(0)
    )
    app = web.Application(middlewares=[middleware])
    app.add_routes([web.get("/x", ok), web.get("/throttled", throttled), metrics_route(metrics)])
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
            yield session
    finally:
        await server.close()


async def test_quiet_requests_are_sampled_into_the_access_log_and_errors_always_written(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    # Kept, dropped, kept, dropped at a rate of 0.1; the last draw is the scrape of /metrics (dropped).
    draws = [0.05, 0.5, 0.09, 0.99, 0.7]
    async with sampled_server(metrics, draws, rate=0.1) as client:
        with caplog.at_level(logging.INFO, logger="funmagic.access"):
            for path in ("/x", "/x", "/throttled", "/x", "/x"):
                async with client.get(path):
                    pass
        async with client.get("/metrics") as response:
            exposition = await response.text()

    records = access_records(caplog)
    assert [(r.path, r.status, getattr(r, "sample_rate", None)) for r in records] == [
        ("/x", 200, 0.1),
        ("/throttled", 429, None),
        ("/x", 200, 0.1),
    ]
    assert draws == [], "errors never draw from the sampler"
    assert 'funmagic_http_requests_total{method="GET",route="/x",status="200"} 4.0' in exposition


async def test_slow_requests_are_always_access_logged(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    async with sampled_server(metrics, [], rate=0.0, slow_seconds=0.0) as client:
        with caplog.at_level(logging.INFO, logger="funmagic.access"):
            async with client.get("/x") as response:
                assert response.status == 200

    assert [(r.path, r.status) for r in access_records(caplog)] == [("/x", 200)]


# --- /metrics behind METRICS_AUTH_TOKEN --------------------------------------------------------------

METRICS_TOKEN = "a-metrics-scraper-token-0123"


@pytest.fixture
async def guarded_metrics(metrics: Metrics) -> AsyncIterator[aiohttp.ClientSession]:
    app = web.Application(middlewares=[problem_middleware(metrics)])
    app.add_routes([metrics_route(metrics, token=METRICS_TOKEN)])
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
        yield session
    await server.close()


async def test_metrics_are_open_without_a_token(client: aiohttp.ClientSession) -> None:
    async with client.get("/metrics") as response:
        assert response.status == 200
        assert "funmagic_http_requests" in await response.text()


async def test_metrics_with_a_token_answer_the_scraper_that_sends_it(
    guarded_metrics: aiohttp.ClientSession,
) -> None:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    async with guarded_metrics.get("/metrics", headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "funmagic_http_requests" in await response.text()


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN}x"],
)
async def test_metrics_with_a_token_refuse_anyone_else_with_a_401_problem(
    guarded_metrics: aiohttp.ClientSession, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with guarded_metrics.get("/metrics", headers=headers) as response:
        body = await problem_of(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        text = json.dumps(body)
    assert "funmagic_http_requests" not in text
    assert METRICS_TOKEN not in text


@pytest.mark.parametrize("path", ["/database-gone", "/redis-gone"])
async def test_a_dependency_lost_outside_any_adapter_is_a_503_with_retry_after_and_no_internals(
    client: aiohttp.ClientSession, path: str
) -> None:
    async with client.get(path) as response:
        body = await problem_of(response, 503)
        assert response.headers["Retry-After"] == "2"
    assert body["code"] == "unavailable"
    assert "10.0.0.7" not in json.dumps(body)
    assert "socket" not in json.dumps(body)


async def test_a_503_answered_without_retry_after_gets_one(client: aiohttp.ClientSession) -> None:
    async with client.get("/busy") as response:
        await problem_of(response, 503)
        assert response.headers["Retry-After"] == "2"
