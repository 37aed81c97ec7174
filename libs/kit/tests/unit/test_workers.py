"""A periodic background worker keeps stepping through failures and stops at once when told."""

from __future__ import annotations

import asyncio

from funmagic_kit.workers import Periodic


async def test_a_failing_step_is_retried_on_the_next_tick() -> None:
    calls: list[int] = []
    three_steps = asyncio.Event()

    async def step() -> None:
        calls.append(len(calls))
        if len(calls) == 3:
            three_steps.set()
        if len(calls) == 1:
            raise RuntimeError("the first step fails")

    worker = Periodic("test", step, interval_seconds=0.01)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(three_steps.wait(), timeout=5)
    worker.stop()
    await asyncio.wait_for(task, timeout=1)

    assert calls[:3] == [0, 1, 2]


async def test_stop_ends_a_long_wait_without_another_step() -> None:
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)

    worker = Periodic("test", step, interval_seconds=3600)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0)
    worker.stop()
    await asyncio.wait_for(task, timeout=1)

    assert calls == []
