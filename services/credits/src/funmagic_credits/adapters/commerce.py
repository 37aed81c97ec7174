"""Credit packages, checkout purchases and handled Stripe events, on Postgres."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from funmagic_credits.domain.commerce import CreditPackage, PackageEntry, Purchase

__all__ = ["PostgresCommerceStore"]

PACKAGE_COLUMNS = (
    "id::text, name, credits, price_minor, currency, stripe_price_id, is_active, sort_order, "
    "description, bonus_credits, is_popular, translations, created_at, updated_at"
)
INSERT_PACKAGE = f"""
INSERT INTO credit_packages
    (id, name, credits, price_minor, currency, stripe_price_id, is_active, sort_order, description,
     bonus_credits, is_popular, translations, created_at, updated_at)
VALUES (%(id)s, %(name)s, %(credits)s, %(price_minor)s, %(currency)s, %(stripe_price_id)s, %(is_active)s,
        %(sort_order)s, %(description)s, %(bonus_credits)s, %(is_popular)s, %(translations)s,
        %(now)s, %(now)s)
RETURNING {PACKAGE_COLUMNS}
"""
UPDATE_PACKAGE = f"""
UPDATE credit_packages SET name = %(name)s, credits = %(credits)s, price_minor = %(price_minor)s,
    currency = %(currency)s, stripe_price_id = %(stripe_price_id)s, is_active = %(is_active)s,
    sort_order = %(sort_order)s, description = %(description)s, bonus_credits = %(bonus_credits)s,
    is_popular = %(is_popular)s, translations = %(translations)s, updated_at = %(now)s
WHERE id = %(id)s
RETURNING {PACKAGE_COLUMNS}
"""
INSERT_PURCHASE = """
INSERT INTO purchases
    (session_id, user_id, package_id, credits, bonus_credits, price_minor, currency, status, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s)
ON CONFLICT (session_id) DO NOTHING
"""
SELECT_PURCHASE = """
SELECT session_id, user_id, package_id::text, credits, bonus_credits, price_minor, currency, status
FROM purchases WHERE session_id = %s
"""


def _package(row: dict[str, Any]) -> CreditPackage:
    return CreditPackage(**row)


def _package_params(entry: PackageEntry) -> dict[str, Any]:
    return {**dataclasses.asdict(entry), "translations": Jsonb(dict(entry.translations))}


class PostgresCommerceStore:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def packages(self, *, active_only: bool) -> list[CreditPackage]:
        where = "deleted_at IS NULL" + (" AND is_active" if active_only else "")
        cursor = await self._conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM credit_packages WHERE {where} "
            "ORDER BY sort_order, price_minor, id"
        )
        return [_package(row) for row in await cursor.fetchall()]

    async def package(self, package_id: str) -> CreditPackage | None:
        try:
            uuid.UUID(package_id)
        except ValueError:
            return None
        cursor = await self._conn.execute(
            f"SELECT {PACKAGE_COLUMNS} FROM credit_packages WHERE id = %s AND deleted_at IS NULL",
            (package_id,),
        )
        row = await cursor.fetchone()
        return _package(row) if row else None

    async def add_package(self, entry: PackageEntry, now: datetime) -> CreditPackage:
        cursor = await self._conn.execute(
            INSERT_PACKAGE, {**_package_params(entry), "id": uuid.uuid4(), "now": now}
        )
        row = await cursor.fetchone()
        assert row is not None  # RETURNING of an INSERT
        return _package(row)

    async def update_package(
        self, package_id: str, entry: PackageEntry, now: datetime
    ) -> CreditPackage | None:
        if await self.package(package_id) is None:
            return None
        cursor = await self._conn.execute(
            UPDATE_PACKAGE, {**_package_params(entry), "now": now, "id": package_id}
        )
        row = await cursor.fetchone()
        return _package(row) if row else None

    async def delete_package(self, package_id: str, now: datetime) -> bool:
        if await self.package(package_id) is None:
            return False
        await self._conn.execute(
            "UPDATE credit_packages SET deleted_at = %s, is_active = false WHERE id = %s", (now, package_id)
        )
        return True

    async def add_purchase(
        self, session_id: str, user_id: str, package: CreditPackage, now: datetime
    ) -> None:
        await self._conn.execute(
            INSERT_PURCHASE,
            (
                session_id,
                user_id,
                package.id,
                package.credits,
                package.bonus_credits,
                package.price_minor,
                package.currency,
                now,
            ),
        )

    async def purchase(self, session_id: str, *, for_update: bool = False) -> Purchase | None:
        cursor = await self._conn.execute(
            SELECT_PURCHASE + (" FOR UPDATE" if for_update else ""), (session_id,)
        )
        row = await cursor.fetchone()
        return Purchase(**row) if row else None

    async def complete_purchase(self, session_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE purchases SET status = 'completed', completed_at = %s WHERE session_id = %s",
            (now, session_id),
        )

    async def remember_payment_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """False when this Stripe event was handled before (Stripe redelivers)."""
        cursor = await self._conn.execute(
            "INSERT INTO stripe_events (event_id, type, received_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING 1",
            (event_id, event_type, now),
        )
        return await cursor.fetchone() is not None
