"""What the gateway composes from several services, over hand-written fakes of their ports: the creations
page and a task's page with their files' URLs (tasks + storage), and an admin's view of a user (identity,
credits and tasks at once, all or nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from funmagic_contracts.api.credits import AdminUserCredits
from funmagic_contracts.api.identity import UserView
from funmagic_contracts.api.storage import AssetUrl
from funmagic_contracts.api.tasks import AdminTaskQuery, TaskPage, TaskQuery
from funmagic_gateway.application.ports import Caller
from funmagic_gateway.application.task_views import URLS_PER_CALL, TaskViews
from funmagic_gateway.application.user_overview import RECENT, UserOverviews
from funmagic_gateway.application.views import CreationPage, TaskDetail
from funmagic_kit.errors import NotFound, TransientError

USER, ADMIN_CALLER = "user-1", Caller(token="an-admins-token", client_ip="198.51.100.9")
CALLER = Caller(token="a-users-token")
WHEN = "2026-03-01T12:00:00+00:00"


def task(task_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "user_id": USER,
        "tool_id": "tool-1",
        "tool_slug": "figme",
        "status": "completed",
        "step_ids": ["image-gen", "3d-gen"],
        "completed_step_ids": ["image-gen"],
        "price": 50,
        "created_at": WHEN,
        **fields,
    }


def outputs(*asset_ids: str) -> list[dict[str, str]]:
    return [{"asset_id": asset_id, "role": "image"} for asset_id in asset_ids]


def payload(steps: dict[str, list[str]], output: list[str] | None = None) -> dict[str, Any]:
    return {
        "input": {"prompt": "a cat"},
        "steps": [
            {"step_id": step_id, "attempt": 1, "assets": outputs(*ids), "metadata": {"seed": 7}}
            for step_id, ids in steps.items()
        ],
        "output": {"assets": outputs(*output), "metadata": {"steps": []}} if output is not None else None,
        "error": None,
    }


def url_of(asset_id: str) -> AssetUrl:
    return AssetUrl(url=f"https://cdn.test/{asset_id}", kind="image", mime_type="image/png", filename="x.png")


@dataclass
class FakeTasks:
    page: dict[str, Any] = field(default_factory=lambda: {"items": [], "next_cursor": None})
    detail: dict[str, Any] | None = None
    searched: list[tuple[Caller, AdminTaskQuery]] = field(default_factory=list)
    asked: list[tuple[Caller, object]] = field(default_factory=list)
    failure: Exception | None = None

    async def my_tasks(self, caller: Caller, query: TaskQuery) -> CreationPage:
        self.asked.append((caller, query))
        return CreationPage.model_validate(self.page)

    async def task(self, caller: Caller, task_id: str) -> TaskDetail:
        self.asked.append((caller, task_id))
        if self.detail is None:
            raise NotFound("no such task")
        return TaskDetail.model_validate(self.detail)

    async def search(self, caller: Caller, query: AdminTaskQuery) -> TaskPage:
        self.searched.append((caller, query))
        if self.failure is not None:
            raise self.failure
        return TaskPage.model_validate(
            {"items": [task(f"t-{n}") for n in range(query.limit + 2)], "next_cursor": "more"}
        )


@dataclass
class FakeStorage:
    """Knows `owned` assets of USER (deleted ones are simply not among them)."""

    owned: set[str] = field(default_factory=set)
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    async def urls(self, user_id: str, asset_ids: Sequence[str]) -> Mapping[str, AssetUrl]:
        assert len(asset_ids) <= URLS_PER_CALL
        self.calls.append((user_id, list(asset_ids)))
        return {a: url_of(a) for a in asset_ids if user_id == USER and a in self.owned}


def views(tasks: FakeTasks, storage: FakeStorage) -> TaskViews:
    return TaskViews(tasks=tasks, assets=storage)


# --- my creations ------------------------------------------------------------------------------------


async def test_each_task_and_child_of_a_page_gets_its_thumbnail_url_from_one_storage_call() -> None:
    tasks = FakeTasks(
        page={
            "items": [
                task("t-1", thumbnail_asset_id="a-1", children=[task("c-1", thumbnail_asset_id="a-3")]),
                task("t-2", thumbnail_asset_id=None, children=[task("c-2")]),
                task("t-3", thumbnail_asset_id="a-gone"),
                task("t-4", thumbnail_asset_id="a-1"),
            ],
            "next_cursor": "next-page",
        }
    )
    storage = FakeStorage(owned={"a-1", "a-3"})

    page = await views(tasks, storage).my_tasks(CALLER, USER, TaskQuery(category="image"))

    assert storage.calls == [(USER, ["a-1", "a-3", "a-gone"])], "one call, the ids present, each once"
    assert [item.thumbnail_url for item in page.items] == [
        "https://cdn.test/a-1",
        None,
        None,  # its file was deleted: no URL
        "https://cdn.test/a-1",
    ]
    assert [child.thumbnail_url for child in page.items[0].children or []] == ["https://cdn.test/a-3"]
    assert page.next_cursor == "next-page"
    assert tasks.asked == [(CALLER, TaskQuery(category="image"))]


async def test_a_page_without_thumbnails_asks_storage_nothing() -> None:
    tasks = FakeTasks(page={"items": [task("t-1", children=[task("c-1")])], "next_cursor": None})
    storage = FakeStorage()

    page = await views(tasks, storage).my_tasks(CALLER, USER, TaskQuery())

    assert storage.calls == []
    assert page.items[0].thumbnail_url is None


async def test_more_thumbnails_than_storage_takes_at_once_are_asked_for_in_batches() -> None:
    items = [task(f"t-{n}", thumbnail_asset_id=f"a-{n}") for n in range(URLS_PER_CALL + 5)]
    storage = FakeStorage(owned={f"a-{n}" for n in range(URLS_PER_CALL + 5)})

    page = await views(FakeTasks(page={"items": items}), storage).my_tasks(CALLER, USER, TaskQuery())

    assert [len(ids) for _, ids in storage.calls] == [URLS_PER_CALL, 5]
    assert all(item.thumbnail_url == f"https://cdn.test/{item.thumbnail_asset_id}" for item in page.items)


async def test_the_family_fields_pass_through_and_the_thumbnail_url_is_in_the_answer() -> None:
    tasks = FakeTasks(
        page={
            "items": [
                task(
                    "t-1",
                    effective_status="action_required",
                    credits_total=20,
                    thumbnail_asset_id="a-1",
                    tool_type={"id": "tt-1", "name": "3d"},
                )
            ]
        }
    )

    page = await views(tasks, FakeStorage(owned={"a-1"})).my_tasks(CALLER, USER, TaskQuery())
    (item,) = page.model_dump(mode="json")["items"]

    assert (item["effective_status"], item["credits_total"], item["tool_type"]) == (
        "action_required",
        20,
        {"id": "tt-1", "name": "3d"},
    )
    assert item["thumbnail_url"] == "https://cdn.test/a-1"


# --- a task's page -----------------------------------------------------------------------------------


async def test_every_output_of_a_task_and_its_children_gets_its_url_from_one_storage_call() -> None:
    detail = task(
        "t-1",
        payload=payload({"image-gen": ["a-1", "a-2"]}, output=["a-2"]),
        children=[task("c-1", parent_task_id="t-1", payload=payload({"3d-gen": ["a-3", "a-gone"]}))],
    )
    storage = FakeStorage(owned={"a-1", "a-2", "a-3"})

    shown = await views(FakeTasks(detail=detail), storage).task(CALLER, "t-1")

    assert storage.calls == [(USER, ["a-1", "a-2", "a-3", "a-gone"])]
    body = shown.model_dump(mode="json")
    assert [a["url"] for a in body["payload"]["steps"][0]["assets"]] == [
        "https://cdn.test/a-1",
        "https://cdn.test/a-2",
    ]
    assert body["payload"]["output"]["assets"][0]["url"] == "https://cdn.test/a-2"
    child_assets = body["children"][0]["payload"]["steps"][0]["assets"]
    assert [(a["asset_id"], a["url"]) for a in child_assets] == [
        ("a-3", "https://cdn.test/a-3"),
        ("a-gone", None),
    ]


async def test_the_payload_keeps_what_tasks_wrote_besides_the_urls() -> None:
    detail = task("t-1", payload=payload({"image-gen": ["a-1"]}, output=["a-1"]))

    shown = await views(FakeTasks(detail=detail), FakeStorage(owned={"a-1"})).task(CALLER, "t-1")
    body = shown.model_dump(mode="json")["payload"]

    assert body["input"] == {"prompt": "a cat"}
    assert body["error"] is None
    assert body["steps"][0]["metadata"] == {"seed": 7}
    assert body["steps"][0]["attempt"] == 1
    assert body["output"]["metadata"] == {"steps": []}
    assert body["steps"][0]["assets"][0] == {
        "asset_id": "a-1",
        "role": "image",
        "url": "https://cdn.test/a-1",
    }


async def test_an_admin_reading_a_task_gets_the_urls_of_its_owners_files() -> None:
    storage = FakeStorage(owned={"a-1"})
    tasks = FakeTasks(detail=task("t-1", payload=payload({"image-gen": ["a-1"]})))

    shown = await views(tasks, storage).task(ADMIN_CALLER, "t-1")

    assert storage.calls == [(USER, ["a-1"])], "the owner's files, whoever reads the task"
    assert tasks.asked == [(ADMIN_CALLER, "t-1")], "tasks decides whether the caller may see it"
    assert shown.payload is not None
    assert shown.payload.steps[0].assets[0].url == "https://cdn.test/a-1"


async def test_a_task_without_outputs_asks_storage_nothing_and_a_missing_one_is_not_found() -> None:
    storage = FakeStorage()
    pending = task("t-1", status="pending", payload=payload({}))

    shown = await views(FakeTasks(detail=pending), storage).task(CALLER, "t-1")

    assert storage.calls == []
    assert shown.payload is not None
    assert shown.payload.output is None
    with pytest.raises(NotFound):
        await views(FakeTasks(detail=None), storage).task(CALLER, "t-2")


# --- an admin's view of a user -----------------------------------------------------------------------


def user_view(user_id: str) -> UserView:
    return UserView.model_validate(
        {
            "id": user_id,
            "email": "ada@example.com",
            "name": "Ada",
            "role": "user",
            "email_verified": True,
            "created_at": WHEN,
            "updated_at": WHEN,
            "session_count": 2,
        }
    )


@dataclass
class FakeUsers:
    failure: Exception | None = None
    asked: list[tuple[Caller, str]] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def user(self, caller: Caller, user_id: str) -> UserView:
        self.asked.append((caller, user_id))
        self.started.set()
        if self.failure is not None:
            raise self.failure
        return user_view(user_id)


@dataclass
class FakeCredits:
    failure: Exception | None = None
    asked: list[tuple[Caller, str, int]] = field(default_factory=list)
    wait_for: asyncio.Event | None = None

    async def user_credits(self, caller: Caller, user_id: str, *, transactions: int) -> AdminUserCredits:
        self.asked.append((caller, user_id, transactions))
        if self.wait_for is not None:
            # Answers only once identity was asked too: the parts are asked for at once.
            await asyncio.wait_for(self.wait_for.wait(), 1)
        if self.failure is not None:
            raise self.failure
        items = [
            {
                "id": str(n),
                "type": "spend",
                "amount": -5,
                "balance_after": 40 - 5 * n,
                "description": "Background Remove",
                "created_at": WHEN,
            }
            for n in range(transactions)
        ]
        return AdminUserCredits.model_validate(
            {
                "user_id": user_id,
                "balance": 40,
                "reserved_balance": 5,
                "lifetime_earned": 50,
                "lifetime_spent": 5,
                "transactions": {"items": items, "next_cursor": "older"},
            }
        )


def overviews(users: FakeUsers, credits: FakeCredits, tasks: FakeTasks) -> UserOverviews:
    return UserOverviews(users=users, credits=credits, tasks=tasks)


async def test_the_overview_has_the_account_balance_latest_transactions_and_tasks_asked_at_once() -> None:
    users, tasks = FakeUsers(), FakeTasks()
    credits = FakeCredits(wait_for=users.started)

    overview = await overviews(users, credits, tasks).overview(ADMIN_CALLER, USER)

    assert (overview.user.id, overview.user.session_count) == (USER, 2)
    assert (overview.credits.balance, overview.credits.reserved_balance) == (40, 5)
    assert len(overview.transactions) == RECENT == 10
    assert [t.id for t in overview.tasks] == [f"t-{n}" for n in range(RECENT)]
    assert users.asked == [(ADMIN_CALLER, USER)]
    assert credits.asked == [(ADMIN_CALLER, USER, RECENT)]
    assert tasks.searched == [(ADMIN_CALLER, AdminTaskQuery(user_id=USER, limit=RECENT))]
    assert "transactions" not in overview.model_dump()["credits"]


@pytest.mark.parametrize("failing", ["users", "credits", "tasks"])
async def test_one_part_failing_fails_the_whole_overview(failing: str) -> None:
    down = TransientError(f"{failing} is not reachable")
    users = FakeUsers(failure=down if failing == "users" else None)
    credits = FakeCredits(failure=down if failing == "credits" else None)
    tasks = FakeTasks(failure=down if failing == "tasks" else None)

    with pytest.raises(TransientError, match=failing):
        await overviews(users, credits, tasks).overview(ADMIN_CALLER, USER)


async def test_an_unknown_user_is_identitys_refusal_even_when_another_part_failed_too() -> None:
    users = FakeUsers(failure=NotFound("no such user"))
    credits = FakeCredits(failure=TransientError("credits is not reachable"))

    with pytest.raises(NotFound):
        await overviews(users, credits, FakeTasks()).overview(ADMIN_CALLER, USER)
