"""Helpers for tests and benchmarks: scratch databases (created fresh, migrated, dropped afterwards) and a
deadline loop to wait on a condition instead of sleeping.

`DROP DATABASE … WITH (FORCE)` can race an autovacuum worker that just started on the new database (the
server refuses to terminate it for a non-superuser); the drop is retried until that worker is gone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import psycopg

from funmagic_kit.migrations import migrate_database

__all__ = ["drop_database", "scratch_database", "wait_until"]


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, timeout: float, what: str = "", interval: float = 0.02
) -> None:
    """Poll an async condition until it holds; fail (AssertionError naming `what`) after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(interval)


async def drop_database(postgres_url: str, name: str, *, timeout_seconds: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_seconds
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                postgres_url + "/postgres", autocommit=True
            ) as admin:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectInUse):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)  # let the autovacuum worker finish before retrying


@asynccontextmanager
async def scratch_database(
    postgres_url: str, prefix: str, *components: tuple[str, str]
) -> AsyncIterator[str]:
    """A new database named `<prefix>_<random>`, migrated with the kit's tables and `components`."""
    postgres_url = postgres_url.rstrip("/")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(postgres_url + "/postgres", autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_url}/{name}"
    try:
        await migrate_database(url, *components)
        yield url
    finally:
        await drop_database(postgres_url, name)
