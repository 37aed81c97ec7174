"""The storage use cases: presigned uploads, confirmation, server-side writes, downloads, publishing, the
outputs of deleted tasks, and the files of deleted accounts (purged after a grace period).

Every asset belongs to one user; another user's asset is simply not found. Users write only to the private
bucket; publishing copies into the public one; the admin bucket is reached only through admin routes (and
by the catalog's publication of an admin's upload, `publish_for_catalog`).
"""

from __future__ import annotations

__all__ = [
    "AssetPage",
    "AssetService",
    "AssetUrl",
    "AssetView",
    "CatalogAsset",
    "OwnedAsset",
    "StoragePolicy",
    "UploadTicket",
]

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict
from urllib.parse import quote

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.storage.events import AssetCreated, AssetDeleted, AssetPublished, AssetUnpublished
from funmagic_kit.clock import Clock
from funmagic_kit.ports import UnitOfWorkFactory
from funmagic_storage.application.ports import ObjectStore, StorageUnitOfWork
from funmagic_storage.domain.assets import (
    USER_UPLOAD_TYPES,
    AssetKind,
    AssetNotFound,
    AssetRecord,
    OutputOfDeletedTask,
    PendingUpload,
    UploadNotReady,
    UploadRefused,
    Visibility,
    asset_kind,
    check_module,
    check_upload,
    discarded_outputs,
    outputs_deleted_with_their_tasks,
    public_key,
    sanitize_filename,
    sniff_image_type,
    storage_key,
)
from funmagic_storage.domain.deleted_owners import (
    assets_purged_with_their_owner,
    check_owner_not_deleted,
    purge_is_due,
    purged,
    schedule_purge,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoragePolicy:
    bucket_public: str
    bucket_private: str
    bucket_admin: str
    cdn_url: str
    download_ttl: timedelta = timedelta(hours=1)
    upload_ttl: timedelta = timedelta(minutes=15)
    pending_ttl: timedelta = timedelta(hours=1)
    max_bytes: int = 20 * 1024 * 1024
    module_max_bytes: dict[str, int] = field(default_factory=dict)
    user_types: frozenset[str] = USER_UPLOAD_TYPES
    # How long a deleted account's files stay before the purge removes them (domain/deleted_owners.py).
    deleted_owner_grace: timedelta = timedelta(hours=72)

    def bucket_for(self, visibility: Visibility) -> str:
        return {
            "public": self.bucket_public,
            "private": self.bucket_private,
            "admin-private": self.bucket_admin,
        }[visibility]

    def limit_for(self, module: str) -> int:
        return self.module_max_bytes.get(module, self.max_bytes)

    def visibility_of(self, bucket: str) -> Visibility:
        """What an asset kept in `bucket` is when not published."""
        return "admin-private" if bucket == self.bucket_admin else "private"


class UploadTicket(TypedDict):
    """Where and how the client PUTs the file (the URL is signed for exactly this type and size)."""

    upload_id: str
    method: str
    url: str
    headers: dict[str, str]
    filename: str
    expires_at: str


class OwnedAsset(TypedDict):
    """An asset's record as other services see it (no URL)."""

    id: str
    user_id: str
    visibility: Visibility
    module: str
    filename: str
    mime_type: str
    size: int
    task_id: str | None


class AssetView(OwnedAsset):
    """An asset as its owner sees it: what kind of thing it is, and a URL to download it (the CDN's once
    published)."""

    kind: AssetKind
    url: str
    created_at: str


class AssetPage(TypedDict):
    items: list[AssetView]
    next_cursor: str | None
    counts: dict[AssetKind, int]  # every kind, whatever the page and the kind asked for


class AssetUrl(TypedDict):
    """Where to fetch an asset from, for other services composing views (a task's thumbnail)."""

    url: str
    kind: AssetKind
    mime_type: str
    filename: str


class CatalogAsset(TypedDict):
    """An asset published for the catalog, at its immutable CDN URL."""

    asset_id: str
    url: str


@dataclass(frozen=True, kw_only=True)
class AssetService:
    uow: UnitOfWorkFactory[StorageUnitOfWork]
    objects: ObjectStore
    policy: StoragePolicy
    clock: Clock

    # --- uploads -------------------------------------------------------------------------------------

    async def create_upload(
        self,
        user_id: str,
        *,
        filename: str,
        content_type: str,
        size: int,
        module: str,
        visibility: Visibility = "private",
    ) -> UploadTicket:
        content_type = content_type.split(";", 1)[0].strip().lower()
        check_upload(
            content_type=content_type,
            size=size,
            module=module,
            max_bytes=self.policy.limit_for(module),
            allowed_types=self.policy.user_types,
        )
        if visibility == "public":
            raise UploadRefused("uploads are private; publish an asset to make it public", code="visibility")
        now = self.clock.now()
        upload = await self._reserve_key(
            user_id,
            visibility=visibility,
            module=module,
            filename=filename,
            content_type=content_type,
            size=size,
            now=now,
        )
        url = await self.objects.presign_put(
            upload.bucket,
            upload.storage_key,
            content_type=content_type,
            size=size,
            ttl_seconds=int(self.policy.upload_ttl.total_seconds()),
        )
        return {
            "upload_id": upload.id,
            "method": "PUT",
            "url": url,
            "headers": {"Content-Type": content_type, "Content-Length": str(size)},
            "filename": upload.filename,
            "expires_at": (now + self.policy.upload_ttl).isoformat(),
        }

    async def complete_upload(self, user_id: str, upload_id: str) -> AssetView:
        """Check the uploaded object in S3, then record the asset. The S3 calls come before the
        transaction, which only records: no database connection waits on S3. A confirmation that another
        finished in between (a retry) answers that one's asset."""
        now = self.clock.now()
        async with self.uow().reading() as uow:
            upload = await uow.assets.upload(upload_id)
            if upload is None or upload.user_id != user_id:
                raise AssetNotFound("no such upload")
            if upload.completed_at is not None:  # a retried confirmation answers the same asset
                return await self._view(await _confirmed_asset(uow, upload))
        if upload.expires_at <= now:
            raise UploadNotReady("this upload expired; start a new one", code="expired")
        await self._check_object(upload)
        async with self.uow().pipelined() as uow:  # see `_register`
            asset = await _register(uow, upload, now)
        return await self._view(asset)

    async def _check_object(self, upload: PendingUpload) -> None:
        info = await self.objects.inspect(upload.bucket, upload.storage_key)
        if info is None:
            raise UploadNotReady("nothing was uploaded yet", code="not_uploaded")
        if info.size != upload.size:
            raise UploadNotReady(
                f"the object has {info.size} bytes, {upload.size} were declared", code="size_mismatch"
            )
        declared = upload.content_type
        if info.content_type.split(";", 1)[0].strip().lower() != declared:
            raise UploadNotReady(
                f"the object is {info.content_type}, {declared} was declared", code="type_mismatch"
            )
        if declared.startswith("image/"):
            sniffed = sniff_image_type(info.first_bytes)
            if sniffed != declared:
                raise UploadNotReady(f"the bytes are not a {declared} image", code="content_mismatch")

    async def store_bytes(
        self,
        *,
        user_id: str,
        module: str,
        filename: str,
        content_type: str,
        data: bytes,
        visibility: Visibility,
        task_id: str | None,
    ) -> AssetView:
        """Server-side writes for other services (outputs of providers, admin files): store and register."""
        check_module(module)
        if visibility == "public":
            raise UploadRefused("store privately, then publish", code="visibility")
        now = self.clock.now()
        # Reserved like an upload first: if registering fails after the write, the sweep removes the object.
        reserved = await self._reserve_key(
            user_id,
            visibility=visibility,
            module=module,
            filename=filename,
            content_type=content_type,
            size=len(data),
            now=now,
        )
        await self.objects.put(reserved.bucket, reserved.storage_key, data, content_type=content_type)
        async with self.uow().pipelined() as uow:  # see `_register`
            asset = await _register(uow, reserved, now, task_id=task_id)
        return await self._view(asset)

    async def _reserve_key(
        self,
        user_id: str,
        *,
        visibility: Visibility,
        module: str,
        filename: str,
        content_type: str,
        size: int,
        now: datetime,
    ) -> PendingUpload:
        """A pending upload in the bucket of `visibility`, under the file name made safe, holding a key no
        other upload has: two files of the same name in the same millisecond get the next free millisecond
        instead of overwriting each other."""
        bucket = self.policy.bucket_for(visibility)
        filename = sanitize_filename(filename)
        timestamp_ms = int(now.timestamp() * 1000)
        async with self.uow().pipelined() as uow:  # a round trip per attempt, one for the commit
            while True:
                upload = PendingUpload(
                    id=str(uuid.uuid4()),
                    user_id=user_id,
                    bucket=bucket,
                    storage_key=storage_key(user_id, module, timestamp_ms, filename),
                    visibility=visibility,
                    module=module,
                    filename=filename,
                    content_type=content_type,
                    size=size,
                    created_at=now,
                    expires_at=now + self.policy.pending_ttl,
                )
                if await uow.assets.add_upload(upload):
                    return upload
                timestamp_ms += 1

    # --- reading -------------------------------------------------------------------------------------

    async def get(self, user_id: str, asset_id: str, *, admin: bool = False) -> AssetView:
        async with self.uow().reading() as uow:
            asset = await uow.assets.asset(asset_id)
        return await self._view(_owned(asset, user_id, admin=admin))

    async def owned_record(self, user_id: str, asset_id: str) -> OwnedAsset:
        """For other services checking a reference (a task's input): the record, if `user_id` owns it."""
        return _record(await self._owned_by(user_id, asset_id))

    async def read_owned(self, user_id: str, asset_id: str) -> tuple[AssetRecord, bytes]:
        """For other services working on the owner's behalf (a provider reading a step's input): the
        record and the bytes, only if `user_id` owns the asset (admin-only assets included: the owner is an
        admin whose studio task reads them)."""
        asset = await self._owned_by(user_id, asset_id)
        data = await self.objects.read(asset.bucket, asset.storage_key)
        return asset, data

    async def read_published(self, asset_id: str) -> tuple[AssetRecord, bytes]:
        """For a provider reading a catalog image (a style reference's, which the task's user does not
        own): the record and the bytes of the asset's public copy, only while it is published — nothing
        that its CDN URL does not already give anyone. The catalog publishes its images when an admin saves
        a tool (`publish_for_catalog`)."""
        async with self.uow().reading() as uow:
            asset = await uow.assets.asset(asset_id)
        if asset is None or not asset.public_key:
            raise AssetNotFound("no such published asset")
        data = await self.objects.read(self.policy.bucket_public, asset.public_key)
        return asset, data

    async def _owned_by(self, user_id: str, asset_id: str) -> AssetRecord:
        """The asset if `user_id` owns it, whatever its visibility (service-to-service reads only)."""
        async with self.uow().reading() as uow:
            asset = await uow.assets.asset(asset_id)
        if asset is None or asset.user_id != user_id:
            raise AssetNotFound("no such asset")
        return asset

    async def list(
        self,
        user_id: str,
        *,
        module: str | None,
        kind: AssetKind | None = None,
        limit: int,
        cursor: str | None,
    ) -> AssetPage:
        # Outside a transaction: the counts may be a moment newer than the page, which no one can tell.
        async with self.uow().reading() as uow:
            items, next_cursor = await uow.assets.assets_of(
                user_id, module=module, kind=kind, limit=limit, cursor=cursor
            )
            counts = await uow.assets.kind_counts(user_id, module=module)
        return {"items": [await self._view(a) for a in items], "next_cursor": next_cursor, "counts": counts}

    async def urls(self, user_id: str, asset_ids: Iterable[str]) -> dict[str, AssetUrl]:
        """For other services composing a user's views (thumbnails of tasks): a URL for each of `asset_ids`
        that `user_id` owns, whatever its visibility (the owner of an admin-only output is the admin whose
        studio task made it); the others are simply absent."""
        async with self.uow().reading() as uow:
            assets = await uow.assets.owned_assets(user_id, asset_ids)
        return {
            asset.id: {
                "url": await self._url(asset),
                "kind": asset.kind,
                "mime_type": asset.mime_type,
                "filename": asset.filename,
            }
            for asset in assets
        }

    # --- publishing and deleting ---------------------------------------------------------------------

    async def publish(self, user_id: str, asset_id: str) -> AssetView:
        now = self.clock.now()
        async with self.uow() as uow:
            asset = _owned(await uow.assets.asset(asset_id, for_update=True), user_id)
            asset = await self._publish(uow, asset, now)
        return await self._view(asset)

    async def publish_for_catalog(self, asset_id: str, admin_id: str) -> CatalogAsset:
        """For tasks, when `admin_id` puts an asset (their upload, in any bucket) on a tool or a banner: the
        asset published, and its immutable CDN URL. Publishing a published asset changes nothing, whoever
        owns it (it is public already: another admin's image kept on the tool they edit); an unpublished
        asset of anyone else — a user's private upload, another admin's studio output — is not found."""
        now = self.clock.now()
        async with self.uow() as uow:
            asset = await uow.assets.asset(asset_id, for_update=True)
            if asset is None or (not asset.public_key and asset.user_id != admin_id):
                raise AssetNotFound("no such asset")
            asset = await self._publish(uow, asset, now)
        return {"asset_id": asset.id, "url": await self._url(asset)}  # published: the CDN's URL

    async def _publish(self, uow: StorageUnitOfWork, asset: AssetRecord, now: datetime) -> AssetRecord:
        """A copy in the public bucket, the record pointing at it and AssetPublished, in `uow` (the asset
        locked by the caller); an asset already published as it is."""
        if asset.public_key:
            return asset
        key = public_key(asset.user_id, asset.id, asset.filename)
        await self.objects.copy_public(
            asset.bucket, asset.storage_key, self.policy.bucket_public, key, asset.mime_type
        )
        published = await uow.assets.set_publication(asset.id, key, "public", now)
        uow.publish(
            AssetPublished(asset_id=asset.id, user_id=asset.user_id, public_key=key, cdn_url=self._cdn(key))
        )
        return published

    async def unpublish(self, user_id: str, asset_id: str) -> AssetView:
        now = self.clock.now()
        async with self.uow() as uow:
            asset = _owned(await uow.assets.asset(asset_id, for_update=True), user_id)
            if asset.public_key:
                await self.objects.delete(self.policy.bucket_public, asset.public_key)
                visibility = self.policy.visibility_of(asset.bucket)
                asset = await uow.assets.set_publication(asset_id, None, visibility, now)
                uow.publish(AssetUnpublished(asset_id=asset_id, user_id=user_id))
        return await self._view(asset)

    async def delete(self, user_id: str, asset_id: str) -> None:
        now = self.clock.now()
        async with self.uow() as uow:
            asset = _owned(await uow.assets.asset(asset_id, for_update=True), user_id)
            if asset.public_key:
                await self.objects.delete(self.policy.bucket_public, asset.public_key)
            await self.objects.delete(asset.bucket, asset.storage_key)
            await uow.assets.delete_asset(asset_id, now)
            uow.publish(AssetDeleted(asset_id=asset_id, user_id=user_id))

    async def delete_task_outputs(
        self, uow: StorageUnitOfWork, *, user_id: str, task_ids: Iterable[str], caused_by: Envelope
    ) -> int:
        """When `user_id`'s tasks are deleted (in the consumer's `uow`): their outputs go, objects and
        records, each with AssetDeleted — except the published ones, which stay (someone may hold their
        public link). The tasks are remembered, so an output stored for one of them later is refused.
        Returns how many assets were deleted."""
        now = self.clock.now()
        task_ids = sorted(set(task_ids))
        await uow.assets.lock_tasks(task_ids)
        await uow.assets.mark_tasks_deleted(task_ids, user_id, now)
        outputs = await uow.assets.outputs_of_tasks(user_id, task_ids)
        doomed = outputs_deleted_with_their_tasks(outputs, user_id=user_id, task_ids=task_ids)
        await self._delete_outputs(uow, doomed, now=now, caused_by=caused_by)
        if doomed:
            log.info(
                "outputs of deleted tasks removed",
                extra={"count": len(doomed), "kept": len(outputs) - len(doomed)},
            )
        return len(doomed)

    async def delete_discarded_outputs(
        self,
        uow: StorageUnitOfWork,
        *,
        user_id: str,
        task_id: str,
        asset_ids: Iterable[str],
        caused_by: Envelope,
    ) -> int:
        """When a step's output came for a task that no longer took it (in the consumer's `uow`): nothing
        paid for it, so those outputs go, objects and records, each with AssetDeleted (published ones stay).
        Returns how many assets were deleted."""
        await uow.assets.lock_tasks((task_id,))
        outputs = await uow.assets.outputs_of_tasks(user_id, (task_id,))
        doomed = discarded_outputs(outputs, user_id=user_id, task_id=task_id, asset_ids=asset_ids)
        await self._delete_outputs(uow, doomed, now=self.clock.now(), caused_by=caused_by)
        if doomed:
            log.info("discarded step outputs removed", extra={"task_id": task_id, "count": len(doomed)})
        return len(doomed)

    async def _delete_outputs(
        self, uow: StorageUnitOfWork, doomed: Sequence[AssetRecord], *, now: datetime, caused_by: Envelope
    ) -> None:
        for asset in doomed:
            await uow.assets.delete_asset(asset.id, now)
            uow.publish(AssetDeleted(asset_id=asset.id, user_id=asset.user_id), caused_by=caused_by)
        # The objects last: a failure before here leaves them all, and the redelivered event tries again.
        for asset in doomed:
            await self.objects.delete(asset.bucket, asset.storage_key)

    async def schedule_owner_purge(self, uow: StorageUnitOfWork, *, user_id: str) -> None:
        """When `user_id`'s account is deleted (in the consumer's `uow`): their files are purged once the
        grace period has passed (`purge_deleted_owners`), and nothing new is registered for them from now
        on. A redelivered deletion keeps the first schedule."""
        await uow.assets.lock_owner(user_id)
        purge = schedule_purge(user_id, now=self.clock.now(), grace=self.policy.deleted_owner_grace)
        await uow.assets.schedule_owner_purge(purge)
        log.info("files of a deleted account scheduled for removal", extra={"user_id": user_id})

    async def purge_deleted_owners(self, limit: int = 10) -> int:
        """The purge worker's step: every deleted account whose grace period has passed loses its files
        (records and objects, AssetDeleted each; published ones stay), one account per transaction. Returns
        how many assets were deleted."""
        now = self.clock.now()
        async with self.uow() as uow:
            due = await uow.assets.due_owner_purges(now, limit)
        removed = 0
        for user_id in due:  # one transaction each: one account that fails never holds back the others
            async with self.uow() as uow:
                await uow.assets.lock_owner(user_id)
                purge = await uow.assets.owner_purge(user_id, for_update=True)
                if purge is None or not purge_is_due(purge, now):  # another replica was first
                    continue
                owned = await uow.assets.assets_owned_by(user_id)
                doomed = assets_purged_with_their_owner(owned, user_id=user_id)
                for asset in doomed:
                    await uow.assets.delete_asset(asset.id, now)
                    uow.publish(AssetDeleted(asset_id=asset.id, user_id=asset.user_id))
                await uow.assets.save_owner_purge(purged(purge, now=now))
                # The objects last: a failure before here leaves them all, and the next round tries again.
                for asset in doomed:
                    await self.objects.delete(asset.bucket, asset.storage_key)
            removed += len(doomed)
            log.info(
                "files of a deleted account removed",
                extra={"user_id": user_id, "count": len(doomed), "kept": len(owned) - len(doomed)},
            )
        return removed

    async def sweep_expired_uploads(self) -> int:
        """Removes uploads never confirmed in time, and whatever object they left behind."""
        now = self.clock.now()
        async with self.uow() as uow:
            expired = await uow.assets.expired_uploads(now)
            for upload in expired:
                await self.objects.delete(upload.bucket, upload.storage_key)
                await uow.assets.drop_upload(upload.id)
        if expired:
            log.info("expired uploads removed", extra={"count": len(expired)})
        return len(expired)

    # --- helpers -------------------------------------------------------------------------------------

    def _cdn(self, key: str) -> str:
        # Percent-encoded: a file name may hold "#", "?", "%" or spaces, which would break a raw URL.
        return f"{self.policy.cdn_url.rstrip('/')}/{quote(key)}"

    async def _url(self, asset: AssetRecord) -> str:
        """The CDN's URL once published, else a presigned GET valid for the download TTL."""
        if asset.public_key:
            return self._cdn(asset.public_key)
        return await self.objects.presign_get(
            asset.bucket, asset.storage_key, ttl_seconds=int(self.policy.download_ttl.total_seconds())
        )

    async def _view(self, asset: AssetRecord) -> AssetView:
        return AssetView(
            **_record(asset),
            kind=asset.kind,
            url=await self._url(asset),
            created_at=asset.created_at.isoformat(),
        )


def _record(asset: AssetRecord) -> OwnedAsset:
    return {
        "id": asset.id,
        "user_id": asset.user_id,
        "visibility": asset.visibility,
        "module": asset.module,
        "filename": asset.filename,
        "mime_type": asset.mime_type,
        "size": asset.size,
        "task_id": asset.task_id,
    }


def _owned(asset: AssetRecord | None, user_id: str, *, admin: bool = False) -> AssetRecord:
    # Another user's asset and an admin-only asset look exactly like a missing one.
    if asset is None or (asset.user_id != user_id and not admin):
        raise AssetNotFound("no such asset")
    if asset.visibility == "admin-private" and not admin:
        raise AssetNotFound("no such asset")
    return asset


async def _confirmed_asset(uow: StorageUnitOfWork, upload: PendingUpload | None) -> AssetRecord:
    if upload is None:  # swept meanwhile
        raise AssetNotFound("no such upload")
    asset = await uow.assets.asset(upload.asset_id) if upload.asset_id else None
    if asset is None:  # confirmed, then deleted
        raise AssetNotFound("no such asset")
    return asset


async def _register(
    uow: StorageUnitOfWork, upload: PendingUpload, now: datetime, *, task_id: str | None = None
) -> AssetRecord:
    """The upload, its object in place, becomes an asset: recorded, the upload completed and AssetCreated
    published, in the caller's transaction. An upload another confirmation completed meanwhile answers that
    one's asset. An output of a task deleted meanwhile, or any file of an account deleted meanwhile, is
    refused (its object, never registered, goes with the sweep of unconfirmed uploads).

    Callers run it pipelined: the locks go out with the reads after them, the outbox row with the commit —
    whichever statement fails, the registration fails as a whole and rolls back."""
    if task_id is not None:
        await uow.assets.lock_tasks([task_id])  # taking turns with the deletion of the task's outputs
        if await uow.assets.task_is_deleted(task_id):
            raise OutputOfDeletedTask(f"task {task_id} was deleted; its outputs are not kept")
    # Taking turns with the purge of a deleted account's files, which then leaves nothing behind.
    await uow.assets.lock_owner(upload.user_id, shared=True)
    asset = await uow.assets.add_asset_of_upload(_new_asset(upload, now, task_id), upload.id, now)
    if asset is None:  # the account is deleted, or the upload was completed (or swept) meanwhile
        check_owner_not_deleted(await uow.assets.owner_purge(upload.user_id))
        return await _confirmed_asset(uow, await uow.assets.upload(upload.id))
    uow.publish(
        AssetCreated(
            asset_id=asset.id,
            user_id=asset.user_id,
            bucket=asset.bucket,
            storage_key=asset.storage_key,
            visibility=asset.visibility,
            module=asset.module,
            mime_type=asset.mime_type,
            size=asset.size,
            task_id=asset.task_id,
        )
    )
    return asset


def _new_asset(upload: PendingUpload, now: datetime, task_id: str | None) -> AssetRecord:
    """The asset an upload becomes: its object, as declared when the upload was reserved."""
    return AssetRecord(
        id=str(uuid.uuid4()),
        user_id=upload.user_id,
        bucket=upload.bucket,
        storage_key=upload.storage_key,
        visibility=upload.visibility,
        module=upload.module,
        filename=upload.filename,
        mime_type=upload.content_type,
        kind=asset_kind(upload.content_type),
        size=upload.size,
        task_id=task_id,
        public_key=None,
        created_at=now,
        updated_at=now,
    )
