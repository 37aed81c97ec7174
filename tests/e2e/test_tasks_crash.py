"""Crash test: with 200 tasks in flight, SIGKILL the tasks, credits and providers services once each and
restart them. Every task must still end, and every user's credits must match the ledger exactly."""

from __future__ import annotations

import asyncio
import os
import signal

import run_services
from clients import E2E_PORT_BASE, bearer, browser, call, png, sign_up, unique_email, upload

from funmagic_kit.testing import wait_until

USERS = 20
TASKS_PER_USER = 10  # the per-user cap on tasks running at once
PRICE = 5  # background-remove
TERMINAL = {"completed", "failed", "cancelled"}


async def _user() -> dict:
    async with browser() as client:
        account = await sign_up(client, unique_email("crash"), mode="token")
    user = {"id": account["user"]["id"], "token": account["access_token"]}

    async def bonus_granted() -> bool:
        return (await _balance(user))["balance"] >= TASKS_PER_USER * PRICE

    await wait_until(bonus_granted, timeout=30, what=f"the sign-up bonus of {user['id']}", interval=0.1)
    user["image"] = await upload(user["token"], png(32, 24))
    return user


async def _balance(user: dict) -> dict:
    async with browser() as client:
        status, body, _ = await call(client, "GET", "/api/credits/balance", headers=bearer(user["token"]))
    assert status == 200, body
    return body


async def _settled_balance(user: dict, charged: int) -> dict:
    """The balance once nothing is reserved and `charged` is spent: settlements travel through Kafka after
    the task's last change."""
    latest: list[dict] = []

    async def settled() -> bool:
        latest[:] = [await _balance(user)]
        return latest[0]["reserved_balance"] == 0 and latest[0]["lifetime_spent"] == charged

    await wait_until(settled, timeout=60, what=f"{user['id']} settled at {charged} spent", interval=0.2)
    return latest[0]


async def _start(user: dict) -> str:
    body = {"toolSlug": "background-remove", "input": {"imageAssetId": user["image"]}}
    async with browser() as client:
        status, task, _ = await call(client, "POST", "/api/tasks", json=body, headers=bearer(user["token"]))
    assert status == 202, task
    return task["id"]


async def _tasks_of(user: dict) -> list[dict]:
    async with browser() as client:
        status, page, _ = await call(client, "GET", "/api/tasks?limit=100", headers=bearer(user["token"]))
    assert status == 200, page
    return page["items"]


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
    users = await asyncio.gather(*(_user() for _ in range(USERS)))
    task_ids = await asyncio.gather(*(_start(u) for u in users for _ in range(TASKS_PER_USER)))
    assert len(set(task_ids)) == USERS * TASKS_PER_USER

    for name in ("tasks", "credits", "providers"):
        await _kill_and_restart(platform, platform_env, name)

    tasks: list[dict] = []

    async def every_task_ended() -> bool:
        tasks[:] = [t for u in users for t in await _tasks_of(u)]
        return all(t["status"] in TERMINAL for t in tasks)

    await wait_until(every_task_ended, timeout=240, what=f"all {len(task_ids)} tasks to end", interval=1)
    assert {t["id"] for t in tasks} == set(task_ids)

    for user in users:
        mine = await _tasks_of(user)
        charged = sum(t["charged_credits"] or 0 for t in mine)
        balance = await _settled_balance(user, charged)
        assert balance["balance"] == TASKS_PER_USER * PRICE - charged
        assert all(t["charged_credits"] in (0, PRICE) for t in mine)
        assert all(t["charged_credits"] == PRICE for t in mine if t["status"] == "completed")

    verified = service_command("credits", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
