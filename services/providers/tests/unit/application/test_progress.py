"""A step's progress reports are coalesced: at most one published per interval, none after the call ended."""

from __future__ import annotations

import asyncio

from funmagic_kit.testing import wait_until
from funmagic_providers.application.progress import ProgressCoalescer

INTERVAL = 0.05


class Published:
    """The publisher the coalescer is given: records each report with the loop time it was published at."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, str]] = []
        self.times: list[float] = []

    async def __call__(self, percent: int, message: str) -> None:
        self.reports.append((percent, message))
        self.times.append(asyncio.get_running_loop().time())

    def holds(self, count: int):
        async def condition() -> bool:
            return len(self.reports) >= count

        return condition


async def test_a_report_waits_for_the_interval_and_a_newer_one_replaces_it():
    published = Published()
    started = asyncio.get_running_loop().time()
    progress = ProgressCoalescer(published, interval_seconds=INTERVAL)

    await progress.report(10, "Uploading")
    await progress.report(20, "Generating")
    await wait_until(published.holds(1), timeout=5, what="a report published")
    await progress.close()

    assert published.reports == [(20, "Generating")]
    assert published.times[0] - started >= INTERVAL


async def test_reports_are_published_at_least_an_interval_apart_and_in_order():
    published = Published()
    progress = ProgressCoalescer(published, interval_seconds=INTERVAL)

    for percent in (10, 50, 90):
        await progress.report(percent, f"{percent}%")
        await wait_until(published.holds(percent // 40 + 1), timeout=5, what=f"{percent}% published")
    await progress.close()

    assert [percent for percent, _ in published.reports] == [10, 50, 90]
    gaps = [later - earlier for earlier, later in zip(published.times, published.times[1:], strict=False)]
    assert all(gap >= INTERVAL for gap in gaps), gaps


async def test_a_report_still_waiting_when_the_call_ends_is_dropped():
    published = Published()
    progress = ProgressCoalescer(published, interval_seconds=INTERVAL)

    await progress.report(95, "Saving the result")
    await progress.close()
    await progress.report(99, "after the end")
    await asyncio.sleep(INTERVAL * 2)  # past the time the dropped report would have gone out

    assert published.reports == []


async def test_the_end_of_the_call_waits_for_a_report_being_published():
    publishing = asyncio.Event()
    release = asyncio.Event()
    published: list[int] = []

    async def slow_publish(percent: int, message: str) -> None:
        publishing.set()
        await release.wait()
        published.append(percent)

    progress = ProgressCoalescer(slow_publish, interval_seconds=INTERVAL)
    await progress.report(40, "Working")
    await asyncio.wait_for(publishing.wait(), timeout=5)
    closing = asyncio.create_task(progress.close())
    await asyncio.sleep(0)

    assert not closing.done(), "the call's outcome must wait for the report's transaction"
    release.set()
    await asyncio.wait_for(closing, timeout=5)
    assert published == [40]


async def test_an_interval_of_zero_publishes_each_report_before_report_returns():
    published = Published()
    progress = ProgressCoalescer(published, interval_seconds=0)

    await progress.report(10, "a")
    await progress.report(20, "b")

    assert published.reports == [(10, "a"), (20, "b")]
    await progress.close()


async def test_a_report_that_cannot_be_published_is_lost_not_raised():
    outcomes: list[int] = []

    async def flaky_publish(percent: int, message: str) -> None:
        if percent == 10:
            raise ConnectionError("the database is away")
        outcomes.append(percent)

    progress = ProgressCoalescer(flaky_publish, interval_seconds=0)
    await progress.report(10, "lost")
    await progress.report(20, "kept")

    assert outcomes == [20]
