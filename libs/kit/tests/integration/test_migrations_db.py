"""Migrations against a real database: applied once, and an edited migration is refused."""

import psycopg
import pytest

from funmagic_kit.migrations import Migration, apply_migrations, load_migrations


async def test_applying_twice_applies_nothing_the_second_time(database_url) -> None:
    # The fixture already applied the kit's migrations once.
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        applied = await apply_migrations(conn, load_migrations("kit", "funmagic_kit.sql"))

    assert applied == []


async def test_a_new_migration_is_applied_and_recorded(database_url) -> None:
    migration = Migration("demo", 1, "widgets", "CREATE TABLE widgets (id int);")
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        applied = await apply_migrations(conn, [migration])
        cursor = await conn.execute("SELECT name FROM schema_migrations WHERE component = 'demo'")
        rows = await cursor.fetchall()

    assert applied == [migration]
    assert rows == [("widgets",)]


async def test_editing_an_applied_migration_is_refused(database_url) -> None:
    original = load_migrations("kit", "funmagic_kit.sql")[0]
    edited = Migration(original.component, original.version, original.name, original.sql + "\n-- edited")

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        with pytest.raises(RuntimeError, match="changed after it was applied"):
            await apply_migrations(conn, [edited])
