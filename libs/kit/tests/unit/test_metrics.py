"""The per-request metrics: counted by method, route and status, whatever the memo of their children holds."""

from __future__ import annotations

import pytest

from funmagic_kit.metrics import Metrics


def requests_counted(metrics: Metrics, method: str, route: str, status: str) -> float | None:
    labels = {"method": method, "route": route, "status": status}
    return metrics.registry.get_sample_value("funmagic_http_requests_total", labels)


def test_each_request_is_counted_and_timed_by_method_route_and_status() -> None:
    metrics = Metrics("tests")

    metrics.count_request("GET", "/items/{item_id}", 200, 0.002)
    metrics.count_request("GET", "/items/{item_id}", 200, 0.004)
    metrics.count_request("GET", "/items/{item_id}", 404, 0.001)

    assert requests_counted(metrics, "GET", "/items/{item_id}", "200") == 2
    assert requests_counted(metrics, "GET", "/items/{item_id}", "404") == 1
    seconds = {"method": "GET", "route": "/items/{item_id}"}
    assert metrics.registry.get_sample_value("funmagic_http_request_seconds_count", seconds) == 3
    total = metrics.registry.get_sample_value("funmagic_http_request_seconds_sum", seconds)
    assert total == pytest.approx(0.007)


def test_counts_go_on_when_many_client_chosen_methods_fill_the_memo() -> None:
    metrics = Metrics("tests")
    metrics.count_request("GET", "/x", 200, 0.001)

    for n in range(2000):
        metrics.count_request(f"M{n}", "unmatched", 405, 0.001)
    metrics.count_request("GET", "/x", 200, 0.001)

    assert requests_counted(metrics, "GET", "/x", "200") == 2
    assert requests_counted(metrics, "M1999", "unmatched", "405") == 1
