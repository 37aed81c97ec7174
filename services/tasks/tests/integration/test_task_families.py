"""A task with its child tasks (its family) on real Postgres, over the internal HTTP API: the creations list
(top-level tasks with their families folded in, the family's effective status, credits and thumbnail,
filters and keyset pages cut in SQL), one task's detail with its children, and deleting a task (its running
members cancelled first, all of them soft-deleted, one TaskDeleted). The saga is driven by credits and
providers events on the in-memory consumer, as Kafka would deliver them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.api import tasks as api
from funmagic_contracts.api.coverage import assert_reply_covers
from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepOutput
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.config import TasksSettings

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
OWNER, STRANGER, ADMIN_ID = (str(uuid.uuid4()) for _ in range(3))
AS_OWNER = {"X-Test-Role": "user", "X-Test-User": OWNER}
AS_STRANGER = {"X-Test-Role": "user", "X-Test-User": STRANGER}
AS_ADMIN = {"X-Test-Role": "admin", "X-Test-User": ADMIN_ID}
IMAGE = str(uuid.uuid4())
FAMILY_FIELDS = {"children", "effective_status", "credits_total", "thumbnail_asset_id", "tool_type"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(settings: TasksSettings, pool, clock, ports) -> Tasks:
    return build(settings, pool=pool, http=None, clock=clock, **ports)


@pytest.fixture
async def types(app: Tasks) -> dict[str, str]:
    """Two tool types and their tools: `figme` (image: gen 10 → model 7, step by step, as the user
    chooses) and `cutout` (photo: cut 5 → model 7, a pipeline)."""
    image = await app.catalog.create_tool_type(name="image", display_name="Image")
    photo = await app.catalog.create_tool_type(name="photo", display_name="Photo")
    gen = {"id": "gen", "name": "Gen", "type": "image-gen", "cost": 10, "provider": {"name": "local"},
           "input": {"image": "optional"}}  # fmt: skip
    cut = {"id": "cut", "name": "Cut", "type": "remove-bg", "cost": 5, "provider": {"name": "local"},
           "input": {"image": "required"}}  # fmt: skip
    model = {"id": "model", "name": "Model", "type": "3d-gen", "cost": 7, "provider": {"name": "local"},
             "input": {"image": "optional"}}  # fmt: skip
    await app.catalog.create_tool(
        slug="figme",
        title="FigMe",
        tool_type_id=image["id"],
        config={"steps": [gen, model], "pipeline": False},
    )
    await app.catalog.create_tool(
        slug="cutout", title="Cutout", tool_type_id=photo["id"], config={"steps": [cut, model]}
    )
    return {"image": image["id"], "photo": photo["id"]}


@pytest.fixture
async def http(app: Tasks, types, serve) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve(app.parts.routes) as session:
        yield session


@pytest.fixture
async def consumer(app: Tasks) -> AsyncIterator[InMemoryConsumer]:
    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        yield c


async def call(
    http: aiohttp.ClientSession, method: str, path: str, headers: dict[str, str], body: object = None
) -> tuple[int, dict | None]:
    async with http.request(method, path, json=body, headers=headers) as response:
        return response.status, (await response.json() if response.status != 204 else None)


class Saga:
    """Creates tasks over HTTP and moves them on with credits' and providers' events."""

    def __init__(self, http: aiohttp.ClientSession, consumer: InMemoryConsumer, clock: ManualClock) -> None:
        self.http, self.consumer, self.clock = http, consumer, clock

    async def create(self, tool: str, headers: dict[str, str] = AS_OWNER, **fields: object) -> str:
        self.clock.advance(seconds=1)  # a task a second: newest first is creation order
        body = {"toolSlug": tool, "input": {"imageAssetId": IMAGE}, **fields}
        status, task = await call(self.http, "POST", "/v1/tasks", headers, body)
        assert status == 202, task
        assert task is not None
        return str(task["id"])

    async def reserve(self, task_id: str, user_id: str = OWNER) -> None:
        await self.consumer.deliver_event(
            CreditsReserved(
                user_id=user_id, reservation_id=task_id, amount=1, balance_after=0, reserved_after=1
            )
        )

    async def complete(self, task_id: str, step_id: str, *assets: tuple[str, str]) -> None:
        output = StepOutput(assets=tuple(OutputAsset(asset_id=a, role=r) for a, r in assets))
        await self.consumer.deliver_event(
            StepCompleted(task_id=task_id, user_id=OWNER, step_id=step_id, attempt=1, output=output)
        )

    async def fail(self, task_id: str, step_id: str) -> None:
        await self.consumer.deliver_event(
            StepFailed(task_id=task_id, user_id=OWNER, step_id=step_id, attempt=1, error_code="provider",
                       error_message="no", retryable=False)
        )  # fmt: skip

    async def mine(self, query: str = "") -> list[dict]:
        status, page = await call(self.http, "GET", f"/v1/tasks{query}", AS_OWNER)
        assert status == 200, page
        assert page is not None
        assert_reply_covers(api.TaskPage, page)  # the gateway's reply model keeps every field
        return list(page["items"])


@pytest.fixture
def saga(http, consumer, clock) -> Saga:
    return Saga(http, consumer, clock)


async def outbox(pool: AsyncConnectionPool) -> list[Envelope]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    return [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]


# --- the creations list --------------------------------------------------------------------------------


async def test_a_chained_step_is_folded_into_its_parent_and_the_family_adds_up(saga: Saga, types) -> None:
    parent = await saga.create("figme")
    await saga.reserve(parent)
    await saga.complete(parent, "gen", ("gen-image", "image"))

    (waiting,) = await saga.mine()
    assert set(waiting) >= FAMILY_FIELDS
    assert (waiting["id"], waiting["status"], waiting["effective_status"]) == (
        parent, "completed", "action_required")  # fmt: skip
    assert (waiting["credits_total"], waiting["thumbnail_asset_id"], waiting["children"]) == (
        10, "gen-image", [])  # fmt: skip
    assert waiting["tool_type"] == {"id": types["image"], "name": "image"}

    child = await saga.create("figme", stepId="model", parentTaskId=parent, input={})
    (pending,) = await saga.mine()
    await saga.reserve(child)
    (running,) = await saga.mine()
    await saga.complete(child, "model", ("child-model", "model"), ("child-preview", "preview"))
    (done,) = await saga.mine()

    assert (pending["effective_status"], running["effective_status"]) == ("running", "running")
    assert [c["id"] for c in running["children"]] == [child]
    assert set(running["children"][0]) == set(waiting) - FAMILY_FIELDS  # the task view, no payload
    assert (done["status"], done["effective_status"]) == ("completed", "completed")
    assert (done["credits_total"], done["thumbnail_asset_id"]) == (17, "child-preview")
    assert [(c["id"], c["status"], c["charged_credits"]) for c in done["children"]] == [
        (child, "completed", 7)
    ]


async def test_the_thumbnail_is_the_first_image_output_else_the_preview_and_the_latest_status_wins(
    saga: Saga,
) -> None:
    pipeline = await saga.create("cutout")  # cut → model in one task
    await saga.reserve(pipeline)
    await saga.complete(pipeline, "cut", ("cut-image", "image"))
    await saga.complete(pipeline, "model", ("model-file", "model"), ("model-preview", "preview"))
    failed = await saga.create("figme")
    await saga.reserve(failed)
    await saga.fail(failed, "gen")
    cancelled = await saga.create("cutout")
    await call(saga.http, "POST", f"/v1/tasks/{cancelled}/cancel", AS_OWNER)

    listed = {item["id"]: item for item in await saga.mine()}

    assert (listed[pipeline]["effective_status"], listed[pipeline]["thumbnail_asset_id"]) == (
        "completed", "cut-image")  # fmt: skip
    assert listed[pipeline]["credits_total"] == 12
    ended = [(listed[t]["effective_status"], listed[t]["thumbnail_asset_id"]) for t in (failed, cancelled)]
    assert ended == [("failed", None), ("cancelled", None)]
    assert (listed[failed]["credits_total"], listed[cancelled]["credits_total"]) == (0, 0)


async def test_the_list_filters_by_effective_status_tool_and_category_in_keyset_pages(saga: Saga) -> None:
    waiting = []
    for _ in range(3):
        task = await saga.create("figme")
        await saga.reserve(task)
        await saga.complete(task, "gen", ("img", "image"))
        waiting.append(task)
    running = await saga.create("cutout")
    await saga.reserve(running)
    other_users = await saga.create("figme", headers=AS_STRANGER)

    first = await call(saga.http, "GET", "/v1/tasks?status=action_required&limit=2", AS_OWNER)
    assert first[1] is not None
    rest = await saga.mine(f"?status=action_required&limit=2&cursor={first[1]['next_cursor']}")

    assert [t["id"] for t in first[1]["items"] + rest] == waiting[::-1]
    assert [t["id"] for t in await saga.mine("?status=running")] == [running]
    assert [t["id"] for t in await saga.mine("?category=photo")] == [running]
    assert [t["id"] for t in await saga.mine("?tool=figme&category=image")] == waiting[::-1]
    assert await saga.mine("?category=image&tool=cutout") == []
    assert await saga.mine("?status=completed") == []
    assert other_users not in [t["id"] for t in await saga.mine()]
    assert (await call(saga.http, "GET", "/v1/tasks?status=deleted", AS_OWNER))[0] == 422


async def test_one_tasks_detail_has_its_children_with_their_payloads(saga: Saga) -> None:
    parent = await saga.create("figme")
    await saga.reserve(parent)
    await saga.complete(parent, "gen", ("gen-image", "image"))
    child = await saga.create("figme", stepId="model", parentTaskId=parent, input={})
    await saga.reserve(child)
    await saga.complete(child, "model", ("child-model", "model"))

    status, detail = await call(saga.http, "GET", f"/v1/tasks/{parent}", AS_OWNER)
    _, of_child = await call(saga.http, "GET", f"/v1/tasks/{child}", AS_OWNER)

    assert status == 200
    assert detail is not None
    assert_reply_covers(api.Task, detail)
    assert detail["payload"]["steps"][0]["assets"] == [{"asset_id": "gen-image", "role": "image"}]
    (shown,) = detail["children"]
    assert (shown["id"], shown["parent_task_id"]) == (child, parent)
    assert shown["payload"]["steps"][0]["assets"] == [{"asset_id": "child-model", "role": "model"}]
    assert of_child is not None
    assert of_child["children"] == []


# --- deleting ------------------------------------------------------------------------------------------


async def test_deleting_a_running_family_cancels_it_first_and_hides_it_but_keeps_it(
    saga: Saga, pool, clock
) -> None:
    parent = await saga.create("figme")
    await saga.reserve(parent)
    await saga.complete(parent, "gen", ("gen-image", "image"))
    child = await saga.create("figme", stepId="model", parentTaskId=parent, input={})
    await saga.reserve(child)
    kept = await saga.create("cutout")
    before = len(await outbox(pool))
    clock.advance(minutes=1)

    status, _ = await call(saga.http, "DELETE", f"/v1/tasks/{parent}", AS_OWNER)

    assert status == 204
    events = (await outbox(pool))[before:]
    assert [(e.type, e.subject) for e in events] == [
        ("TaskCancelRequested", child), ("TaskCancelled", child), ("TaskDeleted", parent)]  # fmt: skip
    assert events[1].data["charged_credits"] == 0
    assert events[2].data == {
        "task_id": parent, "user_id": OWNER, "deleted_task_ids": [parent, child], "by": OWNER}  # fmt: skip
    assert [t["id"] for t in await saga.mine()] == [kept]
    for task_id in (parent, child):
        assert (await call(saga.http, "GET", f"/v1/tasks/{task_id}", AS_OWNER))[0] == 404
        assert (await call(saga.http, "GET", f"/v1/tasks/{task_id}", AS_ADMIN))[0] == 404
    assert (await call(saga.http, "DELETE", f"/v1/tasks/{parent}", AS_OWNER))[0] == 404
    assert (await call(saga.http, "POST", f"/v1/tasks/{child}/cancel", AS_OWNER))[0] == 404

    _, hidden = await call(saga.http, "GET", f"/v1/admin/tasks?user_id={OWNER}", AS_ADMIN)
    _, audit = await call(saga.http, "GET", f"/v1/admin/tasks?user_id={OWNER}&include_deleted=true", AS_ADMIN)
    assert hidden is not None
    assert audit is not None
    assert_reply_covers(api.TaskPage, audit)
    assert [t["id"] for t in hidden["items"]] == [kept]
    assert [(t["id"], t["status"], t["deleted_at"]) for t in audit["items"]] == [
        (kept, "pending", None),
        (child, "cancelled", (clock.now()).isoformat()),
        (parent, "completed", (clock.now()).isoformat()),
    ]


async def test_news_for_a_deleted_task_only_discards_its_output_and_it_cannot_be_continued(
    saga: Saga, pool
) -> None:
    parent = await saga.create("figme")
    await saga.reserve(parent)
    await saga.complete(parent, "gen", ("gen-image", "image"))
    running = await saga.create("cutout")
    await saga.reserve(running)
    for task_id in (parent, running):
        assert (await call(saga.http, "DELETE", f"/v1/tasks/{task_id}", AS_OWNER))[0] == 204
    before = len(await outbox(pool))

    await saga.complete(running, "cut", ("late", "image"))
    status, problem = await call(
        saga.http, "POST", "/v1/tasks", AS_OWNER,
        {"toolSlug": "figme", "stepId": "model", "parentTaskId": parent, "input": {}},
    )  # fmt: skip

    added = (await outbox(pool))[before:]
    assert [(e.type, e.data["asset_ids"]) for e in added] == [("StepOutputDiscarded", ["late"])]
    assert problem is not None
    assert (status, problem["code"]) == (404, "parent_not_found")


async def test_only_the_owner_or_an_admin_deletes_a_task_and_a_child_alone_leaves_its_parent(
    saga: Saga, pool
) -> None:
    parent = await saga.create("figme")
    await saga.reserve(parent)
    await saga.complete(parent, "gen", ("gen-image", "image"))
    child = await saga.create("figme", stepId="model", parentTaskId=parent, input={})
    theirs = await saga.create("cutout", headers=AS_STRANGER)

    assert (await call(saga.http, "DELETE", f"/v1/tasks/{parent}", AS_STRANGER))[0] == 404
    assert (await call(saga.http, "DELETE", f"/v1/tasks/{child}", AS_OWNER))[0] == 204
    assert (await call(saga.http, "DELETE", f"/v1/tasks/{theirs}", AS_ADMIN))[0] == 204
    assert (await call(saga.http, "DELETE", "/v1/tasks/not-a-uuid", AS_OWNER))[0] == 404

    (listed,) = await saga.mine()
    assert (listed["id"], listed["children"], listed["effective_status"]) == (parent, [], "action_required")
    deleted = [e for e in await outbox(pool) if e.type == "TaskDeleted"]
    assert [(e.data["task_id"], e.data["user_id"], e.data["by"]) for e in deleted] == [
        (child, OWNER, OWNER), (theirs, STRANGER, ADMIN_ID)]  # fmt: skip
