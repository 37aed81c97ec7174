"""The internal HTTP API of tasks in front of the use cases and Postgres: the JSON of a task (its fields,
ISO times, the payload of one task), Idempotency-Key replays, and each refusal as problem+json with the
status and `code` clients rely on (mapped by the kit from the domain's refusal kinds)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReserved
from funmagic_contracts.providers.events import StepCompleted, StepOutput
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.config import TasksSettings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
OWNER, STRANGER = str(uuid.uuid4()), str(uuid.uuid4())
IMAGE, OTHER_IMAGE = str(uuid.uuid4()), str(uuid.uuid4())
AS_OWNER = {"X-Test-Role": "user", "X-Test-User": OWNER}
AS_STRANGER = {"X-Test-Role": "user", "X-Test-User": STRANGER}
AS_ADMIN = {"X-Test-Role": "admin", "X-Test-User": str(uuid.uuid4())}
TASK_FIELDS = {
    "id", "user_id", "tool_id", "tool_slug", "parent_task_id", "status", "step_ids", "current_step_id",
    "completed_step_ids", "price", "charged_credits", "error", "created_at", "started_at", "finished_at",
}  # fmt: skip
# A top-level task in the user's list also has its family folded in (issue 17).
FAMILY_FIELDS = {"children", "effective_status", "credits_total", "thumbnail_asset_id", "tool_type"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(settings: TasksSettings, pool, clock, assets, ports) -> Tasks:
    assets.owned = {(OWNER, IMAGE)}
    capped = settings.model_copy(update={"max_active_tasks_per_user": 3})
    return build(capped, pool=pool, http=None, clock=clock, **ports)


@pytest.fixture
async def http(app: Tasks, serve) -> AsyncIterator[aiohttp.ClientSession]:
    image_type = await app.catalog.create_tool_type(name="image", display_name="Image")
    steps = [
        {"id": "cut", "name": "Cut", "type": "remove-bg", "cost": 5, "provider": {"name": "local"},
         "input": {"image": "required"}},
        {"id": "model", "name": "Model", "type": "3d-gen", "cost": 7, "provider": {"name": "local"},
         "input": {"image": "optional"}},
    ]  # fmt: skip
    await app.catalog.create_tool(
        slug="figme", title="FigMe", tool_type_id=image_type["id"], config={"steps": steps}
    )
    async with serve(app.parts.routes) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, headers: dict[str, str], body: object = None
) -> tuple[int, dict]:
    async with http.request(method, path, json=body, headers=headers) as response:
        return response.status, await response.json()


FIGME = {"toolSlug": "figme", "input": {"imageAssetId": IMAGE}}


async def test_a_created_task_is_answered_with_every_field_and_read_back_with_its_payload(http, app) -> None:
    status, task = await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME)

    assert status == 202
    assert set(task) == TASK_FIELDS
    assert task == {
        "id": task["id"], "user_id": OWNER, "tool_id": task["tool_id"], "tool_slug": "figme",
        "parent_task_id": None, "status": "pending", "step_ids": ["cut", "model"], "current_step_id": None,
        "completed_step_ids": [], "price": 12, "charged_credits": None, "error": None,
        "created_at": T0.isoformat(), "started_at": None, "finished_at": None,
    }  # fmt: skip
    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        await c.deliver_event(
            CreditsReserved(
                user_id=OWNER, reservation_id=task["id"], amount=12, balance_after=0, reserved_after=12
            )
        )
        await c.deliver_event(
            StepCompleted(task_id=task["id"], user_id=OWNER, step_id="cut", attempt=1,
                          output=StepOutput(assets=(OutputAsset(asset_id="cut-1", role="image"),),
                                            metadata={"width": 512}))
        )  # fmt: skip

    status, read = await call(http, "GET", f"/v1/tasks/{task['id']}", AS_OWNER)

    assert status == 200
    assert set(read) == TASK_FIELDS | {"payload", "children"}
    assert read["children"] == []
    assert (read["status"], read["current_step_id"], read["completed_step_ids"]) == (
        "running",
        "model",
        ["cut"],
    )
    assert read["started_at"] == T0.isoformat()
    assert read["payload"] == {
        "input": {"imageAssetId": IMAGE},
        "steps": [{"step_id": "cut", "attempt": 1, "assets": [{"asset_id": "cut-1", "role": "image"}],
                   "metadata": {"width": 512}}],
        "output": None,
        "error": None,
    }  # fmt: skip


async def test_a_cancelled_task_shows_what_it_charged(http) -> None:
    _, task = await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME)

    status, cancelled = await call(http, "POST", f"/v1/tasks/{task['id']}/cancel", AS_OWNER)
    again_status, again = await call(http, "POST", f"/v1/tasks/{task['id']}/cancel", AS_OWNER)

    assert status == again_status == 200
    assert (cancelled["status"], cancelled["charged_credits"], cancelled["finished_at"]) == (
        "cancelled", 0, T0.isoformat())  # fmt: skip
    assert cancelled["payload"] == {
        "input": {"imageAssetId": IMAGE},
        "steps": [],
        "output": None,
        "error": None,
    }
    assert again == cancelled


async def test_a_retry_with_the_same_idempotency_key_gets_the_same_task(http) -> None:
    key = {"Idempotency-Key": "retry-1"}

    first_status, first = await call(http, "POST", "/v1/tasks", AS_OWNER | key, FIGME)
    again_status, again = await call(http, "POST", "/v1/tasks", AS_OWNER | key, FIGME)
    other_status, problem = await call(
        http, "POST", "/v1/tasks", AS_OWNER | key, {**FIGME, "input": {"imageAssetId": IMAGE, "prompt": "x"}}
    )
    bad_status, _ = await call(http, "POST", "/v1/tasks", AS_OWNER | {"Idempotency-Key": "x" * 201}, FIGME)

    assert (first_status, again_status) == (202, 200)
    assert again == first
    assert (other_status, problem["code"], problem["field"]) == (
        409,
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    assert bad_status == 422


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"toolSlug": "nope", "input": {"imageAssetId": IMAGE}}, 404, "tool_not_found", "toolSlug"),
        ({"toolSlug": "figme", "stepId": "model", "parentTaskId": str(uuid.uuid4())}, 404, "parent_not_found",
         "parentTaskId"),
        ({"toolSlug": "figme", "input": {"imageAssetId": OTHER_IMAGE}}, 422, "asset_not_found",
         "input.imageAssetId"),
        ({"toolSlug": "figme", "input": {}}, 422, "image_required", "input.imageAssetId"),
        ({"toolSlug": "figme", "stepId": "nope", "input": {"imageAssetId": IMAGE}}, 422, "unknown_step",
         "stepId"),
    ],
    ids=["tool", "parent", "asset", "image", "step"],
)  # fmt: skip
async def test_a_refused_request_is_a_problem_with_its_code_and_field(
    http, body: dict, status: int, code: str, field: str
) -> None:
    answered, problem = await call(http, "POST", "/v1/tasks", AS_OWNER, body)

    assert (answered, problem["code"], problem["field"]) == (status, code, field)
    assert problem["status"] == status


async def test_more_tasks_than_the_cap_at_once_are_refused(http) -> None:
    for _ in range(3):
        assert (await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME))[0] == 202

    status, problem = await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME)

    assert (status, problem["code"]) == (429, "too_many_tasks")


async def test_another_users_task_looks_missing_but_an_admin_sees_it(http) -> None:
    _, task = await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME)

    hidden_status, problem = await call(http, "GET", f"/v1/tasks/{task['id']}", AS_STRANGER)
    cancel_status, _ = await call(http, "POST", f"/v1/tasks/{task['id']}/cancel", AS_STRANGER)
    admin_status, seen = await call(http, "GET", f"/v1/tasks/{task['id']}", AS_ADMIN)

    assert (hidden_status, problem["code"], cancel_status) == (404, "not_found", 404)
    assert (admin_status, seen["id"]) == (200, task["id"])


async def test_tasks_are_listed_newest_first_in_keyset_pages(http, clock) -> None:
    created = []
    for second in range(3):
        clock.set(T0.replace(second=second))
        created.append((await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME))[1]["id"])
    await call(http, "POST", f"/v1/tasks/{created[0]}/cancel", AS_OWNER)

    _, first = await call(http, "GET", "/v1/tasks?limit=2", AS_OWNER)
    _, rest = await call(http, "GET", f"/v1/tasks?limit=2&cursor={first['next_cursor']}", AS_OWNER)
    _, cancelled = await call(http, "GET", "/v1/tasks?status=cancelled", AS_OWNER)
    _, theirs = await call(http, "GET", "/v1/tasks", AS_STRANGER)
    _, admin = await call(http, "GET", f"/v1/admin/tasks?user_id={OWNER}&tool=figme", AS_ADMIN)
    forged_status, _ = await call(http, "GET", "/v1/tasks?cursor=forged", AS_OWNER)

    assert [t["id"] for t in first["items"] + rest["items"]] == created[::-1]
    assert rest["next_cursor"] is None
    assert all(set(t) == TASK_FIELDS | FAMILY_FIELDS for t in first["items"])
    assert all(set(t) == TASK_FIELDS | {"deleted_at"} for t in admin["items"])
    assert [t["id"] for t in cancelled["items"]] == [created[0]]
    assert theirs == {"items": [], "next_cursor": None}
    assert len(admin["items"]) == 3
    assert forged_status == 422


async def test_a_tool_counts_its_started_tasks_once_each_and_not_their_child_tasks(http, app) -> None:
    _, task = await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME)
    _, waiting = await call(http, "POST", "/v1/tasks", AS_OWNER, FIGME)
    reserved = CreditsReserved(
        user_id=OWNER, reservation_id=task["id"], amount=12, balance_after=0, reserved_after=12
    )

    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        await c.deliver_event(reserved)
        await c.deliver_event(reserved.model_copy(update={}))  # the same news again, as a new event

    status, tool = await call(http, "GET", f"/v1/admin/tools/{task['tool_id']}", AS_ADMIN)
    assert status == 200
    assert tool["usage_count"] == 1, "one started task; the pending one is not a use yet"
    assert waiting["status"] == "pending"
