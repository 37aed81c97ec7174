"""When a sweeper's round goes on past an item it could not end, and when it stops."""

from funmagic_tasks.application.sweeping import MAX_FAILURES_IN_A_ROW, SweepRound


def test_one_item_that_fails_is_passed_over() -> None:
    sweep = SweepRound()

    sweep.failed()
    sweep.succeeded()
    sweep.failed()

    assert not sweep.over


def test_failures_in_a_row_end_the_round_as_a_dependency_down_would() -> None:
    sweep = SweepRound()

    for _ in range(MAX_FAILURES_IN_A_ROW - 1):
        sweep.failed()
    assert not sweep.over
    sweep.failed()

    assert sweep.over
