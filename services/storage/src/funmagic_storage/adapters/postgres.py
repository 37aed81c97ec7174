"""Asset records and pending uploads on Postgres."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from typing import Any

import psycopg

__all__ = ["AssetRecords", "decode_cursor", "encode_cursor"]

ASSET_COLUMNS = (
    "id::text, user_id, bucket, storage_key, visibility, module, filename, mime_type, size, task_id, "
    "public_key, created_at, updated_at"
)
UPLOAD_COLUMNS = (
    "id::text, user_id, bucket, storage_key, visibility, module, filename, content_type, size, created_at, "
    "expires_at, completed_at, asset_id::text"
)

INSERT_UPLOAD = """
INSERT INTO pending_uploads
    (id, user_id, bucket, storage_key, visibility, module, filename, content_type, size, created_at,
     expires_at)
VALUES (%(id)s, %(user_id)s, %(bucket)s, %(storage_key)s, %(visibility)s, %(module)s, %(filename)s,
        %(content_type)s, %(size)s, %(created_at)s, %(expires_at)s)
ON CONFLICT (bucket, storage_key) DO NOTHING
"""
INSERT_ASSET = f"""
INSERT INTO assets
    (id, user_id, bucket, storage_key, visibility, module, filename, mime_type, size, task_id, created_at,
     updated_at)
VALUES (%(id)s, %(user_id)s, %(bucket)s, %(storage_key)s, %(visibility)s, %(module)s, %(filename)s,
        %(mime_type)s, %(size)s, %(task_id)s, %(now)s, %(now)s)
RETURNING {ASSET_COLUMNS}
"""


def encode_cursor(created_at: datetime, asset_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), asset_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, asset_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        # The id is checked here: a forged cursor must be a ValueError, not a database error.
        return datetime.fromisoformat(created_at), str(uuid.UUID(str(asset_id)))
    except (ValueError, TypeError) as error:
        raise ValueError("invalid cursor") from error


class AssetRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add_upload(self, upload: dict[str, Any]) -> bool:
        """False when another upload already holds this key."""
        cursor = await self._conn.execute(INSERT_UPLOAD, upload)
        return cursor.rowcount == 1

    async def upload(self, upload_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        try:
            cursor = await self._conn.execute(
                f"SELECT {UPLOAD_COLUMNS} FROM pending_uploads WHERE id = %s"
                + (" FOR UPDATE" if for_update else ""),
                (upload_id,),
            )
        except psycopg.errors.InvalidTextRepresentation:
            return None
        return await cursor.fetchone()

    async def complete_upload(self, upload_id: str, asset_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE pending_uploads SET completed_at = %s, asset_id = %s WHERE id = %s",
            (now, asset_id, upload_id),
        )

    async def expired_uploads(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        cursor = await self._conn.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM pending_uploads WHERE completed_at IS NULL AND expires_at < %s "
            "ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        return list(await cursor.fetchall())

    async def drop_upload(self, upload_id: str) -> None:
        await self._conn.execute("DELETE FROM pending_uploads WHERE id = %s", (upload_id,))

    async def add_asset(self, asset: dict[str, Any]) -> dict[str, Any]:
        cursor = await self._conn.execute(
            INSERT_ASSET,
            asset,
        )
        row = await cursor.fetchone()
        assert row is not None
        return row

    async def asset(self, asset_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        try:
            cursor = await self._conn.execute(
                f"SELECT {ASSET_COLUMNS} FROM assets WHERE id = %s AND deleted_at IS NULL"
                + (" FOR UPDATE" if for_update else ""),
                (asset_id,),
            )
        except psycopg.errors.InvalidTextRepresentation:
            return None
        return await cursor.fetchone()

    async def set_publication(self, asset_id: str, public_key: str | None, now: datetime) -> dict[str, Any]:
        cursor = await self._conn.execute(
            "UPDATE assets SET public_key = %s, visibility = CASE WHEN %s::text IS NULL THEN 'private' "
            f"ELSE 'public' END, updated_at = %s WHERE id = %s RETURNING {ASSET_COLUMNS}",
            (public_key, public_key, now, asset_id),
        )
        row = await cursor.fetchone()
        assert row is not None
        return row

    async def delete_asset(self, asset_id: str, now: datetime) -> None:
        await self._conn.execute("UPDATE assets SET deleted_at = %s WHERE id = %s", (now, asset_id))

    async def assets_of(
        self, user_id: str, *, module: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        conditions = ["user_id = %(user_id)s", "deleted_at IS NULL", "visibility <> 'admin-private'"]
        params: dict[str, Any] = {"user_id": user_id, "limit": limit + 1}
        if module:
            conditions.append("module = %(module)s")
            params["module"] = module
        if cursor:
            params["after_created"], params["after_id"] = decode_cursor(cursor)
            conditions.append("(created_at, id) < (%(after_created)s, %(after_id)s::uuid)")
        rows = await (
            await self._conn.execute(
                f"SELECT {ASSET_COLUMNS} FROM assets WHERE {' AND '.join(conditions)} "
                "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        items = rows[:limit]
        next_cursor = encode_cursor(items[-1]["created_at"], items[-1]["id"]) if len(rows) > limit else None
        return items, next_cursor
