"""The admin overview's window: what `?window=` means for every stats route (tasks', credits', the gateway's).

    StatsQuery   GET /v1/admin/stats/tasks, GET /v1/admin/stats/credits (query), and the gateway's
                 /api/admin/stats/overview, /api/admin/stats/tasks, /api/admin/stats/credits

A window is cut into buckets of a fixed size (`BUCKET_SECONDS`: at most ~100 points per series), aligned on
the Unix epoch (so on UTC midnight: every size divides a day). `period_of` gives the one period every
service computes for a window at a moment: it ends at the end of the bucket `now` is in, and starts one
window length before that, so it holds exactly `window / bucket` whole buckets, the current one included
(which ends in the future). Figures count what happened at `since <= t < until`. Pure: stdlib and pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import Field

from funmagic_contracts.api.base import Request

__all__ = ["BUCKET_SECONDS", "WINDOW_SECONDS", "StatsPeriod", "StatsQuery", "StatsWindow", "period_of"]

StatsWindow = Literal["1h", "24h", "7d", "30d"]

WINDOW_SECONDS: dict[StatsWindow, int] = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400}
# 1 min, 15 min, 2 h, 12 h: 60, 96, 84 and 60 buckets.
BUCKET_SECONDS: dict[StatsWindow, int] = {"1h": 60, "24h": 900, "7d": 7200, "30d": 43_200}

WINDOW_DOC = (
    "The period the figures cover: the last hour, day, 7 or 30 days, in buckets of 1 min, 15 min, 2 h or "
    "12 h (aligned on UTC; the last bucket is the current one)."
)


class StatsQuery(Request):
    window: StatsWindow = Field("24h", description=WINDOW_DOC)


@dataclass(frozen=True)
class StatsPeriod:
    window: StatsWindow
    since: datetime
    until: datetime
    bucket: timedelta

    @property
    def bucket_seconds(self) -> int:
        return int(self.bucket.total_seconds())

    @property
    def buckets(self) -> int:
        return WINDOW_SECONDS[self.window] // self.bucket_seconds


def period_of(window: StatsWindow, now: datetime) -> StatsPeriod:
    """The period `window` covers at `now` (tz-aware): whole buckets, ending with the one `now` is in."""
    bucket = BUCKET_SECONDS[window]
    epoch_seconds = int(now.timestamp() // bucket) * bucket + bucket
    until = datetime.fromtimestamp(epoch_seconds, UTC)
    return StatsPeriod(
        window=window,
        since=until - timedelta(seconds=WINDOW_SECONDS[window]),
        until=until,
        bucket=timedelta(seconds=bucket),
    )
