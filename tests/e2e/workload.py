"""Users running `background-remove` tasks, and what must hold once a crash is over: every task ended, and
every balance is the sign-up bonus minus what was charged, with nothing left reserved.

Shared by the crash tests (services SIGKILLed: test_tasks_crash.py; stack parts SIGKILLed:
test_infra_faults.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from clients import bearer, browser, call, png, sign_up, unique_email, upload

from funmagic_kit.testing import wait_until

BONUS = 50  # the sign-up bonus
PRICE = 5  # background-remove
TERMINAL = {"completed", "failed", "cancelled"}
# How often every_task_ends looks at every user's tasks: the composed platform keeps the default limit of
# 500 API requests a minute per address, and five users looked at twice a second would exhaust it.
POLL_SECONDS = 2.0
# How often one user's balance is looked at while it settles (a bonus, a charge): at most 60 of their 200 API
# requests a minute over a 30 s wait.
SETTLING_POLL_SECONDS = 0.5


async def new_user(prefix: str) -> dict:
    """A signed-up user with the bonus granted and an image uploaded (`image`) to run tasks on."""
    email = unique_email(prefix)
    async with browser() as client:
        account = await sign_up(client, email, mode="token")
    user = {"id": account["user"]["id"], "token": account["access_token"], "email": email}

    async def bonus_granted() -> bool:
        return (await balance(user))["balance"] >= BONUS

    # Polite polling: at 10 requests a second, a bonus held up ~20 s (a consumer group rebalancing after a
    # replica joined) would use up the user's 200 API requests a minute, and their first task would be a 429.
    await wait_until(
        bonus_granted, timeout=30, what=f"the sign-up bonus of {user['id']}", interval=SETTLING_POLL_SECONDS
    )
    user["image"] = await upload(user["token"], png(32, 24))
    _counted(user, 2)  # the upload's ticket and its completion
    return user


def _counted(user: dict, requests: int = 1) -> None:
    """Keeps how many API requests the workload made as `user` (a 429 says it, to tell a miscount)."""
    user["requests"] = user.get("requests", 0) + requests


async def polled(user: dict, path: str) -> Any:
    """GETs `path` as `user` the way a polite poller does: a 429 is waited out (its Retry-After) and asked
    again, so a long wait on a platform with its default rate limits is not cut short by them."""
    async with browser() as client:
        while True:
            status, body, response = await call(client, "GET", path, headers=bearer(user["token"]))
            _counted(user)
            if status != 429:
                break
            await asyncio.sleep(min(float(response.headers.get("Retry-After", "1")), 60.0))
    assert status == 200, body
    return body


async def balance(user: dict) -> dict:
    return await polled(user, "/api/credits/balance")


async def settled_balance(user: dict, charged: int, timeout: float = 60) -> dict:
    """The balance once nothing is reserved and `charged` is spent: settlements travel through Kafka after
    the task's last change."""
    latest: list[dict] = []

    async def settled() -> bool:
        latest[:] = [await balance(user)]
        return latest[0]["reserved_balance"] == 0 and latest[0]["lifetime_spent"] == charged

    await wait_until(
        settled,
        timeout=timeout,
        what=f"{user['id']} settled at {charged} spent",
        interval=SETTLING_POLL_SECONDS,
    )
    return latest[0]


def task_request(user: dict) -> dict:
    return {"toolSlug": "background-remove", "input": {"imageAssetId": user["image"]}}


async def start_task(user: dict) -> str:
    async with browser() as client:
        status, task, response = await call(
            client, "POST", "/api/tasks", json=task_request(user), headers=bearer(user["token"])
        )
    _counted(user)
    limits = {k: v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit")}
    assert status == 202, (task, f"{user.get('requests')} requests made as this user", limits)
    return task["id"]


async def tasks_of(user: dict) -> list[dict]:
    return (await polled(user, "/api/tasks?limit=100"))["items"]


async def every_task_ends(users: list[dict], task_ids: set[str], timeout: float) -> list[dict]:
    """Waits until every task of `users` is terminal; they must be exactly `task_ids`."""
    tasks: list[dict] = []

    async def all_ended() -> bool:
        tasks[:] = [t for u in users for t in await tasks_of(u)]
        return all(t["status"] in TERMINAL for t in tasks)

    try:
        await wait_until(
            all_ended, timeout=timeout, what=f"all {len(task_ids)} tasks to end", interval=POLL_SECONDS
        )
    except AssertionError as error:
        stuck = [(t["id"], t["status"], t.get("current_step")) for t in tasks if t["status"] not in TERMINAL]
        raise AssertionError(f"{error}; still going: {stuck}") from None
    assert {t["id"] for t in tasks} == task_ids
    return tasks


async def assert_ledgers_exact(users: list[dict]) -> None:
    """Each user's balance is the bonus minus the sum charged for their tasks, nothing reserved; a task
    is charged its price in full or not at all, and in full when it completed."""
    for user in users:
        mine = await tasks_of(user)
        charged = sum(t["charged_credits"] or 0 for t in mine)
        settled = await settled_balance(user, charged)
        assert settled["balance"] == BONUS - charged, (settled, mine)
        assert all(t["charged_credits"] in (0, PRICE) for t in mine), mine
        assert all(t["charged_credits"] == PRICE for t in mine if t["status"] == "completed"), mine
