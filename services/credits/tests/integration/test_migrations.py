"""Migrations of credits applied to data written before them."""

from __future__ import annotations

import json
import os

import psycopg
import pytest
from psycopg.rows import dict_row

from funmagic_kit.migrations import apply_migrations, load_migrations
from funmagic_kit.testing import scratch_database

pytestmark = pytest.mark.integration


async def test_holds_move_out_of_the_snapshots_into_their_own_rows() -> None:
    migrations = load_migrations("credits", "funmagic_credits.migrations")
    before_holds = [m for m in migrations if m.version < 5]
    assert migrations[4].name == "ledger_holds"
    async with (
        scratch_database(os.environ["POSTGRES_URL"], "credits_migration") as url,
        await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn,
    ):
        await apply_migrations(conn, before_holds)
        snapshot = {
            "version": 3,
            "balance": 60,
            "reserved": 40,
            "lifetime_earned": 100,
            "lifetime_spent": 0,
            "adjustments": 0,
            "open_reservations": {"task-a": 30, "task-b": 10, "free-task": 0},
        }
        await conn.execute(
            "INSERT INTO ledger_accounts (user_id, version, state) "
            "VALUES ('user-1', 3, %s), ('user-2', 1, %s)",
            (json.dumps(snapshot), json.dumps({"version": 1, "balance": 5, "open_reservations": {}})),
        )

        await apply_migrations(conn, migrations)

        cursor = await conn.execute("SELECT user_id, reservation_id, amount FROM ledger_holds ORDER BY 2")
        assert await cursor.fetchall() == [
            {"user_id": "user-1", "reservation_id": "free-task", "amount": 0},
            {"user_id": "user-1", "reservation_id": "task-a", "amount": 30},
            {"user_id": "user-1", "reservation_id": "task-b", "amount": 10},
        ]
        cursor = await conn.execute("SELECT user_id, state FROM ledger_accounts ORDER BY 1")
        states = {row["user_id"]: row["state"] for row in await cursor.fetchall()}
        assert states["user-1"] == {k: v for k, v in snapshot.items() if k != "open_reservations"}
        assert states["user-2"] == {"version": 1, "balance": 5}
