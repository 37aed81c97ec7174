"""The clocks: the system one tells tz-aware UTC; the manual one stands still until moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from funmagic_kit.clock import ManualClock, SystemClock


def test_the_system_clock_tells_aware_utc_time() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= datetime.now(UTC)


def test_a_manual_clock_moves_only_when_told() -> None:
    start = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    clock = ManualClock(start)

    assert clock.now() == start
    assert clock.now() == start
    assert clock.advance(90) == start + timedelta(seconds=90)
    assert clock.advance(minutes=1) == start + timedelta(seconds=150)
    clock.set(start)
    assert clock.now() == start
