"""What the runtime and operators get from identity's SPEC, on the adapters `open_runtime` opens (the
migrated database, Redis; no Kafka): the serving build with its signing key, and the operator commands."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from funmagic_identity.bootstrap import SPEC
from funmagic_identity.config import IdentitySettings
from funmagic_kit.runtime import Runtime, open_runtime

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def runtime(settings: IdentitySettings) -> AsyncIterator[Runtime]:
    async with open_runtime(SPEC, settings) as opened:
        yield opened


async def signing_keys(pool: AsyncConnectionPool) -> list[tuple[str, bool]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT kid, retired_at IS NOT NULL AS retired FROM signing_keys ORDER BY created_at"
        )
        return [(row["kid"], row["retired"]) for row in await cursor.fetchall()]


async def role_of(pool: AsyncConnectionPool, email: str) -> str | None:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT role FROM users WHERE email = %s", (email,))
        row = await cursor.fetchone()
    return row["role"] if row else None


async def test_the_serving_build_creates_a_signing_key_before_traffic(
    runtime: Runtime, pool: AsyncConnectionPool
) -> None:
    parts = await SPEC.build(runtime)

    ((_, retired),) = await signing_keys(pool)
    assert not retired
    paths = {route.path for route in parts.routes if isinstance(route, web.RouteDef)}
    assert {"/.well-known/jwks.json", "/v1/users", "/v1/dev/mail"} <= paths
    assert parts.unit_of_work is not None
    assert parts.subscriptions == ()  # identity reacts to no other service's events


async def test_create_admin_creates_a_verified_super_admin_with_the_password_from_the_environment(
    runtime: Runtime,
    pool: AsyncConnectionPool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FUNMAGIC_ADMIN_PASSWORD", PASSWORD)

    code = await SPEC.commands["create-admin"](runtime, ["--email", "Root@Example.com", "--name", "Root"])

    output = capsys.readouterr().out
    assert code == 0, output
    assert output.startswith("created super_admin root@example.com (")
    assert PASSWORD not in output
    assert await role_of(pool, "root@example.com") == "super_admin"


async def test_create_admin_promotes_an_existing_account_without_a_password(
    runtime: Runtime,
    pool: AsyncConnectionPool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FUNMAGIC_ADMIN_PASSWORD", PASSWORD)
    assert await SPEC.commands["create-admin"](runtime, ["--email", "first@example.com"]) == 0
    monkeypatch.delenv("FUNMAGIC_ADMIN_PASSWORD")
    capsys.readouterr()

    code = await SPEC.commands["create-admin"](runtime, ["--email", "first@example.com"])

    assert code == 0
    assert capsys.readouterr().out.startswith("promoted super_admin first@example.com (")


async def test_create_admin_with_a_weak_password_is_refused_with_exit_code_1(
    runtime: Runtime,
    pool: AsyncConnectionPool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FUNMAGIC_ADMIN_PASSWORD", "short")

    code = await SPEC.commands["create-admin"](runtime, ["--email", "root@example.com"])

    assert code == 1
    assert capsys.readouterr().out.startswith("refused: use at least 10 characters")
    assert await role_of(pool, "root@example.com") is None


async def test_rotate_signing_key_retires_the_current_key_and_signs_with_a_new_one(
    runtime: Runtime, pool: AsyncConnectionPool, capsys: pytest.CaptureFixture[str]
) -> None:
    await SPEC.build(runtime)
    ((old_kid, _),) = await signing_keys(pool)

    code = await SPEC.commands["rotate-signing-key"](runtime, [])

    assert code == 0
    ((retired_kid, retired), (new_kid, new_retired)) = await signing_keys(pool)
    assert (retired_kid, retired, new_retired) == (old_kid, True, False)
    assert capsys.readouterr().out.startswith(f"new signing key {new_kid};")
