"""A provider's health history on real Postgres: every check, asked for or periodic, is kept with its
latency and, for a failure, why (never the key); pages run newest first and are cut by keyset; a
provider's history is its own and goes when the history grows old."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from funmagic_kit.clock import ManualClock
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.pagination import InvalidCursor
from funmagic_providers.application.registry import HEALTH_HISTORY_KEPT, ProviderNotFound

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "fakes"))

from faults import Fault
from openai_api import FakeOpenAI

SECRET = "sk-test-health-history-0123456789"
WRONG = "sk-wrong-health-history-98765432"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def stored_checks(pool) -> list[dict]:
    async with PostgresUnitOfWork(pool) as uow:
        cursor = await uow.conn.execute("SELECT * FROM provider_health_checks ORDER BY checked_at")
        return await cursor.fetchall()


async def test_every_check_is_kept_newest_first_with_its_latency_and_reason(build_providers, pool) -> None:
    clock = ManualClock(START)
    registry = build_providers(clock=clock).registry
    async with FakeOpenAI(api_key=SECRET) as fake:
        created = await registry.create(
            "web", name="openai", type="openai", api_key=SECRET, base_url=fake.url
        )
        fake.faults.set_latency("models", 0.15)
        await registry.check_health("web", created["id"])
        fake.faults.set_latency("models", 0)
        clock.advance(60)
        fake.faults.queue("models", Fault.server_error(503))
        await registry.check_health("web", created["id"])
        clock.advance(60)
        await registry.update("web", created["id"], {"api_key": WRONG})
        assert await registry.check_all() == 1

    history = await registry.health_history("web", created["id"], limit=10, cursor=None)
    assert [(c["trigger"], c["healthy"], c["error"]) for c in history["items"]] == [
        ("periodic", False, "the API key was refused (HTTP 401)"),
        ("manual", False, "the provider failed (HTTP 503)"),
        ("manual", True, None),
    ]
    assert [datetime.fromisoformat(c["checked_at"]) for c in history["items"]] == [
        START + timedelta(seconds=120),
        START + timedelta(seconds=60),
        START,
    ]
    assert history["items"][2]["latency_ms"] >= 150
    assert history["next_cursor"] is None
    # The fake's 401 body echoes part of the key; nothing of either key is kept.
    rows = await stored_checks(pool)
    assert len(rows) == 3
    assert not any(key[-8:] in repr(rows) for key in (SECRET, WRONG))


async def test_pages_are_cut_by_time_then_id_and_never_repeat_or_skip(build_providers) -> None:
    clock = ManualClock(START)
    registry = build_providers(clock=clock).registry
    created = await registry.create("web", name="local-a", type="local")
    for second in (0, 0, 0, 10, 20):  # three checks at one instant: the id breaks the tie
        clock.set(START + timedelta(seconds=second))
        await registry.check_health("web", created["id"])

    seen, cursor, pages = [], None, 0
    while True:
        page = await registry.health_history("web", created["id"], limit=2, cursor=cursor)
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len({c["id"] for c in seen}) == 5
    keys = [(datetime.fromisoformat(c["checked_at"]), c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=True)
    with pytest.raises(InvalidCursor):
        await registry.health_history("web", created["id"], limit=2, cursor="not-a-cursor")


async def test_a_providers_history_is_its_own_and_ends_with_it(build_providers) -> None:
    registry = build_providers(clock=ManualClock(START)).registry
    web = await registry.create("web", name="local", type="local")
    studio = await registry.create("admin", name="local", type="local")
    await registry.check_health("web", web["id"])
    await registry.check_health("admin", studio["id"])
    await registry.check_health("admin", studio["id"])

    assert len((await registry.health_history("web", web["id"], limit=10, cursor=None))["items"]) == 1
    assert len((await registry.health_history("admin", studio["id"], limit=10, cursor=None))["items"]) == 2
    # A provider is only found in its own scope, and a deleted one has no history to show.
    with pytest.raises(ProviderNotFound):
        await registry.health_history("admin", web["id"], limit=10, cursor=None)
    await registry.delete("web", web["id"])
    with pytest.raises(ProviderNotFound):
        await registry.health_history("web", web["id"], limit=10, cursor=None)


async def test_checks_older_than_the_kept_period_are_forgotten(build_providers, pool) -> None:
    clock = ManualClock(START)
    registry = build_providers(clock=clock).registry
    created = await registry.create("web", name="local", type="local")
    await registry.check_health("web", created["id"])
    clock.advance(60)
    await registry.check_health("web", created["id"])
    clock.set(START + HEALTH_HISTORY_KEPT + timedelta(seconds=30))
    await registry.check_health("web", created["id"])

    history = await registry.health_history("web", created["id"], limit=10, cursor=None)
    assert [datetime.fromisoformat(c["checked_at"]) for c in history["items"]] == [
        START + HEALTH_HISTORY_KEPT + timedelta(seconds=30),
        START + timedelta(seconds=60),
    ]
    assert len(await stored_checks(pool)) == 2
