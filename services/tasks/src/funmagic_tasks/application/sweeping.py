"""A sweeper's round over the items it ends one transaction each (overdue tasks, overdue studio replies)."""

from __future__ import annotations

__all__ = ["MAX_FAILURES_IN_A_ROW", "SweepRound"]

# That many items failing one after the other is a dependency down, not that many items' own bugs.
MAX_FAILURES_IN_A_ROW = 3


class SweepRound:
    """Tells the round when to stop. One item that cannot be ended (a bug of its own) is passed over: it
    comes first again next round (oldest first), and stopping at it would leave every item behind it
    waiting forever. Several failures in a row end the round: the next one tries them all again."""

    def __init__(self) -> None:
        self._in_a_row = 0

    def failed(self) -> None:
        self._in_a_row += 1

    def succeeded(self) -> None:
        self._in_a_row = 0

    @property
    def over(self) -> bool:
        return self._in_a_row >= MAX_FAILURES_IN_A_ROW
