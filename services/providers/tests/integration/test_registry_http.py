"""The registry's internal HTTP API on real Postgres: a provider created again with its Idempotency-Key (the
admin's retry after a lost answer) is created once, in either scope."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from funmagic_kit.testing import serve_routes
from funmagic_providers.entrypoints.http import ProvidersApp


@pytest.fixture
async def api(build_providers) -> AsyncIterator[aiohttp.ClientSession]:
    """The registry's routes as the runtime serves them."""
    async with serve_routes(ProvidersApp(build_providers().registry).routes(), "providers") as session:
        yield session


async def post(api: aiohttp.ClientSession, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    async with api.post(path, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize(
    ("path", "role"),
    [("/v1/admin/providers", "admin"), ("/v1/admin/admin-providers", "super_admin")],
    ids=["web", "admin"],
)
async def test_a_provider_posted_again_with_its_idempotency_key_is_created_once(
    api: aiohttp.ClientSession, path: str, role: str
) -> None:
    admin = {"X-Test-User": str(uuid.uuid4()), "X-Test-Role": role}
    keyed = {**admin, "Idempotency-Key": "provider-1"}
    body = {
        "name": "openai",
        "type": "openai",
        "api_key": "sk-test-0123456789",
        "base_url": "https://api.x/v1",
    }

    first = await post(api, path, body, keyed)
    again = await post(api, path, body, keyed)  # the admin's retry after a lost answer
    reused = await post(api, path, {**body, "name": "openai-2"}, keyed)
    unkeyed = await post(api, path, body, admin)
    async with api.get(path, headers=admin) as response:
        listed = (await response.json())["items"]

    assert (first[0], again[0]) == (201, 201)
    assert again[1] == first[1], "the retry is answered with the provider, not a taken name"
    assert (reused[0], reused[1]["code"]) == (409, "idempotency_key_reused"), "another body is not a retry"
    assert reused[1]["field"] == "Idempotency-Key"
    assert (unkeyed[0], unkeyed[1]["code"]) == (409, "provider_exists"), "without a key: a new provider"
    assert [provider["id"] for provider in listed] == [first[1]["id"]]
