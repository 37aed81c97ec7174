"""What the storage use cases need from the outside, as Protocols: the asset records a transaction binds,
the transaction itself, and the object store. The adapters layer provides the concrete classes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from funmagic_kit.ports import UnitOfWork
from funmagic_storage.domain.assets import AssetRecord, PendingUpload

__all__ = ["AssetStore", "ObjectInfo", "ObjectStore", "StorageUnitOfWork"]


class AssetStore(Protocol):
    """Assets and pending uploads, inside one transaction."""

    async def add_upload(self, upload: PendingUpload) -> bool:
        """False when another upload already holds its key."""
        ...

    async def upload(self, upload_id: str, *, for_update: bool = False) -> PendingUpload | None:
        """None for an id that is not one of an upload (not even a UUID included)."""
        ...

    async def complete_upload(self, upload_id: str, asset_id: str, now: datetime) -> None: ...

    async def expired_uploads(self, now: datetime, limit: int = 100) -> list[PendingUpload]:
        """Unconfirmed uploads past their time, locked (others sweeping at once skip them)."""
        ...

    async def drop_upload(self, upload_id: str) -> None: ...

    async def add_asset(self, asset: AssetRecord) -> AssetRecord:
        """The asset as stored."""
        ...

    async def asset(self, asset_id: str, *, for_update: bool = False) -> AssetRecord | None:
        """None for an id that is not one of a live asset (not even a UUID included)."""
        ...

    async def set_publication(self, asset_id: str, public_key: str | None, now: datetime) -> AssetRecord:
        """Published under `public_key`, or private again with None."""
        ...

    async def delete_asset(self, asset_id: str, now: datetime) -> None: ...

    async def assets_of(
        self, user_id: str, *, module: str | None, limit: int, cursor: str | None
    ) -> tuple[list[AssetRecord], str | None]:
        """The user's assets a user sees (not admin-only ones), newest first, and the next page's cursor.
        A cursor that is not one is an `InvalidCursor`."""
        ...


class StorageUnitOfWork(UnitOfWork, Protocol):
    assets: AssetStore


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    content_type: str


class ObjectStore(Protocol):
    async def presign_put(
        self, bucket: str, key: str, *, content_type: str, size: int, ttl_seconds: int
    ) -> str: ...
    async def presign_get(self, bucket: str, key: str, *, ttl_seconds: int) -> str: ...
    async def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """None when there is no such object."""
        ...

    async def read_head(self, bucket: str, key: str, length: int = 32) -> bytes: ...
    async def read(self, bucket: str, key: str) -> bytes: ...
    async def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...
    async def copy_public(
        self, source_bucket: str, source_key: str, bucket: str, key: str, content_type: str
    ) -> None: ...
    async def delete(self, bucket: str, key: str) -> None: ...
