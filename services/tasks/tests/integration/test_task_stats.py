"""The admin overview's figures of tasks (`GET /v1/admin/stats/tasks`) on real Postgres, over the internal
HTTP API: tasks are created over HTTP and moved on with credits' and providers' events (as Kafka would
deliver them) at pinned times, then counted in SQL — exact numbers per window, every bucket present, an
empty window all zeros, child tasks and deleted tasks counted, and who may ask."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from funmagic_contracts.api import tasks as api
from funmagic_contracts.api.coverage import assert_reply_covers
from funmagic_contracts.base import OutputAsset
from funmagic_contracts.credits.events import CreditsReserved
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepOutput
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.config import TasksSettings

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=30, seconds=10)  # the 1 h period: 07:31 to 08:31, in minutes
U1, U2, U3 = (str(uuid.uuid4()) for _ in range(3))
AS_ADMIN = {"X-Test-Role": "admin", "X-Test-User": str(uuid.uuid4())}
IMAGE = str(uuid.uuid4())
STATS = "/v1/admin/stats/tasks"
OUTPUT = StepOutput(assets=(OutputAsset(asset_id=str(uuid.uuid4()), role="image"),))


def as_user(user_id: str) -> dict[str, str]:
    return {"X-Test-Role": "user", "X-Test-User": user_id}


def at(hours: int, minutes: int, seconds: int = 0) -> datetime:
    return datetime(2026, 6, 1, hours, minutes, seconds, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def app(settings: TasksSettings, pool, clock, ports) -> Tasks:
    built = build(settings, pool=pool, http=None, clock=clock, **ports)
    image = await built.catalog.create_tool_type(name="image", display_name="Image")
    gen = {"id": "gen", "name": "Gen", "type": "image-gen", "cost": 10, "provider": {"name": "local"},
           "input": {"image": "optional"}}  # fmt: skip
    model = {"id": "model", "name": "Model", "type": "3d-gen", "cost": 7, "provider": {"name": "local"},
             "input": {"image": "optional"}}  # fmt: skip
    config = {"steps": [gen, model], "pipeline": False}
    await built.catalog.create_tool(slug="figme", title="FigMe", tool_type_id=image["id"], config=config)
    return built


@pytest.fixture
async def http(app: Tasks, serve) -> AsyncIterator[aiohttp.ClientSession]:
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
    """Creates tasks over HTTP and moves them on, each at the time given."""

    def __init__(self, http: aiohttp.ClientSession, consumer: InMemoryConsumer, clock: ManualClock) -> None:
        self.http, self.consumer, self.clock = http, consumer, clock

    async def create(self, when: datetime, user_id: str, **fields: object) -> str:
        self.clock.set(when)
        body = {"toolSlug": "figme", "stepId": "gen", "input": {"imageAssetId": IMAGE}, **fields}
        status, task = await call(self.http, "POST", "/v1/tasks", as_user(user_id), body)
        assert status == 202, task
        assert task is not None
        return str(task["id"])

    async def start(self, when: datetime, task_id: str, user_id: str) -> None:
        self.clock.set(when)
        await self.consumer.deliver_event(
            CreditsReserved(user_id=user_id, reservation_id=task_id, amount=10, balance_after=0,
                            reserved_after=10)
        )  # fmt: skip

    async def complete(self, when: datetime, task_id: str, user_id: str, step_id: str = "gen") -> None:
        self.clock.set(when)
        await self.consumer.deliver_event(
            StepCompleted(task_id=task_id, user_id=user_id, step_id=step_id, attempt=1, output=OUTPUT)
        )

    async def fail(self, when: datetime, task_id: str, user_id: str, step_id: str) -> None:
        self.clock.set(when)
        await self.consumer.deliver_event(
            StepFailed(task_id=task_id, user_id=user_id, step_id=step_id, attempt=1, error_code="provider",
                       error_message="no", retryable=False)
        )  # fmt: skip

    async def act(self, when: datetime, method: str, path: str, user_id: str) -> None:
        self.clock.set(when)
        status, body = await call(self.http, method, path, as_user(user_id))
        assert status in (200, 204), body


@pytest.fixture
def saga(http, consumer, clock) -> Saga:
    return Saga(http, consumer, clock)


async def stats(http: aiohttp.ClientSession, query: str = "") -> dict:
    status, body = await call(http, "GET", STATS + query, AS_ADMIN)
    assert status == 200, body
    assert body is not None
    assert_reply_covers(api.TaskStats, body)  # the gateway's reply model keeps every member
    return body


def nonzero_buckets(body: dict) -> dict[datetime, tuple[int, int, int]]:
    return {
        datetime.fromisoformat(p["at"]): (p["created"], p["completed"], p["failed"])
        for p in body["series"]
        if (p["created"], p["completed"], p["failed"]) != (0, 0, 0)
    }


@pytest.fixture
async def history(saga: Saga) -> dict[str, str]:
    """One hour of tasks (times UTC; the 1 h period at NOW is 07:31–08:31):

    old   U1  created 07:20 (before the period), completed 08:05
    b     U1  created 08:10:20, completed 08:12:05
    c     U1  b's child task (the next step): created 08:15:30, failed 08:15:45
    d     U2  created 08:15:40, cancelled 08:16, then deleted 08:17
    e     U2  created 08:20:00, running
    f     U3  created 08:20:30, pending
    late  U3  created 08:40 (after the 1 h period, inside the 24 h one), pending
    """
    old = await saga.create(at(7, 20), U1)
    await saga.start(at(7, 20, 1), old, U1)
    await saga.complete(at(8, 5), old, U1)
    b = await saga.create(at(8, 10, 20), U1)
    await saga.start(at(8, 10, 21), b, U1)
    await saga.complete(at(8, 12, 5), b, U1)
    c = await saga.create(at(8, 15, 30), U1, stepId="model", parentTaskId=b, input={})
    await saga.start(at(8, 15, 31), c, U1)
    await saga.fail(at(8, 15, 45), c, U1, "model")
    d = await saga.create(at(8, 15, 40), U2)
    await saga.act(at(8, 16), "POST", f"/v1/tasks/{d}/cancel", U2)
    await saga.act(at(8, 17), "DELETE", f"/v1/tasks/{d}", U2)
    e = await saga.create(at(8, 20), U2)
    await saga.start(at(8, 20, 1), e, U2)
    f = await saga.create(at(8, 20, 30), U3)
    late = await saga.create(at(8, 40), U3)
    saga.clock.set(NOW)
    return {"old": old, "b": b, "c": c, "d": d, "e": e, "f": f, "late": late}


async def test_the_last_hour_counts_every_task_of_it_exactly_minute_by_minute(http, history) -> None:
    body = await stats(http, "?window=1h")

    assert (body["window"], body["bucket_seconds"]) == ("1h", 60)
    assert datetime.fromisoformat(body["since"]) == at(7, 31)
    assert datetime.fromisoformat(body["until"]) == at(8, 31)
    # b, its child c, the deleted d, e and f; not old (before) nor late (after).
    assert body["created"] == 5
    assert body["by_status"] == {"pending": 1, "running": 1, "completed": 1, "failed": 1, "cancelled": 1}
    # Ended in the hour: old and b completed (old was created before it), c failed; d's cancel is neither.
    assert body["finished"] == {"completed": 2, "failed": 1}
    assert body["success_rate"] == pytest.approx(2 / 3)
    assert body["active_users"] == 3
    series = body["series"]
    assert len(series) == 60
    assert [datetime.fromisoformat(p["at"]) for p in series] == [
        at(7, 31) + timedelta(minutes=n) for n in range(60)
    ]
    assert nonzero_buckets(body) == {
        at(8, 5): (0, 1, 0),
        at(8, 10): (1, 0, 0),
        at(8, 12): (0, 1, 0),
        at(8, 15): (2, 0, 1),
        at(8, 20): (2, 0, 0),
    }
    assert sum(p["created"] for p in series) == body["created"]


async def test_each_window_has_its_bucket_size_and_every_bucket(http, history) -> None:
    day = await stats(http)  # the default window: a day, in quarter hours

    assert (day["window"], day["bucket_seconds"], len(day["series"])) == ("24h", 900, 96)
    assert datetime.fromisoformat(day["until"]) == at(8, 45)
    assert day["created"] == 7  # every task, late (08:40) too
    assert day["by_status"] == {"pending": 2, "running": 1, "completed": 2, "failed": 1, "cancelled": 1}
    assert (day["finished"], day["active_users"]) == ({"completed": 2, "failed": 1}, 3)
    assert nonzero_buckets(day) == {
        at(7, 15): (1, 0, 0),  # old created
        at(8, 0): (1, 2, 0),  # b created; old and b completed
        at(8, 15): (4, 0, 1),  # c, d, e, f created; c failed
        at(8, 30): (1, 0, 0),  # late created
    }
    assert sum(p["created"] for p in day["series"]) == 7
    for window, size, count in (("7d", 7200, 84), ("30d", 43_200, 60)):
        body = await stats(http, f"?window={window}")
        assert (body["bucket_seconds"], len(body["series"]), body["created"]) == (size, count, 7), window
        steps = {b - a for a, b in zip(
            (datetime.fromisoformat(p["at"]) for p in body["series"]),
            (datetime.fromisoformat(p["at"]) for p in body["series"][1:]), strict=False)}  # fmt: skip
        assert steps == {timedelta(seconds=size)}, window


async def test_a_window_without_tasks_is_all_zeros_and_has_no_success_rate(http, clock, history) -> None:
    clock.set(NOW + timedelta(days=60))

    body = await stats(http, "?window=7d")

    assert body["created"] == body["active_users"] == 0
    assert body["by_status"] == dict.fromkeys(("pending", "running", "completed", "failed", "cancelled"), 0)
    assert body["finished"] == {"completed": 0, "failed": 0}
    assert body["success_rate"] is None
    assert len(body["series"]) == 84
    assert nonzero_buckets(body) == {}


async def test_a_fresh_database_has_figures_too(http) -> None:
    body = await stats(http, "?window=1h")

    assert (body["created"], body["success_rate"], len(body["series"])) == (0, None, 60)


async def test_only_admins_may_ask_and_only_for_a_known_window(http) -> None:
    asked = {}
    for who, headers in {
        "anonymous": {},
        "user": as_user(U1),
        "admin": AS_ADMIN,
        "super_admin": {"X-Test-Role": "super_admin", "X-Test-User": str(uuid.uuid4())},
    }.items():
        asked[who], _ = await call(http, "GET", STATS, headers)

    assert asked == {"anonymous": 401, "user": 403, "admin": 200, "super_admin": 200}
    for bad in ("2h", "1H", "", "24"):
        status, problem = await call(http, "GET", f"{STATS}?window={bad}", AS_ADMIN)
        assert status == 422, (bad, problem)
    status, _ = await call(http, "GET", f"{STATS}?window=1h&bucket=5", AS_ADMIN)
    assert status == 422, "unknown parameters are refused"
