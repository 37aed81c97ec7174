"""What a disabled or deleted account leaves behind (issue 21), end to end through the gateway:

- an admin disables a user with a slow task running: the task is cancelled (it pays for the step it
  completed), credits releases the rest of the hold, the old token cannot start another task, and
  `credits verify` finds nothing wrong;
- a user deletes their own account with a slow task running and files uploaded: the task is cancelled and
  its hold released; after the grace period (DELETED_USER_ASSET_GRACE_HOURS, a few seconds on the e2e
  platform, see conftest.py) their files are gone — 404 to an admin and no object behind the URL handed out
  before — while the ledger still has their whole history.

The tasks run on the local provider with a slow second step (`durationMs`), as tests/e2e/test_tasks.py does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from clients import PASSWORD, bearer, browser, call, png, read_sse, upload
from test_tasks import create_tool, local_step, new_user, start_task

from funmagic_kit.testing import wait_until

BONUS = 50
FIRST, SLOW = 5, 7  # the cost of each step of the test's tool


async def admin_get(admin_token: str, path: str) -> tuple[int, Any]:
    async with browser() as client:
        status, body, _ = await call(client, "GET", path, headers=bearer(admin_token))
    return status, body


async def a_user_past_the_first_step(admin_token: str) -> tuple[dict, dict, str]:
    """A new user, their task on a tool of two steps (5, then a slow 7) running its slow step, and the
    image it works on."""
    slug = await create_tool(
        admin_token,
        [local_step("first", "remove-bg", FIRST), local_step("slow", "3d-gen", SLOW, durationMs=60_000)],
    )
    user = await new_user()
    image = await upload(user["token"], png())
    status, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
    assert status == 202, task
    await read_sse(
        user["token"], f"/api/tasks/{task['id']}/stream",
        stop_after=lambda e: e.event == "step_started" and e.data["stepId"] == "slow",
    )  # fmt: skip
    return user, task, image


async def until_cancelled(admin_token: str, task_id: str) -> dict:
    """The task (as an admin sees it: its owner's token no longer works) once it is cancelled."""
    latest: list[dict] = []

    async def cancelled() -> bool:
        status, task = await admin_get(admin_token, f"/api/admin/tasks/{task_id}")
        assert status == 200, task
        latest[:] = [task]
        return task["status"] == "cancelled"

    await wait_until(cancelled, timeout=30, what=f"task {task_id} to be cancelled", interval=0.1)
    return latest[0]


async def until_settled(admin_token: str, user_id: str, balance: int) -> dict:
    """The user's credits (as an admin sees them) once nothing is held and the balance is `balance`."""
    latest: list[dict] = []

    async def settled() -> bool:
        status, credits = await admin_get(admin_token, f"/api/admin/users/{user_id}/credits")
        assert status == 200, credits
        latest[:] = [credits]
        return credits["reserved_balance"] == 0 and credits["balance"] == balance

    await wait_until(settled, timeout=30, what=f"the credits of {user_id} to settle", interval=0.1)
    return latest[0]


async def object_status(url: str) -> int:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status


async def test_disabling_a_user_cancels_their_running_task_and_releases_its_hold(
    platform, seeded_tools, admin_token, service_command
) -> None:
    user, task, image = await a_user_past_the_first_step(admin_token)

    async with browser() as client:
        status, disabled, _ = await call(
            client, "POST", f"/api/admin/users/{user['id']}/disable", json={"reason": "e2e: abuse"},
            headers=bearer(admin_token),
        )  # fmt: skip
    assert (status, disabled["disabled"]) == (200, True), disabled

    cancelled = await until_cancelled(admin_token, task["id"])
    assert cancelled["charged_credits"] == FIRST  # the completed step is paid for, the slow one is not
    await until_settled(admin_token, user["id"], BONUS - FIRST)
    verified = await asyncio.to_thread(service_command, "credits", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # No new task: the gateway refuses the revoked token.
    status, refused = await start_task(
        user, {"toolSlug": task["tool_slug"], "input": {"imageAssetId": image}}
    )
    assert status == 401, refused
    # Disabling deletes nothing: the files are still there.
    status, asset = await admin_get(admin_token, f"/api/admin/assets/{image}")
    assert status == 200, asset
    assert await object_status(asset["url"]) == 200


async def test_deleting_my_account_cancels_my_task_then_my_files_go_and_the_ledger_stays(
    platform, seeded_tools, admin_token, service_command
) -> None:
    user, task, image = await a_user_past_the_first_step(admin_token)
    another = await upload(user["token"], png(32, 32), filename="another.png")
    urls = {}
    for asset_id in (image, another):
        status, asset = await admin_get(admin_token, f"/api/admin/assets/{asset_id}")
        assert status == 200, asset
        assert await object_status(asset["url"]) == 200
        urls[asset_id] = asset["url"]

    async with browser() as client:
        status, problem, _ = await call(
            client, "DELETE", "/api/auth/me", json={"password": PASSWORD}, headers=bearer(user["token"])
        )
    assert status == 204, problem

    cancelled = await until_cancelled(admin_token, task["id"])
    assert cancelled["charged_credits"] == FIRST
    await until_settled(admin_token, user["id"], BONUS - FIRST)

    async def files_gone() -> bool:
        for asset_id, url in urls.items():
            status, _ = await admin_get(admin_token, f"/api/admin/assets/{asset_id}")
            if status != 404 or await object_status(url) != 404:
                return False
        return True

    # The e2e platform's grace period is seconds long, and its purge worker looks every second.
    await wait_until(files_gone, timeout=60, what="the deleted user's files to be purged", interval=0.5)

    status, ledger = await admin_get(admin_token, f"/api/admin/users/{user['id']}/ledger?limit=100")
    assert status == 200, ledger
    history = {(e["type"], e["data"].get("reservation_id")) for e in ledger["items"]}
    assert {("Reserved", task["id"]), ("Spent", task["id"]), ("Released", task["id"])} <= history
    assert "Granted" in {e["type"] for e in ledger["items"]}  # the sign-up bonus, too
    verified = await asyncio.to_thread(service_command, "credits", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
