"""A sweeper's round over the items it ends one transaction each (overdue tasks, overdue studio replies)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from funmagic_kit.logs import get_logger

__all__ = ["MAX_FAILURES_IN_A_ROW", "sweep"]

log = get_logger(__name__)

# That many items failing one after the other is a dependency down, not that many items' own bugs.
MAX_FAILURES_IN_A_ROW = 3


async def sweep(item_ids: Sequence[str], end: Callable[[str], Awaitable[bool]], *, what: str) -> int:
    """`end(id)` for each item in turn (True when it ended the item); how many it ended.

    One item `end` fails on (a bug of its own) is logged and passed over: it comes first again next round
    (oldest first), and stopping at it would leave every item behind it waiting forever. Several failures in
    a row end the round: a dependency is down, and the next round tries them all again."""
    ended = failures_in_a_row = 0
    for item_id in item_ids:
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            break
        try:
            ended += await end(item_id)
        except Exception:
            log.exception(f"an overdue {what} could not be ended", extra={"id": item_id})
            failures_in_a_row += 1
            continue
        failures_in_a_row = 0
    return ended
