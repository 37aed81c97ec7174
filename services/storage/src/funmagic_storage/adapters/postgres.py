"""Asset records, pending uploads, the tasks known to be deleted and the purges of deleted accounts' files,
on Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg

from funmagic_kit.pagination import decode_cursor, page_of
from funmagic_kit.rows import from_row, to_row
from funmagic_storage.domain.assets import ASSET_KINDS, AssetKind, AssetRecord, PendingUpload, Visibility
from funmagic_storage.domain.deleted_owners import OwnerPurge

__all__ = ["AssetRecords"]

# Named like the fields of `AssetRecord` and `PendingUpload` (`from_row`).
ASSET_COLUMNS = (
    "id::text AS id, user_id, bucket, storage_key, visibility, module, filename, mime_type, kind, size, "
    "task_id, public_key, created_at, updated_at"
)
UPLOAD_COLUMNS = (
    "id::text AS id, user_id, bucket, storage_key, visibility, module, filename, content_type, size, "
    "created_at, expires_at, completed_at, asset_id::text AS asset_id"
)

INSERT_UPLOAD = """
INSERT INTO pending_uploads
    (id, user_id, bucket, storage_key, visibility, module, filename, content_type, size, created_at,
     expires_at)
VALUES (%(id)s, %(user_id)s, %(bucket)s, %(storage_key)s, %(visibility)s, %(module)s, %(filename)s,
        %(content_type)s, %(size)s, %(created_at)s, %(expires_at)s)
ON CONFLICT (bucket, storage_key) DO NOTHING
RETURNING 1
"""
# The upload's completion and its asset in one statement: both or neither. Neither when the upload is
# completed already (a concurrent confirmation won: the row lock makes this one wait for it, then skip) or
# gone, or when the owner's account is deleted — read after the caller took the owner's lock, so this
# statement's snapshot sees any purge scheduled before it.
INSERT_ASSET_OF_UPLOAD = f"""
WITH completed AS (
    UPDATE pending_uploads SET completed_at = %(completed_at)s, asset_id = %(id)s::uuid
    WHERE id = %(upload_id)s AND completed_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM deleted_owners WHERE user_id = %(user_id)s)
    RETURNING id
), asset AS (
    INSERT INTO assets
        (id, user_id, bucket, storage_key, visibility, module, filename, mime_type, kind, size, task_id,
         created_at, updated_at)
    SELECT %(id)s::uuid, %(user_id)s, %(bucket)s, %(storage_key)s, %(visibility)s, %(module)s, %(filename)s,
           %(mime_type)s, %(kind)s, %(size)s::bigint, %(task_id)s, %(created_at)s, %(updated_at)s
    FROM completed
    RETURNING {ASSET_COLUMNS}
)
SELECT * FROM asset
"""
SET_PUBLICATION = f"""
UPDATE assets SET public_key = %s, visibility = %s, updated_at = %s
WHERE id = %s
RETURNING {ASSET_COLUMNS}
"""
OWNED_ASSETS = f"""
SELECT {ASSET_COLUMNS} FROM assets
WHERE id = ANY(%s::uuid[]) AND user_id = %s AND deleted_at IS NULL
"""
# Locked: the outputs are deleted in this transaction, and a concurrent publish waits for it.
OUTPUTS_OF_TASKS = f"""
SELECT {ASSET_COLUMNS} FROM assets
WHERE task_id = ANY(%s) AND user_id = %s AND deleted_at IS NULL
ORDER BY created_at, id
FOR UPDATE
"""
# One lock per task id (a hash of it: a collision only makes two tasks wait for each other), held to the end
# of the transaction: deleting a task's outputs and registering a new output of it take turns.
LOCK_TASK = "SELECT pg_advisory_xact_lock(hashtext('storage:task:' || %s))"
# One lock per account, like LOCK_TASK: registering a file for the owner takes it shared (registrations of
# one owner do not wait for each other), scheduling and running the purge of their files take it exclusive.
LOCK_OWNER = "SELECT pg_advisory_xact_lock(hashtext('storage:owner:' || %s))"
LOCK_OWNER_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext('storage:owner:' || %s))"
# The first schedule stays: a redelivered UserDeleted does not push the purge back.
INSERT_OWNER_PURGE = """
INSERT INTO deleted_owners (user_id, deleted_at, due_at, purged_at)
VALUES (%(user_id)s, %(deleted_at)s, %(due_at)s, %(purged_at)s)
ON CONFLICT (user_id) DO NOTHING
"""
OWNER_PURGE_COLUMNS = "user_id, deleted_at, due_at, purged_at"
DUE_OWNER_PURGES = """
SELECT user_id FROM deleted_owners WHERE purged_at IS NULL AND due_at <= %s ORDER BY due_at LIMIT %s
"""
# Locked: they are deleted in this transaction, and a concurrent publish waits for it.
ASSETS_OWNED_BY = f"""
SELECT {ASSET_COLUMNS} FROM assets
WHERE user_id = %s AND deleted_at IS NULL
ORDER BY created_at, id
FOR UPDATE
"""
INSERT_DELETED_TASK = """
INSERT INTO deleted_tasks (task_id, user_id, deleted_at) VALUES (%s, %s, %s)
ON CONFLICT (task_id) DO NOTHING
"""


def _is_uuid(value: str) -> bool:
    # Checked before querying: a malformed id would abort the caller's whole transaction.
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class AssetRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def add_upload(self, upload: PendingUpload) -> bool:
        """False when another upload already holds this key."""
        cursor = await self._conn.execute(INSERT_UPLOAD, to_row(upload))
        return await cursor.fetchone() is not None

    async def upload(self, upload_id: str) -> PendingUpload | None:
        if not _is_uuid(upload_id):
            return None
        cursor = await self._conn.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM pending_uploads WHERE id = %s", (upload_id,)
        )
        row = await cursor.fetchone()
        return from_row(PendingUpload, row) if row else None

    async def expired_uploads(self, now: datetime, limit: int = 100) -> list[PendingUpload]:
        cursor = await self._conn.execute(
            f"SELECT {UPLOAD_COLUMNS} FROM pending_uploads WHERE completed_at IS NULL AND expires_at < %s "
            "ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        return [from_row(PendingUpload, row) for row in await cursor.fetchall()]

    async def drop_upload(self, upload_id: str) -> None:
        await self._conn.execute("DELETE FROM pending_uploads WHERE id = %s", (upload_id,))

    async def add_asset_of_upload(
        self, asset: AssetRecord, upload_id: str, now: datetime
    ) -> AssetRecord | None:
        """`asset` recorded and its upload completed; None (nothing written) when the upload is completed or
        gone, or the owner's account is deleted."""
        cursor = await self._conn.execute(
            INSERT_ASSET_OF_UPLOAD, {**to_row(asset), "upload_id": upload_id, "completed_at": now}
        )
        row = await cursor.fetchone()
        return _asset(row) if row else None

    async def asset(self, asset_id: str, *, for_update: bool = False) -> AssetRecord | None:
        if not _is_uuid(asset_id):
            return None
        cursor = await self._conn.execute(
            f"SELECT {ASSET_COLUMNS} FROM assets WHERE id = %s AND deleted_at IS NULL"
            + (" FOR UPDATE" if for_update else ""),
            (asset_id,),
        )
        row = await cursor.fetchone()
        return _asset(row) if row else None

    async def owned_assets(self, user_id: str, asset_ids: Iterable[str]) -> list[AssetRecord]:
        ids = [asset_id for asset_id in dict.fromkeys(asset_ids) if _is_uuid(asset_id)]
        if not ids:
            return []
        cursor = await self._conn.execute(OWNED_ASSETS, (ids, user_id))
        return [_asset(row) for row in await cursor.fetchall()]

    async def set_publication(
        self, asset_id: str, public_key: str | None, visibility: Visibility, now: datetime
    ) -> AssetRecord:
        cursor = await self._conn.execute(SET_PUBLICATION, (public_key, visibility, now, asset_id))
        return _asset(await cursor.fetchone())

    async def delete_asset(self, asset_id: str, now: datetime) -> None:
        await self._conn.execute("UPDATE assets SET deleted_at = %s WHERE id = %s", (now, asset_id))

    async def lock_tasks(self, task_ids: Iterable[str]) -> None:
        for task_id in sorted(set(task_ids)):  # always in the same order: no deadlock between two lockers
            await self._conn.execute(LOCK_TASK, (task_id,))

    async def mark_tasks_deleted(self, task_ids: Iterable[str], user_id: str, now: datetime) -> None:
        for task_id in sorted(set(task_ids)):
            await self._conn.execute(INSERT_DELETED_TASK, (task_id, user_id, now))

    async def task_is_deleted(self, task_id: str) -> bool:
        cursor = await self._conn.execute("SELECT 1 FROM deleted_tasks WHERE task_id = %s", (task_id,))
        return await cursor.fetchone() is not None

    async def lock_owner(self, user_id: str, *, shared: bool = False) -> None:
        await self._conn.execute(LOCK_OWNER_SHARED if shared else LOCK_OWNER, (user_id,))

    async def schedule_owner_purge(self, purge: OwnerPurge) -> None:
        await self._conn.execute(INSERT_OWNER_PURGE, to_row(purge))

    async def owner_purge(self, user_id: str, *, for_update: bool = False) -> OwnerPurge | None:
        cursor = await self._conn.execute(
            f"SELECT {OWNER_PURGE_COLUMNS} FROM deleted_owners WHERE user_id = %s"
            + (" FOR UPDATE" if for_update else ""),
            (user_id,),
        )
        row = await cursor.fetchone()
        return from_row(OwnerPurge, row) if row else None

    async def due_owner_purges(self, now: datetime, limit: int = 10) -> list[str]:
        cursor = await self._conn.execute(DUE_OWNER_PURGES, (now, limit))
        return [row["user_id"] for row in await cursor.fetchall()]

    async def save_owner_purge(self, purge: OwnerPurge) -> None:
        await self._conn.execute(
            "UPDATE deleted_owners SET purged_at = %s WHERE user_id = %s", (purge.purged_at, purge.user_id)
        )

    async def assets_owned_by(self, user_id: str) -> list[AssetRecord]:
        cursor = await self._conn.execute(ASSETS_OWNED_BY, (user_id,))
        return [_asset(row) for row in await cursor.fetchall()]

    async def outputs_of_tasks(self, user_id: str, task_ids: Iterable[str]) -> list[AssetRecord]:
        cursor = await self._conn.execute(OUTPUTS_OF_TASKS, (sorted(set(task_ids)), user_id))
        return [_asset(row) for row in await cursor.fetchall()]

    async def assets_of(
        self,
        user_id: str,
        *,
        module: str | None,
        kind: AssetKind | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[AssetRecord], str | None]:
        conditions, params = _visible_to(user_id, module)
        params["limit"] = limit + 1
        if kind:
            conditions.append("kind = %(kind)s")
            params["kind"] = kind
        if cursor:
            params["after_created"], params["after_id"] = decode_cursor(cursor, datetime, uuid.UUID)
            conditions.append("(created_at, id) < (%(after_created)s, %(after_id)s::uuid)")
        rows = await (
            await self._conn.execute(
                f"SELECT {ASSET_COLUMNS} FROM assets WHERE {' AND '.join(conditions)} "
                "ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
                params,
            )
        ).fetchall()
        return page_of([_asset(row) for row in rows], limit, key=lambda asset: (asset.created_at, asset.id))

    async def kind_counts(self, user_id: str, *, module: str | None) -> dict[AssetKind, int]:
        conditions, params = _visible_to(user_id, module)
        rows = await (
            await self._conn.execute(
                f"SELECT kind, count(*) AS n FROM assets WHERE {' AND '.join(conditions)} GROUP BY kind",
                params,
            )
        ).fetchall()
        counted = {row["kind"]: int(row["n"]) for row in rows}
        return {kind: counted.get(kind, 0) for kind in ASSET_KINDS}


def _visible_to(user_id: str, module: str | None) -> tuple[list[str], dict[str, Any]]:
    """The conditions (and their parameters) of the assets a user sees in their list: theirs, live, not
    admin-only, of `module` if given."""
    conditions = ["user_id = %(user_id)s", "deleted_at IS NULL", "visibility <> 'admin-private'"]
    params: dict[str, Any] = {"user_id": user_id}
    if module:
        conditions.append("module = %(module)s")
        params["module"] = module
    return conditions, params


def _asset(row: dict[str, Any] | None) -> AssetRecord:
    if row is None:  # an INSERT or UPDATE … RETURNING of a row that exists
        raise LookupError("the asset row was not returned")
    return from_row(AssetRecord, row)
