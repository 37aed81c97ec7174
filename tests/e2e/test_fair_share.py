"""Fair shares under a provider's limit, end to end: one user's burst of 200 tasks on a provider allowed two
calls at once does not starve another user's 5 — they finish while the burst's backlog is still over 150.

The tasks service runs, for this test only, with a per-user cap on active tasks above the burst (the
default, 10, would refuse the 11th task with 429); it is restarted with the platform's settings after.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import run_services
from clients import E2E_PORT_BASE, bearer, browser, call, sign_up, unique_email

from funmagic_kit.testing import wait_until

BURST, FEW = 200, 5
STEP_MILLISECONDS = 1000  # the local provider paces each call: 2 slots → about 2 steps a second
TERMINAL = {"completed", "failed", "cancelled"}


async def api(method: str, path: str, token: str, **kwargs: Any) -> tuple[int, Any]:
    async with browser() as client:
        status, body, _ = await call(client, method, path, headers=bearer(token), **kwargs)
    return status, body


async def _restart_tasks(platform: dict, env: dict[str, str]) -> None:
    old = platform["tasks"]
    await asyncio.to_thread(run_services.stop_service, old)
    restarted = run_services.start_service("tasks", env, E2E_PORT_BASE, old.log_path.parent)
    platform["tasks"] = restarted
    await asyncio.to_thread(run_services.wait_until_healthy, restarted, "/health")


@pytest.fixture
async def burst_allowed(platform, platform_env) -> AsyncIterator[None]:
    await _restart_tasks(platform, {**platform_env, "MAX_ACTIVE_TASKS_PER_USER": str(BURST + FEW)})
    try:
        yield
    finally:
        await _restart_tasks(platform, platform_env)


async def _limited_tool(admin_token: str) -> str:
    """A local provider allowed two calls at once, and a free one-step tool on it; returns its slug."""
    name = f"e2e-fair-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "type": "local", "config": {"rateLimit": {"maxConcurrency": 2}}}
    status, created = await api("POST", "/api/admin/providers", admin_token, json=body)
    assert status == 201, created
    status, tool_type = await api(
        "POST", "/api/admin/tool-types", admin_token, json={"name": name, "display_name": name}
    )
    assert status == 201, tool_type
    step = {"id": "paint", "name": "Paint", "type": "image-gen", "cost": 0,
            "provider": {"name": name, "model": "default",
                         "options": {"size": "64x64", "durationMs": STEP_MILLISECONDS}},
            "input": {"image": "none", "prompt": "required"}}  # fmt: skip
    tool = {"slug": name, "title": name, "tool_type_id": tool_type["id"], "config": {"steps": [step]}}
    status, created = await api("POST", "/api/admin/tools", admin_token, json=tool)
    assert status == 201, created
    return str(created["slug"])


async def _new_user(prefix: str) -> str:
    async with browser() as client:
        account = await sign_up(client, unique_email(prefix), mode="token")
    return str(account["access_token"])


async def _start(token: str, slug: str, count: int) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(n: int) -> str:
        async with gate:
            status, task = await api(
                "POST", "/api/tasks", token, json={"toolSlug": slug, "input": {"prompt": f"picture {n}"}}
            )
        assert status == 202, task
        return str(task["id"])

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def _statuses(token: str) -> dict[str, str]:
    """Every task of the caller by id → status, page after page."""
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        status, page = await api("GET", "/api/tasks", token, params=params)
        assert status == 200, page
        found |= {item["id"]: item["status"] for item in page["items"]}
        cursor = page.get("next_cursor")
        if not cursor:
            return found


async def test_a_burst_on_a_limited_provider_does_not_starve_another_users_few_tasks(
    platform, burst_allowed, admin_token: str
) -> None:
    slug = await _limited_tool(admin_token)
    heavy, light = await _new_user("fair-burst"), await _new_user("fair-few")

    burst = await _start(heavy, slug, BURST)
    few = await _start(light, slug, FEW)

    async def few_finished() -> bool:
        mine = await _statuses(light)
        assert not {mine[t] for t in few} & {"failed", "cancelled"}, mine
        return all(mine[t] == "completed" for t in few)

    await wait_until(few_finished, timeout=120, what=f"the second user's {FEW} tasks", interval=0.2)
    heavy_tasks = await _statuses(heavy)
    backlog = [t for t in burst if heavy_tasks[t] not in TERMINAL]
    assert len(backlog) > 150, f"only {len(backlog)} of the burst were still waiting"

    # The rest of the burst would take a minute and a half: cancelled, each must still end.
    cancels = await asyncio.gather(*(api("POST", f"/api/tasks/{t}/cancel", heavy) for t in backlog))
    assert {status for status, _ in cancels} <= {200, 202, 409}, cancels

    async def burst_ended() -> bool:
        statuses = await _statuses(heavy)
        return all(statuses[t] in TERMINAL for t in burst)

    await wait_until(burst_ended, timeout=120, what="every task of the burst to end", interval=0.5)
