"""A unit of work runs its after-commit callbacks only once its transaction has committed."""

from __future__ import annotations

import pytest

from funmagic_kit.db import UnitOfWork


async def test_after_commit_callbacks_run_once_the_rows_are_visible(pool) -> None:
    seen: list[int] = []

    async def count_outbox() -> int:
        async with UnitOfWork(pool) as other:
            row = await (await other.conn.execute("SELECT count(*) AS n FROM outbox")).fetchone()
            return row["n"]

    async with UnitOfWork(pool) as uow:
        await uow.conn.execute(
            "INSERT INTO outbox (event_id, topic, key, payload) VALUES (gen_random_uuid(), 't', 'k', 'x')"
        )
        uow.after_commit(lambda: seen.append(1))
        assert seen == []  # not before the commit
    assert seen == [1]
    assert await count_outbox() == 1


async def test_after_commit_callbacks_never_run_on_rollback(pool) -> None:
    seen: list[int] = []

    async def failing_handler() -> None:
        async with UnitOfWork(pool) as uow:
            uow.after_commit(lambda: seen.append(1))
            raise RuntimeError("the handler failed")

    with pytest.raises(RuntimeError):
        await failing_handler()
    assert seen == []
