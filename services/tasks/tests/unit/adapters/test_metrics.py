"""The tasks service's Prometheus metrics, read back from the registry /metrics serves."""

from prometheus_client import CollectorRegistry

from funmagic_tasks.adapters.metrics import TasksMetrics


def test_an_ended_task_is_timed_by_tool_and_outcome() -> None:
    registry = CollectorRegistry()
    metrics = TasksMetrics(registry)

    metrics.task_ended("background-remove", "completed", 2.0)
    metrics.task_ended("background-remove", "completed", 400.0)
    metrics.task_ended("background-remove", "failed", 1.0)

    def sample(suffix: str, outcome: str, **extra: str) -> float | None:
        labels = {"tool": "background-remove", "outcome": outcome, **extra}
        return registry.get_sample_value(f"funmagic_task_seconds_{suffix}", labels)

    assert sample("count", "completed") == 2
    assert sample("bucket", "completed", le="300.0") == 1  # the latency alert's edge
    assert sample("count", "failed") == 1
    assert sample("count", "cancelled") is None


def test_the_overdue_gauge_holds_the_sweepers_last_count() -> None:
    registry = CollectorRegistry()
    metrics = TasksMetrics(registry)

    assert registry.get_sample_value("funmagic_tasks_overdue") == 0
    metrics.overdue(3)
    metrics.overdue(1)
    assert registry.get_sample_value("funmagic_tasks_overdue") == 1
