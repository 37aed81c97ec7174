"""When a sweeper's round goes on past an item it could not end, and when it stops."""

from funmagic_tasks.application.sweeping import MAX_FAILURES_IN_A_ROW, sweep


def ending(failing: set[str], tried: list[str]):
    async def end(item_id: str) -> bool:
        tried.append(item_id)
        if item_id in failing:
            raise RuntimeError(f"{item_id} cannot be ended")
        return True

    return end


async def test_one_item_that_fails_is_passed_over() -> None:
    tried: list[str] = []

    ended = await sweep(["a", "b", "c", "d"], ending({"a", "c"}, tried), what="task")

    assert (ended, tried) == (2, ["a", "b", "c", "d"])


async def test_failures_in_a_row_end_the_round_as_a_dependency_down_would() -> None:
    items = [f"item-{n}" for n in range(MAX_FAILURES_IN_A_ROW + 2)]
    tried: list[str] = []

    ended = await sweep(items, ending(set(items), tried), what="task")

    assert (ended, tried) == (0, items[:MAX_FAILURES_IN_A_ROW])
