"""Per-service SQL migrations: numbered `.sql` files applied once each, in order, under an advisory lock.

The kit's own tables (outbox, processed_events) are the `kit` component; every service adds its own
component. A changed file that was already applied is an error, not silently ignored.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

__all__ = ["Migration", "apply_migrations", "load_migrations", "migrate_database"]

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x66756E6D  # any constant: one migrator per database at a time


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(component: str, package: str) -> list[Migration]:
    migrations = []
    for entry in resources.files(package).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            migrations.append(
                Migration(component, int(match[1]), match[2], entry.read_text(encoding="utf-8"))
            )
    migrations.sort(key=lambda m: m.version)
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"{package} has two migrations with the same number: {versions}")
    return migrations


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""

_RECORD = "INSERT INTO schema_migrations (component, version, name, checksum) VALUES (%s, %s, %s, %s)"


async def apply_migrations(conn: psycopg.AsyncConnection, migrations: list[Migration]) -> list[Migration]:
    """Apply what is missing; return what was applied. Each migration commits on its own."""
    applied_now: list[Migration] = []
    await conn.set_autocommit(True)
    await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        await conn.execute(_CREATE_TABLE)
        for migration in migrations:
            cursor = await conn.execute(
                "SELECT checksum FROM schema_migrations WHERE component = %s AND version = %s",
                (migration.component, migration.version),
            )
            row = await cursor.fetchone()
            if row is not None:
                recorded = row["checksum"] if isinstance(row, dict) else row[0]
                if recorded != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.component}/{migration.version:03d}_{migration.name} changed "
                        "after it was applied; add a new migration instead of editing it"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)  # type: ignore[arg-type]
                await conn.execute(
                    _RECORD, (migration.component, migration.version, migration.name, migration.checksum)
                )
            log.info(
                "migration applied", extra={"migration": f"{migration.component}/{migration.version:03d}"}
            )
            applied_now.append(migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


async def migrate_database(dsn: str, *components: tuple[str, str]) -> list[Migration]:
    """Apply the kit's migrations, then each `(component, package)` given, to the database at `dsn`."""
    migrations = load_migrations("kit", "funmagic_kit.sql")
    for component, package in components:
        migrations += load_migrations(component, package)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        return await apply_migrations(conn, migrations)
