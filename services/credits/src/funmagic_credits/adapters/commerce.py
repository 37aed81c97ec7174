"""Credit packages, checkout purchases and handled Stripe events, on Postgres."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg

__all__ = ["CommerceStore"]

PACKAGE_COLUMNS = (
    "id::text, name, credits, price_minor, currency, stripe_price_id, is_active, sort_order, "
    "created_at, updated_at"
)


class CommerceStore:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def packages(self, *, active_only: bool) -> list[dict[str, Any]]:
        where = "deleted_at IS NULL" + (" AND is_active" if active_only else "")
        cursor = await self._conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM credit_packages WHERE {where} "
            "ORDER BY sort_order, price_minor, id"
        )
        return list(await cursor.fetchall())

    async def package(self, package_id: str) -> dict[str, Any] | None:
        try:
            uuid.UUID(package_id)
        except ValueError:
            return None
        cursor = await self._conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM credit_packages WHERE id = %s AND deleted_at IS NULL",
            (package_id,),
        )
        return await cursor.fetchone()

    async def add_package(self, values: dict[str, Any], now: datetime) -> dict[str, Any]:
        cursor = await self._conn.execute(
            f"""INSERT INTO credit_packages
                    (id, name, credits, price_minor, currency, stripe_price_id, is_active, sort_order,
                     created_at, updated_at)
                VALUES (%(id)s, %(name)s, %(credits)s, %(price_minor)s, %(currency)s, %(stripe_price_id)s,
                        %(is_active)s, %(sort_order)s, %(now)s, %(now)s)
                RETURNING {PACKAGE_COLUMNS}""",
            {**values, "id": uuid.uuid4(), "now": now},
        )
        row = await cursor.fetchone()
        assert row is not None
        return row

    async def update_package(
        self, package_id: str, values: dict[str, Any], now: datetime
    ) -> dict[str, Any] | None:
        if await self.package(package_id) is None:
            return None
        assignments = ", ".join(f"{column} = %({column})s" for column in values)
        cursor = await self._conn.execute(
            f"UPDATE credit_packages SET {assignments}, updated_at = %(now)s WHERE id = %(id)s "
            f"RETURNING {PACKAGE_COLUMNS}",
            {**values, "now": now, "id": package_id},
        )
        return await cursor.fetchone()

    async def delete_package(self, package_id: str, now: datetime) -> bool:
        if await self.package(package_id) is None:
            return False
        await self._conn.execute(
            "UPDATE credit_packages SET deleted_at = %s, is_active = false WHERE id = %s", (now, package_id)
        )
        return True

    async def add_purchase(
        self, session_id: str, user_id: str, package: dict[str, Any], now: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO purchases (session_id, user_id, package_id, credits, price_minor, currency, status, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, 'pending', %s) ON CONFLICT (session_id) DO NOTHING",
            (
                session_id,
                user_id,
                package["id"],
                package["credits"],
                package["price_minor"],
                package["currency"],
                now,
            ),
        )

    async def purchase(self, session_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        cursor = await self._conn.execute(
            "SELECT session_id, user_id, package_id::text, credits, price_minor, currency, status "
            "FROM purchases WHERE session_id = %s" + (" FOR UPDATE" if for_update else ""),
            (session_id,),
        )
        return await cursor.fetchone()

    async def complete_purchase(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE purchases SET status = 'completed', completed_at = %s WHERE session_id = %s",
            (now, session_id),
        )

    async def remember_stripe_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """False when this Stripe event was handled before (Stripe redelivers)."""
        cursor = await self._conn.execute(
            "INSERT INTO stripe_events (event_id, type, received_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (event_id) DO NOTHING",
            (event_id, event_type, now),
        )
        return cursor.rowcount == 1
