"""A user's transactions grouped by root task: the reactions record each task's root from TaskRequested,
and the grouped list holds a whole chain's charges and refunds in one group, paginated by groups."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from credits_test_support import credits_service, run
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.tasks.events import TaskCompleted, TaskOutput, TaskRequested
from funmagic_credits.adapters.queries import CreditsReads
from funmagic_credits.bootstrap import Credits
from funmagic_credits.domain.ledger import GrantCredits
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import InMemoryConsumer, in_memory_consumer


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def credits(pool: AsyncConnectionPool) -> Credits:
    return credits_service(pool, clock=ManualClock())


@pytest.fixture
async def consumer(credits: Credits) -> AsyncIterator[InMemoryConsumer]:
    async with in_memory_consumer(
        "credits", credits.parts.subscriptions, unit_of_work=credits.parts.unit_of_work
    ) as consumer:
        yield consumer


async def run_task(
    consumer: InMemoryConsumer, user: str, tool: str, price: int, charged: int, parent: str | None = None
) -> str:
    task = new_id()
    await consumer.deliver_event(
        TaskRequested(
            task_id=task, user_id=user, tool_id=new_id(), tool_slug=tool, step_ids=("s1",), price=price,
            parent_task_id=parent,
        )
    )  # fmt: skip
    await consumer.deliver_event(
        TaskCompleted(task_id=task, user_id=user, output=TaskOutput(), charged_credits=charged)
    )
    return task


async def test_a_chain_of_tasks_is_one_group_under_its_root_and_other_entries_stand_alone(
    pool: AsyncConnectionPool, consumer: InMemoryConsumer
) -> None:
    user = new_id()
    await run(pool, GrantCredits(user, 500, "promotion", "start"))
    root = await run_task(consumer, user, "figme", price=30, charged=30)
    child = await run_task(consumer, user, "image-to-3d", price=40, charged=25, parent=root)
    grandchild = await run_task(consumer, user, "background-remove", price=5, charged=5, parent=child)
    alone = await run_task(consumer, user, "background-remove", price=5, charged=5)

    page = await CreditsReads(pool).transaction_groups(user, limit=10, before=None)

    groups = page["items"]
    assert [g["root_task_id"] for g in groups] == [alone, root, None]
    chain = groups[1]
    assert chain["tool_slug"] == "figme"
    assert {e["reference_id"] for e in chain["entries"]} == {root, child, grandchild}
    assert [e["type"] for e in chain["entries"]].count("refund") == 1  # the child's unused 15
    assert chain["net_amount"] == -(30 + 25 + 5), "what the three tasks were charged"
    assert chain["first_at"] <= chain["last_at"]
    assert groups[2]["entries"][0]["type"] == "bonus"
    assert groups[2]["net_amount"] == 500
    assert page["next_cursor"] is None


async def test_pages_hold_whole_groups_and_follow_each_other(
    pool: AsyncConnectionPool, consumer: InMemoryConsumer
) -> None:
    user = new_id()
    await run(pool, GrantCredits(user, 500, "promotion", "start"))
    roots = []
    for _ in range(3):
        root = await run_task(consumer, user, "figme", price=10, charged=10)
        await run_task(consumer, user, "image-to-3d", price=10, charged=10, parent=root)
        roots.append(root)
    reads = CreditsReads(pool)

    first = await reads.transaction_groups(user, limit=2, before=None)
    second = await reads.transaction_groups(user, limit=2, before=int(first["next_cursor"]))

    assert [g["root_task_id"] for g in first["items"]] == [roots[2], roots[1]]
    assert [g["root_task_id"] for g in second["items"]] == [roots[0], None]
    assert all(len(g["entries"]) == 2 for g in first["items"] + second["items"][:1])
    assert second["next_cursor"] is None


async def test_another_users_groups_are_never_listed(
    pool: AsyncConnectionPool, consumer: InMemoryConsumer
) -> None:
    ada, bob = new_id(), new_id()
    await run(pool, GrantCredits(ada, 100, "promotion", "start"))
    await run_task(consumer, ada, "figme", price=10, charged=10)

    page = await CreditsReads(pool).transaction_groups(bob, limit=10, before=None)

    assert page == {"items": [], "next_cursor": None}
