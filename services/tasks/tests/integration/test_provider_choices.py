"""A step's provider choices over the internal HTTP API and Postgres: a tool saved with `choices` (each
provider checked in the registry), shown to users, and a task that picks one runs its step on the chosen
provider — the `StepRequested` providers rate-limits by names it — with the pick stored with the task."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from funmagic_contracts.credits.events import CreditsReserved
from funmagic_contracts.envelope import Envelope
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.config import TasksSettings
from funmagic_tasks.domain.catalog import InvalidCatalogEntry

OWNER, IMAGE = str(uuid.uuid4()), str(uuid.uuid4())
AS_OWNER = {"X-Test-Role": "user", "X-Test-User": OWNER}
STEP = {
    "id": "3d-gen", "name": "3D", "type": "3d-gen", "cost": 30,
    "provider": {"name": "local", "model": "default", "options": {"grid": 24}},
    "input": {"image": "required", "prompt": "none"},
    "choices": [
        {"provider": "local"},
        {"provider": "tripo", "label": "Tripo", "models": ["v2.5-20250123", "v3.0-20250812"],
         "options": {"face_limit": {"type": "integer", "min": 1000, "max": 50000},
                     "pbr": {"type": "boolean"}}},
    ],
}  # fmt: skip


@pytest.fixture
def app(settings: TasksSettings, pool, assets, ports) -> Tasks:
    assets.owned = {(OWNER, IMAGE)}
    return build(settings, pool=pool, http=None, clock=ManualClock(datetime(2026, 5, 4, tzinfo=UTC)), **ports)


@pytest.fixture
async def http(app: Tasks, serve) -> AsyncIterator[aiohttp.ClientSession]:
    image_type = await app.catalog.create_tool_type(name="three-d", display_name="3D")
    await app.catalog.create_tool(
        slug="image-to-3d", title="Image to 3D", tool_type_id=image_type["id"],
        config={"steps": [STEP], "pipeline": False},
    )  # fmt: skip
    async with serve(app.parts.routes) as session:
        yield session


async def step_requests(pool) -> list[dict]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    decoded = [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]
    return [e.data for e in decoded if e.type == "StepRequested"]


async def test_a_tool_may_offer_only_providers_of_the_registry(app, http) -> None:
    image_type = await app.catalog.create_tool_type(name="other", display_name="Other")
    unknown = {**STEP, "choices": [{"provider": "local"}, {"provider": "hunyuan-x"}]}
    with pytest.raises(InvalidCatalogEntry) as caught:
        await app.catalog.create_tool(
            slug="nope", title="Nope", tool_type_id=image_type["id"], config={"steps": [unknown]}
        )
    assert caught.value.field == "config.steps[0].choices[1].provider"


async def test_a_picked_provider_runs_the_step_and_is_stored_with_the_task(app, http, pool) -> None:
    async with http.get("/v1/tools/image-to-3d") as response:
        shown = (await response.json())["config"]["steps"][0]["choices"]
    assert [(c["provider"], c["default"]) for c in shown] == [("local", True), ("tripo", False)]

    pick = {"name": "tripo", "model": "v3.0-20250812", "options": {"face_limit": 5000, "pbr": False}}
    body = {"toolSlug": "image-to-3d", "input": {"imageAssetId": IMAGE, "provider": pick}}
    async with http.post("/v1/tasks", json=body, headers=AS_OWNER) as response:
        assert response.status == 202, await response.text()
        task = await response.json()
    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        await c.deliver_event(
            CreditsReserved(
                user_id=OWNER, reservation_id=task["id"], amount=30, balance_after=0, reserved_after=30
            )
        )

    (requested,) = await step_requests(pool)
    assert (requested["provider"], requested["model"]) == ("tripo", "v3.0-20250812")
    assert requested["input"]["options"] == {"face_limit": 5000, "pbr": False}
    async with http.get(f"/v1/tasks/{task['id']}", headers=AS_OWNER) as response:
        assert (await response.json())["payload"]["input"]["provider"] == pick


async def test_a_pick_the_step_does_not_allow_is_refused(http) -> None:
    pick = {"name": "tripo", "options": {"face_limit": 10}}
    body = {"toolSlug": "image-to-3d", "input": {"imageAssetId": IMAGE, "provider": pick}}
    async with http.post("/v1/tasks", json=body, headers=AS_OWNER) as response:
        problem = await response.json()
    assert (response.status, problem["code"], problem["field"]) == (
        422, "option_out_of_range", "input.provider.options.face_limit",
    )  # fmt: skip
