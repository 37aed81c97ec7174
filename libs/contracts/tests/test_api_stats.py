"""What a stats window means: whole buckets of a fixed size per window, ending with the current one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from funmagic_contracts.api.stats import BUCKET_SECONDS, WINDOW_SECONDS, StatsQuery, period_of

NOW = datetime(2026, 5, 4, 10, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "bucket", "buckets", "until"),
    [
        ("1h", 60, 60, datetime(2026, 5, 4, 10, 8, tzinfo=UTC)),
        ("24h", 900, 96, datetime(2026, 5, 4, 10, 15, tzinfo=UTC)),
        ("7d", 7200, 84, datetime(2026, 5, 4, 12, 0, tzinfo=UTC)),
        ("30d", 43_200, 60, datetime(2026, 5, 4, 12, 0, tzinfo=UTC)),
    ],
)
def test_a_window_is_whole_buckets_ending_with_the_one_now_is_in(
    window: str, bucket: int, buckets: int, until: datetime
) -> None:
    period = period_of(window, NOW)  # type: ignore[arg-type]

    assert (period.bucket_seconds, period.buckets, period.until) == (bucket, buckets, until)
    assert period.since == until - timedelta(seconds=WINDOW_SECONDS[window])  # type: ignore[index]
    assert period.since <= NOW - timedelta(seconds=WINDOW_SECONDS[window]) + timedelta(seconds=bucket)  # type: ignore[index]
    assert period.since < NOW < period.until


def test_every_window_has_at_most_about_a_hundred_buckets_that_divide_a_day() -> None:
    for window, size in BUCKET_SECONDS.items():
        assert WINDOW_SECONDS[window] % size == 0
        assert WINDOW_SECONDS[window] // size <= 100
        assert 86_400 % size == 0, "aligned on UTC midnight"


def test_a_moment_on_a_bucket_boundary_starts_the_next_bucket() -> None:
    on_the_hour = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)

    assert period_of("1h", on_the_hour).until == datetime(2026, 5, 4, 10, 1, tzinfo=UTC)


def test_the_window_defaults_to_a_day_and_nothing_else_is_a_window() -> None:
    assert StatsQuery().window == "24h"
    assert StatsQuery.model_validate({"window": "7d"}).window == "7d"
    for bad in ("2h", "24H", "", "1d"):
        with pytest.raises(ValidationError):
            StatsQuery.model_validate({"window": bad})
    with pytest.raises(ValidationError):
        StatsQuery.model_validate({"window": "1h", "bucket": "60"})
