"""The provider registry on real Postgres and Redis: keys are ciphertext at rest, rotate, never shown;
a wrong master key is caught at start; health checks record changes as events."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from funmagic_kit.crypto import generate_secret_key
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.errors import ConfigError
from funmagic_kit.settings import load_settings
from funmagic_providers.adapters.rate_limiter import ProviderRateLimiter
from funmagic_providers.application.registry import ProviderExists, ProviderNotFound, ProviderRegistry
from funmagic_providers.bootstrap import build
from funmagic_providers.config import ProvidersSettings
from funmagic_providers.domain.errors import ProviderRejected
from funmagic_providers.domain.providers import InvalidProvider

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "fakes"))

from openai_api import FakeOpenAI

KEY_A, KEY_B = generate_secret_key(), generate_secret_key()
SECRET = "sk-test-very-secret-0123456789abcd"


def settings(master_keys: str = f"a:{KEY_A}") -> ProvidersSettings:
    return load_settings(
        ProvidersSettings,
        env={
            "KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "REDIS_URL": "redis://unused", "DATABASE_URL": "postgresql://x",
            "INTERNAL_API_TOKEN": "t" * 32, "AUTH_JWKS_URL": "http://unused", "STORAGE_URL": "http://unused",
            "SECRET_KEY": KEY_A, "PROVIDER_MASTER_KEYS": master_keys,
        },
    )  # fmt: skip


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def registry_for(pool, redis, session):
    def registry(master_keys: str = f"a:{KEY_A}") -> ProviderRegistry:
        return build(settings(master_keys), pool=pool, redis=redis, http=session).registry

    return registry


async def raw_rows(pool) -> list[dict]:
    async with PostgresUnitOfWork(pool) as uow:
        cursor = await uow.conn.execute("SELECT * FROM providers UNION ALL SELECT * FROM admin_providers")
        return await cursor.fetchall()


async def outbox_types(pool) -> list[str]:
    async with PostgresUnitOfWork(pool) as uow:
        cursor = await uow.conn.execute("SELECT headers FROM outbox ORDER BY id")
        rows = await cursor.fetchall()
    return [dict((k, v) for k, v in row["headers"]).get("type", "") for row in rows]


async def test_the_stored_key_is_ciphertext_and_answers_show_only_a_hint(pool, registry_for) -> None:
    registry = registry_for()
    view = await registry.create(
        "web", name="openai", type="openai", api_key=SECRET, base_url="https://api.x/v1"
    )
    assert view["api_key_hint"] == "••••abcd"
    assert view["has_api_key"] is True
    assert SECRET not in repr(view)
    (row,) = await raw_rows(pool)
    assert row["api_key_id"] == "a"
    assert SECRET.encode() not in bytes(row["api_key_ciphertext"])
    assert len(row["api_key_ciphertext"]) > len(SECRET)
    access = await registry.access("web", "openai")
    assert access.api_key == SECRET
    assert SECRET not in repr(access)


async def test_rotation_re_encrypts_every_key_under_the_new_master_key(pool, registry_for) -> None:
    await registry_for().create("web", name="fal", type="fal", api_key="fal-key-1", base_url="https://q.fal")
    await registry_for().create(
        "admin", name="tripo", type="tripo", api_key="tsk_key_2", base_url="https://t"
    )
    before = {r["name"]: bytes(r["api_key_ciphertext"]) for r in await raw_rows(pool)}
    rotating = registry_for(f"b:{KEY_B},a:{KEY_A}")
    assert await rotating.rotate_keys() == 2
    rows = await raw_rows(pool)
    assert {r["api_key_id"] for r in rows} == {"b"}
    assert all(bytes(r["api_key_ciphertext"]) != before[r["name"]] for r in rows)
    only_new = registry_for(f"b:{KEY_B}")
    assert await only_new.verify_keys() == 2
    assert (await only_new.access("admin", "tripo")).api_key == "tsk_key_2"
    assert await rotating.rotate_keys() == 0


async def test_a_wrong_master_key_fails_loudly_at_start(registry_for) -> None:
    await registry_for().create("web", name="openai", type="openai", api_key=SECRET, base_url="https://a/v1")
    with pytest.raises(ConfigError, match="cannot decrypt the API key"):
        await registry_for(f"a:{KEY_B}").verify_keys()
    with pytest.raises(ConfigError, match="cannot decrypt"):
        await registry_for(f"c:{KEY_B}").verify_keys()


TENCENT_ID, TENCENT_KEY = "AKIDtencentSecretId0001", "tencent-secret-key-0000-wxyz"


async def test_a_two_part_credential_keeps_its_secret_sealed_apart_and_shows_only_hints(
    pool, registry_for
) -> None:
    registry = registry_for()
    view = await registry.create(
        "web", name="hunyuan", type="hunyuan", api_key=TENCENT_ID, api_secret=TENCENT_KEY,
        base_url="https://ai3d.tencentcloudapi.com",
    )  # fmt: skip

    assert (view["has_api_secret"], view["api_secret_hint"]) == (True, "••••wxyz")
    assert TENCENT_KEY not in repr(view)
    (row,) = await raw_rows(pool)
    assert row["api_secret_id"] == "a"
    assert TENCENT_KEY.encode() not in bytes(row["api_secret_ciphertext"])
    access = await registry.access("web", "hunyuan")
    assert (access.api_key, access.api_secret) == (TENCENT_ID, TENCENT_KEY)
    assert TENCENT_KEY not in repr(access)


async def test_a_hunyuan_provider_needs_its_secret_and_others_take_none(registry_for) -> None:
    registry = registry_for()
    with pytest.raises(InvalidProvider, match="apiSecret"):
        await registry.create("web", name="hunyuan", type="hunyuan", api_key=TENCENT_ID, base_url="https://t")
    with pytest.raises(InvalidProvider, match="apiSecret"):
        await registry.create(
            "web", name="fal", type="fal", api_key="k" * 20, api_secret="stray", base_url="https://q.fal"
        )
    created = await registry.create(
        "web",
        name="hunyuan",
        type="hunyuan",
        api_key=TENCENT_ID,
        api_secret=TENCENT_KEY,
        base_url="https://t",
    )
    with pytest.raises(InvalidProvider, match="apiSecret"):
        await registry.update("web", created["id"], {"api_secret": None})
    changed = await registry.update("web", created["id"], {"api_secret": "another-secret-key-9876"})
    assert changed["api_secret_hint"] == "••••9876"
    assert (await registry.access("web", "hunyuan")).api_secret == "another-secret-key-9876"


async def test_rotation_and_the_start_check_cover_secrets_too(pool, registry_for) -> None:
    await registry_for().create(
        "web",
        name="hunyuan",
        type="hunyuan",
        api_key=TENCENT_ID,
        api_secret=TENCENT_KEY,
        base_url="https://t",
    )
    rotating = registry_for(f"b:{KEY_B},a:{KEY_A}")

    assert await rotating.rotate_keys() == 1

    (row,) = await raw_rows(pool)
    assert (row["api_key_id"], row["api_secret_id"]) == ("b", "b")
    only_new = registry_for(f"b:{KEY_B}")
    assert await only_new.verify_keys() == 1
    assert (await only_new.access("web", "hunyuan")).api_secret == TENCENT_KEY
    async with PostgresUnitOfWork(pool) as uow:  # the secret's ciphertext where the key's belongs
        await uow.conn.execute("UPDATE providers SET api_key_ciphertext = api_secret_ciphertext")
    with pytest.raises(ConfigError, match="cannot decrypt"):
        await only_new.verify_keys()


async def test_crud_with_validation_and_conflicts(registry_for) -> None:
    registry = registry_for()
    created = await registry.create(
        "web", name="tripo", type="tripo", api_key="tsk_1", base_url="https://t/v2"
    )
    with pytest.raises(ProviderExists):
        await registry.create("web", name="tripo", type="tripo", api_key="tsk_2", base_url="https://t/v2")
    # The same name in the other scope is another provider.
    await registry.create("admin", name="tripo", type="tripo", api_key="tsk_3", base_url="https://t/v2")
    with pytest.raises(InvalidProvider, match="apiKey"):
        await registry.create("web", name="fal", type="fal", base_url="https://q.fal")
    updated = await registry.update(
        "web", created["id"], {"config": {"rateLimit": {"maxConcurrency": 2}}, "api_key": "tsk_new_key_5678"}
    )
    assert updated["config"] == {"rateLimit": {"maxConcurrency": 2}}
    assert updated["api_key_hint"] == "••••5678"
    assert (await registry.access("web", "tripo")).api_key == "tsk_new_key_5678"
    page = await registry.list("web", limit=10, cursor=None)
    assert [p["name"] for p in page["items"]] == ["tripo"]
    await registry.delete("web", created["id"])
    with pytest.raises(ProviderNotFound):
        await registry.get("web", created["id"])
    with pytest.raises(ProviderRejected, match="no web provider"):
        await registry.access("web", "tripo")


async def test_moving_a_provider_to_another_base_url_needs_its_key_again(registry_for) -> None:
    registry = registry_for()
    created = await registry.create(
        "web", name="openai", type="openai", api_key=SECRET, base_url="https://api.openai.com/v1"
    )
    # The stored key would go to the new address at the next call or health check.
    with pytest.raises(InvalidProvider, match="apiKey"):
        await registry.update("web", created["id"], {"base_url": "https://collector.example"})
    access = await registry.access("web", "openai")
    assert (access.base_url, access.api_key) == ("https://api.openai.com/v1", SECRET)

    # The same address sent again (as the admin app's form does) changes nothing and needs no key.
    await registry.update(
        "web", created["id"], {"base_url": "https://api.openai.com/v1/", "display_name": "O"}
    )
    moved = await registry.update(
        "web", created["id"], {"base_url": "https://proxy.example/v1", "api_key": "sk-proxy-key-4321"}
    )
    assert (moved["base_url"], moved["api_key_hint"]) == ("https://proxy.example/v1", "••••4321")


async def test_pages_are_cut_in_sql_by_name(registry_for) -> None:
    registry = registry_for()
    for name in ("p3", "p1", "p2", "p5", "p4"):
        await registry.create("web", name=name, type="local")
    first = await registry.list("web", limit=2, cursor=None)
    second = await registry.list("web", limit=2, cursor=first["next_cursor"])
    third = await registry.list("web", limit=2, cursor=second["next_cursor"])
    assert [p["name"] for p in first["items"] + second["items"] + third["items"]] == [
        "p1",
        "p2",
        "p3",
        "p4",
        "p5",
    ]
    assert third["next_cursor"] is None


async def test_an_inactive_provider_refuses_steps_and_local_works_without_a_row(registry_for) -> None:
    registry = registry_for()
    created = await registry.create("web", name="fal", type="fal", api_key="k" * 20, base_url="https://q.fal")
    await registry.update("web", created["id"], {"is_active": False})
    with pytest.raises(ProviderRejected, match="turned off"):
        await registry.access("web", "fal")
    local = await registry.access("web", "local")
    assert (local.type, local.api_key) == ("local", None)


async def test_an_edit_applies_at_once_here_and_to_other_replicas_when_their_copy_expires(
    pool, redis, session
) -> None:
    registry = build(settings(), pool=pool, redis=redis, http=session).registry
    # Another replica's limiter: it keeps the limits it read for a few seconds (its clock is ours).
    monotonic = _Monotonic()
    other = ProviderRateLimiter(redis, registry.rate_limit_source, monotonic=monotonic)
    created = await registry.create(
        "web", name="openai", type="openai", api_key=SECRET, base_url="https://a/v1",
        config={"rateLimit": {"maxConcurrency": 1}},
    )  # fmt: skip
    assert (await registry.config_cache.config("web", "openai")).max_concurrency == 1
    assert (await other.config("web", "openai")).max_concurrency == 1

    await registry.update("web", created["id"], {"config": {"rateLimit": {"maxConcurrency": 7}}})

    assert (await registry.config_cache.config("web", "openai")).max_concurrency == 7
    assert (await other.config("web", "openai")).max_concurrency == 1
    monotonic.now += 5.0
    assert (await other.config("web", "openai")).max_concurrency == 7
    await redis.delete("prl:web:{openai}:config")


class _Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_health_checks_record_changes_as_events(pool, registry_for) -> None:
    async with FakeOpenAI(api_key=SECRET) as fake:
        registry = registry_for()
        created = await registry.create(
            "web", name="openai", type="openai", api_key=SECRET, base_url=fake.url
        )
        checked = await registry.check_health("web", created["id"])
        assert checked["is_healthy"] is True
        assert datetime.fromisoformat(checked["health_checked_at"]) <= datetime.now(UTC)
        await registry.check_health("web", created["id"])  # unchanged: no second event
        await registry.update("web", created["id"], {"api_key": "sk-wrong-key-000000000"})
        assert (await registry.check_health("web", created["id"]))["is_healthy"] is False
        assert await registry.check_all() == 1
    assert (await outbox_types(pool)).count("ProviderHealthChanged") == 2
