"""Crash test: with 200 tasks in flight, SIGKILL the tasks, credits and providers services once each and
restart them. Every task must still end, and every user's credits must match the ledger exactly."""

from __future__ import annotations

import asyncio
import os
import signal

import run_services
from clients import E2E_PORT_BASE
from workload import BONUS, PRICE, assert_ledgers_exact, every_task_ends, new_user, start_task

USERS = 20
TASKS_PER_USER = 10  # the per-user cap on tasks running at once
assert TASKS_PER_USER * PRICE <= BONUS


async def _kill_and_restart(platform: dict, platform_env: dict, name: str) -> None:
    old = platform[name]
    os.kill(old.process.pid, signal.SIGKILL)
    await asyncio.to_thread(old.process.wait, 10)
    restarted = run_services.start_service(name, platform_env, E2E_PORT_BASE, old.log_path.parent)
    platform[name] = restarted
    await asyncio.to_thread(run_services.wait_until_healthy, restarted, "/health")


async def test_every_task_ends_and_the_ledger_balances_after_crashes(
    platform, platform_env, seeded_tools, service_command
) -> None:
    users = await asyncio.gather(*(new_user("crash") for _ in range(USERS)))
    task_ids = await asyncio.gather(*(start_task(u) for u in users for _ in range(TASKS_PER_USER)))
    assert len(set(task_ids)) == USERS * TASKS_PER_USER

    for name in ("tasks", "credits", "providers"):
        await _kill_and_restart(platform, platform_env, name)

    await every_task_ends(users, set(task_ids), timeout=240)
    await assert_ledgers_exact(users)

    verified = service_command("credits", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
