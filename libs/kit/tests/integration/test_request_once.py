"""A creation a client may retry happens once per Idempotency-Key (`UnitOfWork.claim` / `created`): the first
request claims the key and creates; a retry finds what it created; the key with another request is refused;
two requests with one key at once create once; a rolled-back creation leaves the key free. `answered` reads a
key's committed answer without claiming it."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.request_once import IdempotencyKeyReused, RequestKey, request_fingerprint
from funmagic_kit.testing import wait_until, waiting_for_a_lock


@pytest.fixture
async def things(pool) -> str:
    """A table the tests create rows in, as a service's creation would."""
    table = f"things_{uuid.uuid4().hex[:8]}"
    async with pool.connection() as conn:
        await conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, name text NOT NULL)")
    return table


def a_key(body: dict[str, object], key: str = "k-1") -> RequestKey:
    return RequestKey(f"things.create:admin-{uuid.uuid4().hex[:6]}", key, request_fingerprint(body))


async def create_once(
    pool, table: str, key: RequestKey, name: str, *, hold: asyncio.Event | None = None
) -> str:
    """A service's creation: claim the key, create unless it was claimed before, say what was created."""
    async with PostgresUnitOfWork(pool) as uow:
        earlier = await uow.claim(key)
        if earlier is not None:
            return earlier
        thing_id = uuid.uuid4().hex
        await uow.conn.execute(f"INSERT INTO {table} (id, name) VALUES (%s, %s)", (thing_id, name))
        uow.created(key, thing_id)
        if hold is not None:
            await hold.wait()
        return thing_id


async def count(pool, table: str) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute(f"SELECT count(*) AS n FROM {table}")
        return (await cursor.fetchone())["n"]


def test_a_fingerprint_is_the_same_for_the_same_body_however_its_keys_are_ordered() -> None:
    assert request_fingerprint({"a": 1, "b": [1, 2]}) == request_fingerprint({"b": [1, 2], "a": 1})
    assert request_fingerprint({"a": 1}) != request_fingerprint({"a": 2})


def test_a_fingerprint_keeps_nothing_of_a_secret() -> None:
    assert request_fingerprint({"name": "openai", "api_key": "sk-one"}) == request_fingerprint(
        {"name": "openai", "api_key": "sk-two"}
    )
    assert request_fingerprint({"api_key": "sk-one"}) != request_fingerprint({"api_key": None})


async def test_a_retry_answers_with_what_the_first_request_created(pool, things: str) -> None:
    key = a_key({"name": "lamp"})

    first = await create_once(pool, things, key, "lamp")
    again = await create_once(pool, things, key, "lamp")

    assert again == first
    assert await count(pool, things) == 1


async def test_the_key_with_another_request_is_refused(pool, things: str) -> None:
    key = a_key({"name": "lamp"})
    await create_once(pool, things, key, "lamp")

    other = RequestKey(key.scope, key.key, request_fingerprint({"name": "chair"}))
    with pytest.raises(IdempotencyKeyReused) as refused:
        await create_once(pool, things, other, "chair")

    assert (refused.value.code, refused.value.field) == ("idempotency_key_reused", "Idempotency-Key")
    assert await count(pool, things) == 1


async def test_the_same_key_in_another_scope_is_another_request(pool, things: str) -> None:
    mine, theirs = a_key({"name": "lamp"}), a_key({"name": "lamp"})  # two admins, one key

    assert await create_once(pool, things, mine, "lamp") != await create_once(pool, things, theirs, "lamp")
    assert await count(pool, things) == 2


async def test_two_requests_with_one_key_at_once_create_once(pool, things: str) -> None:
    key = a_key({"name": "lamp"})
    hold = asyncio.Event()
    first = asyncio.create_task(create_once(pool, things, key, "lamp", hold=hold))
    await wait_until_claimed(pool, key)
    second = asyncio.create_task(create_once(pool, things, key, "lamp"))
    # The second claim waits for the first transaction.
    await wait_until(lambda: waiting_for_a_lock(pool), timeout=10, what="the second claim waiting")

    hold.set()

    assert await second == await first
    assert await count(pool, things) == 1


async def test_a_creation_that_rolled_back_leaves_the_key_free(pool, things: str) -> None:
    key = a_key({"name": "lamp"})
    with pytest.raises(RuntimeError):
        await claim_and_fail(pool, key)

    created = await create_once(pool, things, key, "lamp")

    assert await count(pool, things) == 1
    assert created


async def answered(pool, key: RequestKey) -> str | None:
    async with PostgresUnitOfWork(pool).reading() as uow:
        return await uow.answered(key)


async def test_what_a_key_answered_is_read_without_claiming_it_and_only_once_committed(
    pool, things: str
) -> None:
    key = a_key({"name": "lamp"})
    assert await answered(pool, key) is None, "nothing asked yet"

    hold = asyncio.Event()
    first = asyncio.create_task(create_once(pool, things, key, "lamp", hold=hold))
    await wait_until_claimed(pool, key)
    assert await answered(pool, key) is None, "claimed, not committed: no wait, no answer"
    hold.set()
    created = await first

    assert await answered(pool, key) == created
    with pytest.raises(IdempotencyKeyReused):
        await answered(pool, RequestKey(key.scope, key.key, request_fingerprint({"name": "chair"})))
    assert await answered(pool, a_key({"name": "lamp"})) is None, "another admin's key"


async def claim_and_fail(pool, key: RequestKey) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.claim(key) is None
        raise RuntimeError("the creation failed")


async def wait_until_claimed(pool, key: RequestKey) -> None:
    """The first transaction has claimed the key and waits, its row inserted but not committed."""
    await wait_for(
        pool,
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE datname = current_database() AND state = 'idle in transaction'",
        1,
    )


async def wait_for(pool, query: str, at_least: int) -> None:
    async def reached() -> None:
        while True:
            async with pool.connection() as conn:
                cursor = await conn.execute(query)
                if (await cursor.fetchone())["n"] >= at_least:
                    return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(reached(), timeout=10)
