"""Two platforms share one Kafka cluster: a second, complete platform with its own `KAFKA_TOPIC_PREFIX`
(and its own databases and Redis database) runs the main job beside the e2e platform, and neither takes the
other's events. Issue 19's "deployment prefix"."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from clients import E2E_PORT_BASE, bearer, browser, call, download, png, sign_up, unique_email, upload
from extra_platform import ExtraPlatform, extra_platform

from funmagic_kit.testing import wait_until

SECOND_PORT_BASE = E2E_PORT_BASE + 30
SECOND_GATEWAY = f"http://127.0.0.1:{SECOND_PORT_BASE}"


@pytest.fixture(scope="module")
def second_platform(
    platform: dict, platform_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExtraPlatform]:
    with extra_platform(
        platform_env,
        port_base=SECOND_PORT_BASE,
        beside_port_base=E2E_PORT_BASE,
        redis_db=6,
        run_dir=tmp_path_factory.mktemp("second"),
    ) as second:
        yield second


async def signed_up(gateway: str) -> dict:
    async with browser(gateway) as client:
        return await sign_up(client, unique_email("shared-kafka"), mode="token")


async def balance(gateway: str, token: str) -> dict:
    async with browser(gateway) as client:
        status, body, _ = await call(client, "GET", "/api/credits/balance", headers=bearer(token))
        assert status == 200, body
        return body


async def credit_rows(database_url: str, user_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM credits WHERE user_id = %s", (user_id,))
        row = await cursor.fetchone()
        return row[0] if row else 0


async def test_a_second_prefixed_platform_runs_the_main_job_and_shares_no_event_with_the_first(
    platform_env: dict[str, str], second_platform: ExtraPlatform
) -> None:
    first_user = await signed_up(f"http://127.0.0.1:{E2E_PORT_BASE}")
    second_user = await signed_up(SECOND_GATEWAY)
    first_token, second_token = first_user["access_token"], second_user["access_token"]

    async def second_bonus_arrived() -> bool:
        return (await balance(SECOND_GATEWAY, second_token))["balance"] == 50

    await wait_until(second_bonus_arrived, timeout=30, what="the sign-up bonus on the second platform")

    image = await upload(second_token, png(80, 60), gateway=SECOND_GATEWAY)
    async with browser(SECOND_GATEWAY) as client:
        status, task, _ = await call(
            client, "POST", "/api/tasks", headers=bearer(second_token),
            json={"toolSlug": "background-remove", "input": {"imageAssetId": image}},
        )  # fmt: skip
        assert status == 202, task
        finished: dict = {}

        async def task_completed() -> bool:
            nonlocal finished
            status, finished, _ = await call(
                client, "GET", f"/api/tasks/{task['id']}", headers=bearer(second_token)
            )
            return status == 200 and finished["status"] in {"completed", "failed", "cancelled"}

        await wait_until(task_completed, timeout=60, what="the second platform's task to end")
    assert finished["status"] == "completed", finished
    output = finished["payload"]["output"]["assets"][0]["asset_id"]
    asset, _ = await download(second_token, output, gateway=SECOND_GATEWAY)
    assert asset["id"] == output

    async def second_charged() -> bool:
        spent = await balance(SECOND_GATEWAY, second_token)
        return (spent["balance"], spent["reserved_balance"]) == (45, 0)

    await wait_until(second_charged, timeout=30, what="the second platform's charge")

    # Each platform's ledger knows only its own user: no event crossed over, either way.
    assert await credit_rows(second_platform.env["CREDITS_DATABASE_URL"], second_user["user"]["id"]) == 1
    assert await credit_rows(platform_env["CREDITS_DATABASE_URL"], second_user["user"]["id"]) == 0
    assert await credit_rows(second_platform.env["CREDITS_DATABASE_URL"], first_user["user"]["id"]) == 0

    async def first_bonus_arrived() -> bool:
        return (await balance(f"http://127.0.0.1:{E2E_PORT_BASE}", first_token))["balance"] == 50

    await wait_until(first_bonus_arrived, timeout=30, what="the sign-up bonus on the first platform")
