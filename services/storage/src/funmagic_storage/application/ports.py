"""What the storage use cases need from the outside, as Protocols: the asset records a transaction binds,
the transaction itself, and the object store. The adapters layer provides the concrete classes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from funmagic_kit.ports import UnitOfWork
from funmagic_storage.domain.assets import AssetKind, AssetRecord, PendingUpload, Visibility
from funmagic_storage.domain.deleted_owners import OwnerPurge

__all__ = ["AssetStore", "ObjectInfo", "ObjectStore", "StorageUnitOfWork"]


class AssetStore(Protocol):
    """Assets and pending uploads, inside one transaction."""

    async def add_upload(self, upload: PendingUpload) -> bool:
        """False when another upload already holds its key."""
        ...

    async def upload(self, upload_id: str) -> PendingUpload | None:
        """None for an id that is not one of an upload (not even a UUID included)."""
        ...

    async def expired_uploads(self, now: datetime, limit: int = 100) -> list[PendingUpload]:
        """Unconfirmed uploads past their time, locked (others sweeping at once skip them)."""
        ...

    async def drop_upload(self, upload_id: str) -> None: ...

    async def add_asset_of_upload(
        self, asset: AssetRecord, upload_id: str, now: datetime
    ) -> AssetRecord | None:
        """The asset as stored, its upload completed by it at `now` (one statement); None (nothing written)
        when the upload is completed or gone, or the owner's account is deleted."""
        ...

    async def asset(self, asset_id: str, *, for_update: bool = False) -> AssetRecord | None:
        """None for an id that is not one of a live asset (not even a UUID included)."""
        ...

    async def owned_assets(self, user_id: str, asset_ids: Iterable[str]) -> list[AssetRecord]:
        """The live assets among `asset_ids` that `user_id` owns, whatever their visibility (ids that are
        not an asset's, not even UUIDs, are left out)."""
        ...

    async def set_publication(
        self, asset_id: str, public_key: str | None, visibility: Visibility, now: datetime
    ) -> AssetRecord:
        """Published under `public_key` (visibility public), or back to `visibility` with None."""
        ...

    async def delete_asset(self, asset_id: str, now: datetime) -> None: ...

    async def lock_tasks(self, task_ids: Iterable[str]) -> None:
        """Until the transaction ends, nobody else deletes these tasks' outputs or registers one."""
        ...

    async def mark_tasks_deleted(self, task_ids: Iterable[str], user_id: str, now: datetime) -> None: ...

    async def task_is_deleted(self, task_id: str) -> bool: ...

    async def lock_owner(self, user_id: str, *, shared: bool = False) -> None:
        """Until the transaction ends: `shared` while registering a file of the owner, exclusive while
        scheduling or running the purge of their files, so the two take turns."""
        ...

    async def schedule_owner_purge(self, purge: OwnerPurge) -> None:
        """Recorded unless the owner's purge is already (the first schedule stays)."""
        ...

    async def owner_purge(self, user_id: str, *, for_update: bool = False) -> OwnerPurge | None:
        """The purge of the deleted account's files; None for an account not deleted."""
        ...

    async def due_owner_purges(self, now: datetime, limit: int = 10) -> list[str]:
        """Ids of deleted accounts whose files are due to go and are still there, soonest due first."""
        ...

    async def save_owner_purge(self, purge: OwnerPurge) -> None: ...

    async def assets_owned_by(self, user_id: str) -> list[AssetRecord]:
        """Every live asset `user_id` owns (admin-only and published ones too), locked for the transaction."""
        ...

    async def outputs_of_tasks(self, user_id: str, task_ids: Iterable[str]) -> list[AssetRecord]:
        """The live assets `user_id` owns that these tasks produced, locked for the transaction."""
        ...

    async def assets_of(
        self,
        user_id: str,
        *,
        module: str | None,
        kind: AssetKind | None = None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[AssetRecord], str | None]:
        """The user's assets a user sees (not admin-only ones), newest first, of `module` and `kind` if
        given, and the next page's cursor. A cursor that is not one is an `InvalidCursor`."""
        ...

    async def kind_counts(self, user_id: str, *, module: str | None) -> dict[AssetKind, int]:
        """How many assets of each kind the user sees in their list (of `module` if given); every kind is
        there, 0 when there are none."""
        ...


class StorageUnitOfWork(UnitOfWork, Protocol):
    assets: AssetStore


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str
    # The object's first bytes, when they were read with the rest (`ObjectStore.inspect`).
    first_bytes: bytes = b""


class ObjectStore(Protocol):
    async def presign_put(
        self, bucket: str, key: str, *, content_type: str, size: int, ttl_seconds: int
    ) -> str: ...
    async def presign_get(self, bucket: str, key: str, *, ttl_seconds: int) -> str: ...
    async def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """None when there is no such object."""
        ...

    async def inspect(self, bucket: str, key: str, length: int = 32) -> ObjectInfo | None:
        """Size, type and the first `length` bytes in one request; None when there is no such object."""
        ...

    async def read(self, bucket: str, key: str) -> bytes: ...
    async def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...
    async def copy_public(
        self, source_bucket: str, source_key: str, bucket: str, key: str, content_type: str
    ) -> None: ...
    async def delete(self, bucket: str, key: str) -> None: ...
