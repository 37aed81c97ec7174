"""The composition root as the runtime calls it: `SPEC.build` checks every stored key before the service
takes traffic, and the `rotate-provider-keys` command runs on the operator runtime."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import aiohttp
import pytest
from providers_test_support import providers_settings

from funmagic_kit.crypto import generate_secret_key
from funmagic_kit.errors import ConfigError
from funmagic_kit.runtime import Runtime, open_runtime
from funmagic_providers.application.registry import ProviderRegistry
from funmagic_providers.bootstrap import SPEC, build

KEY_A, KEY_B = generate_secret_key(), generate_secret_key()


def settings(database_url: str, redis_url: str, master_keys: str):
    return providers_settings(
        DATABASE_URL=database_url, REDIS_URL=redis_url, PROVIDER_MASTER_KEYS=master_keys
    )


async def test_the_service_builds_its_parts_and_refuses_to_start_under_a_wrong_master_key(
    database_url: str, redis_url: str
) -> None:
    async with open_runtime(SPEC, settings(database_url, redis_url, f"a:{KEY_A}")) as runtime:
        parts = await SPEC.build(runtime)
        assert parts.routes
        assert parts.subscriptions
        assert parts.unit_of_work is not None
        assert len(parts.workers) == 3  # the step runner, the health checks and the lag samples
        registry = await _registry_of(runtime)
        await registry.create(
            "web", name="openai", type="openai", api_key="sk-0123456789abcdef", base_url="https://a/v1"
        )

    async with open_runtime(SPEC, settings(database_url, redis_url, f"b:{KEY_B}")) as runtime:
        with pytest.raises(ConfigError, match="cannot decrypt the API key"):
            await SPEC.build(runtime)


async def test_rotating_keys_re_encrypts_them_under_the_first_master_key(
    database_url: str, redis_url: str
) -> None:
    async with open_runtime(SPEC, settings(database_url, redis_url, f"a:{KEY_A}")) as runtime:
        registry = await _registry_of(runtime)
        await registry.create(
            "web", name="fal", type="fal", api_key="fal-key-0123456789", base_url="https://q"
        )

    out = io.StringIO()
    async with open_runtime(SPEC, settings(database_url, redis_url, f"b:{KEY_B},a:{KEY_A}")) as runtime:
        with redirect_stdout(out):
            assert await SPEC.commands["rotate-provider-keys"](runtime, []) == 0
    assert "re-encrypted 1 provider key(s); 1 key(s) decrypt" in out.getvalue()

    async with open_runtime(SPEC, settings(database_url, redis_url, f"b:{KEY_B}")) as runtime:
        await SPEC.build(runtime)  # only the new key is left, and it opens every stored key


async def _registry_of(runtime: Runtime) -> ProviderRegistry:
    http = await runtime.exit_stack.enter_async_context(aiohttp.ClientSession())
    return build(runtime.settings, pool=runtime.require_pool(), redis=runtime.redis, http=http).registry
