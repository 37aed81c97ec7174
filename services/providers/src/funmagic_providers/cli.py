"""Operator commands: `python -m funmagic_providers <command>`."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

import aiohttp

from funmagic_kit.db import create_pool
from funmagic_kit.migrations import migrate_database
from funmagic_kit.redis import create_redis

__all__ = ["COMMANDS"]


async def rotate_provider_keys(settings: Any, argv: Sequence[str]) -> int:
    """Re-encrypt every provider key under the current master key (the first of PROVIDER_MASTER_KEYS).

    Rotation: put the new key first and keep the old one listed, restart the services, run this, then
    drop the old key from the list.
    """
    from funmagic_providers.bootstrap import build_registry

    async with AsyncExitStack() as stack:
        url = settings.database_url.get_secret_value()
        await migrate_database(url, ("providers", "funmagic_providers.migrations"))
        pool = await create_pool(url, min_size=1, max_size=2, name="providers-cli")
        stack.push_async_callback(pool.close)
        redis = await create_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        registry, _ = build_registry(settings, pool, redis, session)
        rotated = await registry.rotate_keys()
        verified = await registry.verify_keys()
    print(f"re-encrypted {rotated} provider key(s); {verified} key(s) decrypt under the current master keys")
    return 0


COMMANDS = {"rotate-provider-keys": rotate_provider_keys}
