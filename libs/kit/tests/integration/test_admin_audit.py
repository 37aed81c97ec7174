"""The audit log in a service's database: an entry is written with its change (and only if it commits), by
whom, with no secret; read back newest first in keyset pages, filtered."""

from __future__ import annotations

import json
import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.api.audit import AuditEntry, AuditQuery
from funmagic_kit.audit import AdminAction, bind_actor
from funmagic_kit.audit_log import audit_page, record_admin_action
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.pagination import InvalidCursor

KEY = "sk-live-do-not-keep-QzKw"
ADMIN_1, ADMIN_2 = str(uuid.uuid4()), str(uuid.uuid4())


async def rows(pool: AsyncConnectionPool) -> list[dict]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT * FROM admin_audit ORDER BY at, id")
        return await cursor.fetchall()


async def record(pool: AsyncConnectionPool, action: AdminAction, *, caller: str | None = None) -> None:
    """One admin write in a transaction of its own, by the request's `caller`."""
    with bind_actor(caller):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.conn.execute("INSERT INTO orders (id) VALUES (%s)", (str(uuid.uuid4()),))
            uow.record(action)


async def walk(pool: AsyncConnectionPool, **filters: object) -> list[AuditEntry]:
    """Every entry matching `filters`, page after page of two."""
    walked: list[AuditEntry] = []
    cursor = None
    while True:
        page = await audit_page(pool, "tasks", AuditQuery(limit=2, cursor=cursor, **filters))  # type: ignore[arg-type]
        assert len(page.items) <= 2
        walked += page.items
        cursor = page.next_cursor
        if cursor is None:
            return walked


async def test_an_entry_commits_with_its_change_as_the_callers_with_no_secret(pool) -> None:
    changes = {"api_key": KEY, "config": {"rateLimit": {"maxConcurrency": 2}}, "name": "openai"}

    await record(
        pool, AdminAction("provider.updated", "provider", "p-1", changes, "rotation"), caller=ADMIN_1
    )

    [row] = await rows(pool)
    assert (row["actor_id"], row["action"], row["subject_type"], row["subject_id"], row["reason"]) == (
        ADMIN_1,
        "provider.updated",
        "provider",
        "p-1",
        "rotation",
    )
    assert row["changes"] == {
        "api_key": "changed",
        "config": {"rateLimit": {"maxConcurrency": 2}},
        "name": "openai",
    }
    kept = json.dumps(row["changes"])
    assert KEY not in kept
    assert KEY[-4:] not in kept
    assert row["id"].version == 7, "ids are UUIDv7, like the rest of the platform's"


async def test_a_rolled_back_change_leaves_no_entry(pool) -> None:
    async def refused_change() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            await uow.conn.execute("INSERT INTO orders (id) VALUES ('refused')")
            uow.record(AdminAction("tool.updated", "tool", "t-1", {"title": "New"}))
            raise RuntimeError("the change was refused")

    with pytest.raises(RuntimeError):
        await refused_change()

    assert await rows(pool) == []


async def test_the_actor_the_use_case_names_wins_over_the_requests_caller(pool) -> None:
    await record(pool, AdminAction("task.cancelled", "task", "t-1", actor_id=ADMIN_2), caller=ADMIN_1)
    await record(pool, AdminAction("tool.deleted", "tool", "t-2"))  # a CLI: nobody

    assert [(row["action"], row["actor_id"]) for row in await rows(pool)] == [
        ("task.cancelled", ADMIN_2),
        ("tool.deleted", None),
    ]


async def test_the_function_writes_on_the_callers_connection_and_transaction(pool) -> None:
    async def replay(conn, event_id: str, *, fail: bool) -> None:
        async with conn.transaction():
            await record_admin_action(
                conn,
                actor_id=ADMIN_1,
                action="event.replayed",
                subject_type="event",
                subject_id=event_id,
                changes={"origin_topic": "tasks.events", "token": "t0ps3cret"},
            )
            if fail:
                raise RuntimeError("rolled back")

    async with pool.connection() as conn:
        await replay(conn, "e-1", fail=False)
        with pytest.raises(RuntimeError):
            await replay(conn, "e-2", fail=True)

    [row] = await rows(pool)
    assert (row["subject_id"], row["changes"], row["reason"]) == (
        "e-1",
        {"origin_topic": "tasks.events", "token": "changed"},
        None,
    )


async def test_pages_walk_every_entry_once_newest_first_and_filters_narrow_them(pool) -> None:
    for n in range(5):
        await record(pool, AdminAction("tool.updated", "tool", f"tool-{n % 2}", {"n": n}), caller=ADMIN_1)
    await record(pool, AdminAction("user.disabled", "user", "u-1", reason="spam"), caller=ADMIN_2)
    written = await rows(pool)

    walked = await walk(pool)

    assert [e.id for e in walked] == [str(row["id"]) for row in reversed(written)]
    assert [(e.at, e.id) for e in walked] == sorted(((e.at, e.id) for e in walked), reverse=True)
    assert {e.service for e in walked} == {"tasks"}
    assert [e.changes["n"] for e in await walk(pool, subject_type="tool", subject_id="tool-0")] == [4, 2, 0]
    assert [e.action for e in await walk(pool, actor_id=ADMIN_2)] == ["user.disabled"]
    assert [e.changes["n"] for e in await walk(pool, action="tool.updated", subject_id="tool-1")] == [3, 1]
    third, fifth = written[2]["at"], written[4]["at"]
    assert [e.changes.get("n") for e in await walk(pool, after=third, before=fifth)] == [3, 2]
    assert await walk(pool, action="tool.deleted") == []


async def test_a_forged_cursor_is_refused(pool) -> None:
    with pytest.raises(InvalidCursor):
        await audit_page(pool, "tasks", AuditQuery(cursor="bm90LWEtY3Vyc29y"))
