"""The rule the admin overview reads task outcomes with."""

from __future__ import annotations

from funmagic_tasks.domain.stats import success_rate


def test_the_success_rate_is_the_completed_share_of_ended_tasks() -> None:
    assert success_rate(3, 1) == 0.75
    assert success_rate(0, 4) == 0.0
    assert success_rate(2, 0) == 1.0


def test_without_an_ended_task_there_is_no_success_rate() -> None:
    assert success_rate(0, 0) is None
