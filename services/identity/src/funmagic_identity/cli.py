"""Operator commands: `python -m funmagic_identity create-admin --email … [--name …]`, `rotate-signing-key`.

The password of a new admin is read from FUNMAGIC_ADMIN_PASSWORD or asked for on the terminal, never
taken as an argument (arguments show up in process lists and shell history).
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from funmagic_identity.domain.errors import IdentityError
from funmagic_kit.db import create_pool
from funmagic_kit.redis import create_redis

__all__ = ["COMMANDS"]


async def _open(settings: Any, stack: AsyncExitStack) -> tuple[Any, Any]:
    from funmagic_kit.migrations import migrate_database

    await migrate_database(
        settings.database_url.get_secret_value(), ("identity", "funmagic_identity.migrations")
    )
    pool = await create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=2, name="identity-cli"
    )
    stack.push_async_callback(pool.close)
    redis = await create_redis(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    return pool, redis


async def create_admin(settings: Any, argv: Sequence[str]) -> int:
    from funmagic_identity.adapters.signing_keys import SigningKeyRing
    from funmagic_identity.bootstrap import build_handlers
    from funmagic_kit.crypto import SecretBox
    from funmagic_kit.runtime import Runtime

    parser = argparse.ArgumentParser(prog="python -m funmagic_identity create-admin")
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    async with AsyncExitStack() as stack:
        pool, redis = await _open(settings, stack)
        runtime = Runtime(settings=settings, metrics=None, redis=redis, producer=None, broker=None, pool=pool)  # type: ignore[arg-type]
        keys = SigningKeyRing(pool, SecretBox.from_base64(settings.secret_key.get_secret_value()))
        handlers = build_handlers(settings, runtime, keys)
        password = os.environ.get("FUNMAGIC_ADMIN_PASSWORD")
        try:
            user, created = await handlers.create_super_admin(args.email, password, args.name)
        except IdentityError as error:
            if password is None and "needs a password" in str(error):
                password = getpass.getpass("Password for the new super_admin: ")
                user, created = await handlers.create_super_admin(args.email, password, args.name)
            else:
                print(f"refused: {error}")
                return 1
    print(f"{'created' if created else 'promoted'} super_admin {user.email} ({user.id})")
    return 0


async def rotate_signing_key(settings: Any, argv: Sequence[str]) -> int:
    from funmagic_identity.adapters.signing_keys import SigningKeyRing
    from funmagic_kit.crypto import SecretBox

    async with AsyncExitStack() as stack:
        pool, _ = await _open(settings, stack)
        keys = SigningKeyRing(pool, SecretBox.from_base64(settings.secret_key.get_secret_value()))
        kid = await keys.rotate(datetime.now(UTC))
    print(f"new signing key {kid}; services pick it up within a minute, old tokens stay valid until expiry")
    return 0


COMMANDS = {"create-admin": create_admin, "rotate-signing-key": rotate_signing_key}
