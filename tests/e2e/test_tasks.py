"""The main job end to end, through the gateway only: upload → task → live progress over SSE → output →
the balance shows the spend. Every service runs as its own process; tools come from `tasks seed` on the
local provider; third-party failures come from the fake OpenAI server."""

from __future__ import annotations

import io
import uuid

import aiohttp
from aiokafka import AIOKafkaProducer
from clients import (
    STORAGE_URL,
    bearer,
    browser,
    call,
    download,
    png,
    read_sse,
    sign_up,
    unique_email,
    upload,
)
from faults import Fault
from openai_api import FakeOpenAI
from PIL import Image

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.envelope import Envelope, encode, kafka_headers, kafka_key
from funmagic_contracts.providers.events import StepCompleted, StepOutput
from funmagic_contracts.topics import PROVIDERS_EVENTS
from funmagic_kit.testing import wait_until

TERMINAL = {"completed", "failed", "cancelled"}


async def new_user(admin_token: str | None = None, extra_credits: int = 0) -> dict:
    """A signed-up user holding the sign-up bonus (and `extra_credits` more from an admin)."""
    async with browser() as client:
        account = await sign_up(client, unique_email("tasks"), mode="token")
    user = {"id": account["user"]["id"], "token": account["access_token"]}
    await until_balance(user, lambda b: b["balance"] >= 50)
    if extra_credits:
        async with browser() as client:
            status, body, _ = await call(
                client, "POST", f"/api/admin/users/{user['id']}/credits", headers=bearer(admin_token),
                json={"amount": extra_credits, "reason": "e2e"},
            )  # fmt: skip
            assert status == 201, body
    return user


async def balance(user: dict) -> dict:
    async with browser() as client:
        status, body, _ = await call(client, "GET", "/api/credits/balance", headers=bearer(user["token"]))
    assert status == 200, body
    return body


async def until_balance(user: dict, predicate, timeout: float = 30.0) -> dict:
    """The user's balance once `predicate` holds for it."""
    latest: list[dict] = []

    async def got_there() -> bool:
        latest[:] = [await balance(user)]
        return predicate(latest[0])

    await wait_until(
        got_there, timeout=timeout, what=f"the balance of {user['id']} to get there", interval=0.1
    )
    return latest[0]


async def start_task(user: dict, body: dict, key: str | None = None) -> tuple[int, dict]:
    headers = bearer(user["token"]) | ({"Idempotency-Key": key} if key else {})
    async with browser() as client:
        status, task, _ = await call(client, "POST", "/api/tasks", json=body, headers=headers)
    return status, task


async def get_task(user: dict, task_id: str) -> tuple[int, dict]:
    async with browser() as client:
        status, task, _ = await call(client, "GET", f"/api/tasks/{task_id}", headers=bearer(user["token"]))
    return status, task


async def until_task(user: dict, task_id: str, statuses=TERMINAL, timeout: float = 60.0) -> dict:
    """The task once its status is one of `statuses`."""
    latest: list[dict] = []

    async def in_statuses() -> bool:
        status, task = await get_task(user, task_id)
        assert status == 200, task
        latest[:] = [task]
        return task["status"] in statuses

    await wait_until(in_statuses, timeout=timeout, what=f"task {task_id} in {sorted(statuses)}", interval=0.1)
    return latest[0]


def types(events) -> list[str]:
    return [e.event for e in events]


# --- the main job ------------------------------------------------------------------------------


async def test_background_remove_end_to_end(platform, seeded_tools) -> None:
    user = await new_user()
    assert (await balance(user))["balance"] == 50
    image = await upload(user["token"], png(80, 60))
    status, task = await start_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    assert status == 202, task
    assert (task["status"], task["price"]) == ("pending", 5)

    status, events, retry = await read_sse(user["token"], f"/api/tasks/{task['id']}/stream")
    assert status == 200
    assert retry is not None
    seen = types(events)
    assert seen[0] == "connected"
    assert seen[1] == "step_started"
    assert seen[-2:] == ["step_completed", "completed"], seen
    # A call this short may end before its progress is due (coalesced, STEP_PROGRESS_INTERVAL_SECONDS);
    # the web tests watch the progress of a slow one.
    assert set(seen[2:-2]) <= {"progress"}
    assert all(e.id for e in events[1:]), "every replayable event has an id"
    completed = events[-1].data
    (output,) = completed["output"]["assets"]
    assert output["url"] == f"/api/assets/{output['assetId']}"

    _, data = await download(user["token"], output["assetId"])
    result = Image.open(io.BytesIO(data))
    assert result.mode == "RGBA"
    assert result.getpixel((0, 0))[3] == 0

    spent = await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 45)
    assert spent["lifetime_spent"] == 5
    status, finished = await get_task(user, task["id"])
    assert finished["status"] == "completed"
    assert finished["charged_credits"] == 5
    assert finished["payload"]["output"]["assets"][0]["asset_id"] == output["assetId"]


async def test_a_retried_request_is_one_task(platform, seeded_tools) -> None:
    user = await new_user()
    image = await upload(user["token"], png())
    body = {"toolSlug": "background-remove", "input": {"imageAssetId": image}}
    key = str(uuid.uuid4())
    first_status, first = await start_task(user, body, key)
    again_status, again = await start_task(user, body, key)
    assert (first_status, again_status) == (202, 200)
    assert again["id"] == first["id"]
    other_status, problem = await start_task(
        user, {**body, "input": {"imageAssetId": image, "prompt": "x"}}, key
    )
    assert other_status == 409, problem
    await until_task(user, first["id"])
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 45)


async def test_figme_runs_as_one_pipeline_and_as_chained_tasks(platform, seeded_tools, admin_token) -> None:
    user = await new_user(admin_token, extra_credits=50)
    await until_balance(user, lambda b: b["balance"] == 100)
    image = await upload(user["token"], png())

    status, pipeline = await start_task(user, {"toolSlug": "figme", "input": {"imageAssetId": image}})
    assert status == 202
    assert pipeline["step_ids"] == ["image-gen", "3d-gen"]
    assert pipeline["price"] == 50
    _, events, _ = await read_sse(user["token"], f"/api/tasks/{pipeline['id']}/stream")
    seen = types(events)
    assert (seen.count("step_started"), seen.count("step_completed"), seen[-1]) == (2, 2, "completed"), seen
    roles = {a["role"] for a in events[-1].data["output"]["assets"]}
    assert "model" in roles

    status, first = await start_task(
        user, {"toolSlug": "figme", "stepId": "image-gen", "input": {"imageAssetId": image}}
    )
    assert status == 202
    assert first["price"] == 20
    assert (await until_task(user, first["id"]))["status"] == "completed"
    status, second = await start_task(
        user, {"toolSlug": "figme", "stepId": "3d-gen", "parentTaskId": first["id"]}
    )
    assert status == 202, second
    assert second["parent_task_id"] == first["id"]
    assert second["price"] == 30
    done = await until_task(user, second["id"])
    assert done["status"] == "completed", done
    model = next(a for a in done["payload"]["output"]["assets"] if a["role"] == "model")
    _, glb = await download(user["token"], model["asset_id"])
    assert glb[:4] == b"glTF"
    # The chained step worked on its parent's output, not on the user's upload.
    assert done["payload"]["steps"][0]["step_id"] == "3d-gen"
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 0)


async def test_insufficient_credits_fail_clearly_and_charge_nothing(
    platform, seeded_tools, admin_token
) -> None:
    user = await new_user(admin_token, extra_credits=-45)
    await until_balance(user, lambda b: b["balance"] == 5)
    image = await upload(user["token"], png())
    status, task = await start_task(user, {"toolSlug": "image-to-3d", "input": {"imageAssetId": image}})
    assert status == 202
    _, events, _ = await read_sse(user["token"], f"/api/tasks/{task['id']}/stream")
    assert types(events) == ["connected", "failed"]
    assert events[-1].data["code"] == "insufficient_credits"
    assert "not enough credits" in events[-1].data["error"]
    assert events[-1].data["chargedCredits"] == 0
    assert (await balance(user))["balance"] == 5


async def test_another_users_task_and_stream_are_404(platform, seeded_tools) -> None:
    owner, stranger = await new_user(), await new_user()
    image = await upload(owner["token"], png())
    _, task = await start_task(owner, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    assert (await get_task(stranger, task["id"]))[0] == 404
    status, _, _ = await read_sse(stranger["token"], f"/api/tasks/{task['id']}/stream")
    assert status == 404
    async with browser() as client:
        status, _, _ = await call(
            client, "POST", f"/api/tasks/{task['id']}/cancel", headers=bearer(stranger["token"])
        )
    assert status == 404
    # Nor may a stranger use the owner's asset as input.
    status, problem = await start_task(
        stranger, {"toolSlug": "background-remove", "input": {"imageAssetId": image}}
    )
    assert status == 422
    assert problem["code"] == "asset_not_found"
    await until_task(owner, task["id"])


async def test_sse_resumes_from_last_event_id_and_replays_after_completion(platform, seeded_tools) -> None:
    user = await new_user()
    image = await upload(user["token"], png(120, 90))
    _, task = await start_task(user, {"toolSlug": "crystal-memory", "input": {"imageAssetId": image}})
    path = f"/api/tasks/{task['id']}/stream"
    _, early, _ = await read_sse(user["token"], path, stop_after=lambda e: e.event == "step_completed")
    last_seen = early[-1].id
    await until_task(user, task["id"])
    _, full, _ = await read_sse(user["token"], path)
    assert types(full)[-1] == "completed"
    assert types(full).count("step_completed") == 2
    ids = [e.id for e in full[1:]]
    _, resumed, _ = await read_sse(user["token"], path, last_event_id=last_seen)
    assert [e.id for e in resumed[1:]] == ids[ids.index(last_seen) + 1 :]
    assert len(resumed) > 2


async def test_the_multiplexed_stream_carries_all_my_tasks(platform, seeded_tools) -> None:
    user = await new_user()
    image = await upload(user["token"], png())
    started = [
        (await start_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}}))[1]["id"]
        for _ in range(2)
    ]
    finished: set[str] = set()

    def both_done(event) -> bool:
        if event.event == "completed":
            finished.add(event.data["taskId"])
        return finished == set(started)

    status, events, _ = await read_sse(user["token"], "/api/stream", stop_after=both_done)
    assert status == 200
    assert types(events)[0] == "connected"
    assert finished == set(started)


async def test_invalid_requests_are_refused_with_reasons(platform, seeded_tools) -> None:
    user = await new_user()
    image = await upload(user["token"], png())
    cases = [
        ({"toolSlug": "no-such-tool", "input": {"imageAssetId": image}}, 404, "tool_not_found"),
        ({"toolSlug": "figme", "stepId": "nope", "input": {"imageAssetId": image}}, 422, "unknown_step"),
        ({"toolSlug": "background-remove", "input": {}}, 422, "image_required"),
        (
            {"toolSlug": "figme", "input": {"imageAssetId": image, "styleReferenceId": "nope"}},
            422,
            "unknown_style",
        ),
        (
            {"toolSlug": "figme", "stepId": "3d-gen", "parentTaskId": str(uuid.uuid4())},
            404,
            "parent_not_found",
        ),
        (
            {"toolSlug": "background-remove", "input": {"imageAssetId": str(uuid.uuid4())}},
            422,
            "asset_not_found",
        ),
    ]
    for body, expected_status, code in cases:
        status, problem = await start_task(user, body)
        assert (status, problem.get("code")) == (expected_status, code), (body, problem)
    status, problem = await start_task(
        user, {"toolSlug": "figme", "input": {"imageAssetId": image, "prompt": "x" * 4001}}
    )
    assert status == 422
    assert (await balance(user))["balance"] == 50


# --- failures, cancellation, admin ------------------------------------------------------------


async def create_tool(admin_token: str, steps: list[dict], *, pipeline: bool = True) -> str:
    """An admin-made tool for one test (its own slug), returning the slug."""
    async with browser() as client:
        status, types_page, _ = await call(
            client, "GET", "/api/admin/tool-types", headers=bearer(admin_token)
        )
        assert status == 200, types_page
        slug = f"e2e-{uuid.uuid4().hex[:10]}"
        body = {
            "slug": slug, "title": slug, "tool_type_id": types_page["items"][0]["id"],
            "config": {"steps": steps, "pipeline": pipeline},
        }  # fmt: skip
        status, tool, _ = await call(
            client, "POST", "/api/admin/tools", json=body, headers=bearer(admin_token)
        )
        assert status == 201, tool
    return slug


def local_step(step_id: str, step_type: str, cost: int, **options) -> dict:
    return {
        "id": step_id, "name": step_id, "type": step_type, "cost": cost,
        "provider": {"name": "local", "model": "default", "options": options},
        "input": {"image": "required" if step_id == "first" else "optional", "prompt": "none"},
    }  # fmt: skip


async def test_a_provider_failure_fails_the_task_and_refunds_it(platform, seeded_tools, admin_token) -> None:
    async with FakeOpenAI(api_key="sk-e2e-tasks-" + uuid.uuid4().hex) as fake:
        async with browser() as client:
            provider = {
                "name": f"openai-{uuid.uuid4().hex[:8]}", "type": "openai", "base_url": fake.url,
                "api_key": fake.api_key, "config": {"rateLimit": {"maxRetries": 0}},
            }  # fmt: skip
            status, created, _ = await call(
                client, "POST", "/api/admin/providers", json=provider, headers=bearer(admin_token)
            )
            assert status == 201, created
        fake.faults.always("generations", Fault.server_error(500))
        slug = await create_tool(
            admin_token,
            [{"id": "paint", "name": "Paint", "type": "image-gen", "cost": 9,
              "provider": {"name": provider["name"], "model": "gpt-image-1", "options": {}},
              "input": {"image": "none", "prompt": "required"}}],
        )  # fmt: skip
        user = await new_user()
        status, task = await start_task(user, {"toolSlug": slug, "input": {"prompt": "a lighthouse"}})
        assert status == 202, task
        _, events, _ = await read_sse(user["token"], f"/api/tasks/{task['id']}/stream")
        assert types(events)[-1] == "failed", types(events)
        assert events[-1].data["chargedCredits"] == 0
        assert "step 'paint' failed" in events[-1].data["error"]
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 50)


async def test_cancel_mid_step_gives_back_the_unused_part(platform, seeded_tools, admin_token) -> None:
    slug = await create_tool(
        admin_token,
        [local_step("first", "remove-bg", 5), local_step("slow", "3d-gen", 7, durationMs=30_000)],
    )
    user = await new_user()
    image = await upload(user["token"], png())
    _, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
    assert task["price"] == 12
    await read_sse(
        user["token"], f"/api/tasks/{task['id']}/stream",
        stop_after=lambda e: e.event == "step_started" and e.data["stepId"] == "slow",
    )  # fmt: skip
    async with browser() as client:
        status, cancelled, _ = await call(
            client, "POST", f"/api/tasks/{task['id']}/cancel", headers=bearer(user["token"])
        )
    assert status == 200, cancelled
    assert (cancelled["status"], cancelled["charged_credits"]) == ("cancelled", 5)
    _, events, _ = await read_sse(user["token"], f"/api/tasks/{task['id']}/stream")
    assert types(events)[-1] == "cancelled"
    assert "completed" not in types(events)
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 45)


async def test_an_output_that_comes_after_the_cancel_is_not_kept(
    platform, seeded_tools, admin_token, stack_env
) -> None:
    """The race a cancel can win: the provider finished its step as the cancel went through. Its output was
    stored and its StepCompleted sent (here as providers sends them, the step's job being held for 30 s), but
    the cancelled task charged nothing for it, so nobody keeps it: tasks discards it, storage deletes it."""
    slug = await create_tool(admin_token, [local_step("first", "remove-bg", 5, durationMs=30_000)])
    user = await new_user()
    image = await upload(user["token"], png())
    _, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
    await read_sse(
        user["token"], f"/api/tasks/{task['id']}/stream", stop_after=lambda e: e.event == "step_started"
    )
    async with browser() as client:
        status, cancelled, _ = await call(
            client, "POST", f"/api/tasks/{task['id']}/cancel", headers=bearer(user["token"])
        )
    assert (status, cancelled["charged_credits"]) == (200, 0)
    late = await store_output(stack_env, user["id"], task["id"])
    assert (await asset_status(user, late)) == 200, "stored for the user, as a step's output is"

    await publish_step_completed(stack_env, user["id"], task["id"], "first", late)

    async def gone() -> bool:
        return await asset_status(user, late) == 404

    await wait_until(gone, timeout=30, what="the late output to be deleted", interval=0.1)
    assert (await until_task(user, task["id"]))["status"] == "cancelled"
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 50)
    assert (await asset_status(user, image)) == 200, "the task's input stays"


async def store_output(stack_env: dict[str, str], user_id: str, task_id: str) -> str:
    """An output of the task as providers stores it (storage's internal API, with the internal credential)."""
    query = {"user_id": user_id, "module": "remove-bg", "filename": "late.png", "task_id": task_id}
    headers = {"X-Internal-Token": stack_env["INTERNAL_API_TOKEN"].split(",")[0].strip(),
               "Content-Type": "image/png"}  # fmt: skip
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{STORAGE_URL}/v1/internal/assets", params=query, data=png(), headers=headers) as sent,
    ):
        stored = await sent.json()
        assert sent.status == 201, stored
    return str(stored["id"])


async def asset_status(user: dict, asset_id: str) -> int:
    async with browser() as client:
        status, _, _ = await call(client, "GET", f"/api/assets/{asset_id}", headers=bearer(user["token"]))
    return status


async def publish_step_completed(
    stack_env: dict[str, str], user_id: str, task_id: str, step_id: str, asset_id: str
) -> None:
    completed = StepCompleted(
        task_id=task_id, user_id=user_id, step_id=step_id, attempt=1,
        output=StepOutput(assets=(OutputAsset(asset_id=asset_id, role="image"),)),
    )  # fmt: skip
    envelope = Envelope.wrap(completed)
    producer = AIOKafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            PROVIDERS_EVENTS.name, encode(envelope), key=kafka_key(envelope), headers=kafka_headers(envelope)
        )
    finally:
        await producer.stop()


async def test_admins_search_view_and_cancel_any_task(platform, seeded_tools, admin_token) -> None:
    slug = await create_tool(admin_token, [local_step("first", "remove-bg", 3, durationMs=30_000)])
    user = await new_user()
    image = await upload(user["token"], png())
    _, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
    admin = bearer(admin_token)
    async with browser() as client:
        status, page, _ = await call(client, "GET", f"/api/admin/tasks?user_id={user['id']}", headers=admin)
        assert (status, [t["id"] for t in page["items"]]) == (200, [task["id"]])
        status, seen, _ = await call(client, "GET", f"/api/admin/tasks/{task['id']}", headers=admin)
        assert (status, seen["payload"]["input"]) == (200, {"imageAssetId": image})
        status, cancelled, _ = await call(
            client, "POST", f"/api/admin/tasks/{task['id']}/cancel", headers=admin
        )
        assert (status, cancelled["status"]) == (200, "cancelled")
        status, _, _ = await call(client, "GET", "/api/admin/tasks", headers=bearer(user["token"]))
        assert status == 403
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 50)


async def test_a_user_runs_a_limited_number_of_tasks_at_once(platform, seeded_tools, admin_token) -> None:
    slug = await create_tool(admin_token, [local_step("first", "remove-bg", 1, durationMs=30_000)])
    user = await new_user()
    image = await upload(user["token"], png())
    started = []
    for _ in range(10):
        status, task = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
        assert status == 202, task
        started.append(task["id"])
    status, problem = await start_task(user, {"toolSlug": slug, "input": {"imageAssetId": image}})
    assert (status, problem["code"]) == (429, "too_many_tasks")
    async with browser() as client:
        for task_id in started:
            status, _, _ = await call(
                client, "POST", f"/api/tasks/{task_id}/cancel", headers=bearer(user["token"])
            )
            assert status == 200
        status, page, _ = await call(
            client, "GET", "/api/tasks?status=cancelled&limit=4", headers=bearer(user["token"])
        )
        assert (status, len(page["items"]), bool(page["next_cursor"])) == (200, 4, True)
        status, rest, _ = await call(
            client, "GET", f"/api/tasks?status=cancelled&limit=100&cursor={page['next_cursor']}",
            headers=bearer(user["token"]),
        )  # fmt: skip
        assert {t["id"] for t in page["items"] + rest["items"]} == set(started)
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 50)


async def test_credit_history_by_task_groups_a_chain_under_its_root(
    platform, seeded_tools, admin_token
) -> None:
    user = await new_user(admin_token, extra_credits=50)
    await until_balance(user, lambda b: b["balance"] == 100)
    image = await upload(user["token"], png())
    _, first = await start_task(
        user, {"toolSlug": "figme", "stepId": "image-gen", "input": {"imageAssetId": image}}
    )
    assert (await until_task(user, first["id"]))["status"] == "completed"
    status, second = await start_task(
        user, {"toolSlug": "figme", "stepId": "3d-gen", "parentTaskId": first["id"]}
    )
    assert status == 202, second
    assert (await until_task(user, second["id"]))["status"] == "completed"
    await until_balance(user, lambda b: b["reserved_balance"] == 0 and b["balance"] == 50)

    async with browser() as client:
        status, page, _ = await call(
            client,
            "GET",
            "/api/credits/transaction-groups",
            headers=bearer(user["token"]),
            params={"limit": 1},
        )
        assert status == 200, page
        status, rest, _ = await call(
            client, "GET", "/api/credits/transaction-groups", headers=bearer(user["token"]),
            params={"limit": 10, "cursor": page["next_cursor"]},
        )  # fmt: skip
        assert status == 200, rest

    (chain,) = page["items"]
    assert chain["root_task_id"] == first["id"]
    assert chain["tool_slug"] == "figme"
    assert {e["reference_id"] for e in chain["entries"]} == {first["id"], second["id"]}
    assert chain["net_amount"] == -(first["price"] + second["price"])
    assert [g["root_task_id"] for g in rest["items"]] == [None, None], "the bonus and the admin's grant"
    assert rest["next_cursor"] is None
