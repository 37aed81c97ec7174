"""The tasks service's Prometheus metrics, in the process's registry (the kit's `Metrics.registry`,
served at /metrics): how long tasks take from creation to their end, and the overdue tasks the sweeper
finds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram

from funmagic_tasks.domain.tasks import TaskStatus

__all__ = ["TASK_BUCKETS", "TasksMetrics"]

# From 0.5 s (a local step) to 30 min (a chain of slow 3D steps): the latency alert's threshold (300 s) is
# an edge.
TASK_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class TasksMetrics:
    """`TaskMetrics` for Prometheus."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._seconds = Histogram(
            "funmagic_task_seconds",
            "Time from a task's creation to its end, by tool and outcome (completed, failed, cancelled).",
            ["tool", "outcome"],
            registry=registry,
            buckets=TASK_BUCKETS,
        )
        self._overdue = Gauge(
            "funmagic_tasks_overdue",
            "Tasks past their deadline at the sweeper's last round (it ends them; a lasting value: stuck).",
            registry=registry,
        )

    def task_ended(self, tool: str, outcome: TaskStatus, seconds: float) -> None:
        self._seconds.labels(tool, outcome).observe(seconds)

    def overdue(self, count: int) -> None:
        self._overdue.set(count)
