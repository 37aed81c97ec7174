"""The admin overview's figures of tasks, as the store counts them (in SQL) and the rule that reads them.

Every task counts, child tasks and deleted ones too: they happened. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from funmagic_tasks.domain.tasks import TaskStatus

__all__ = ["StatsBucket", "TaskFigures", "success_rate"]


@dataclass(frozen=True)
class StatsBucket:
    at: datetime
    created: int
    completed: int
    failed: int


@dataclass(frozen=True)
class TaskFigures:
    created: int  # tasks created in the period
    by_status: Mapping[TaskStatus, int]  # those tasks by their status now
    completed: int  # tasks that completed in the period (whenever created)
    failed: int  # tasks that failed in the period (whenever created)
    active_users: int  # distinct users who created a task in the period
    series: tuple[StatsBucket, ...]  # every bucket of the period, oldest first, empty ones too


def success_rate(completed: int, failed: int) -> float | None:
    """The share of ended tasks that completed (cancelled ones are neither); None when none ended."""
    ended = completed + failed
    return completed / ended if ended else None
