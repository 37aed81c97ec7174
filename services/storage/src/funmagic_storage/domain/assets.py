"""Storage rules: buckets by visibility, keys, filenames, modules, sizes and content types; what kind of
thing an asset is; which outputs go with a deleted task; the records of assets and pending uploads, and the
refusals. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from funmagic_kit.errors import Conflict, NotFound, Refused, TooLarge

__all__ = [
    "ASSET_KINDS",
    "USER_UPLOAD_TYPES",
    "AssetKind",
    "AssetNotFound",
    "AssetRecord",
    "OutputOfDeletedTask",
    "PendingUpload",
    "UploadNotReady",
    "UploadRefused",
    "UploadTooLarge",
    "Visibility",
    "asset_kind",
    "check_module",
    "check_upload",
    "discarded_outputs",
    "outputs_deleted_with_their_tasks",
    "public_key",
    "published_assets_outlive_their_task",
    "sanitize_filename",
    "sniff_image_type",
    "storage_key",
]

Visibility = Literal["public", "private", "admin-private"]
AssetKind = Literal["image", "model", "pointcloud", "other"]
ASSET_KINDS: tuple[AssetKind, ...] = ("image", "model", "pointcloud", "other")
# The same rule as the backfill of migration 003: change both together.
MODEL_TYPES = frozenset({"model/gltf-binary", "model/gltf+json", "model/obj"})
POINT_CLOUD_TYPES = frozenset({"application/x-ply", "model/ply"})
MAX_FILENAME_BYTES = 120
_MODULE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# What a user may upload: raster images only. SVG, HTML and other active content could run script when
# served from our domains, so they are refused.
USER_UPLOAD_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})
ACTIVE_CONTENT = frozenset(
    {
        "image/svg+xml",
        "text/html",
        "application/xhtml+xml",
        "application/javascript",
        "text/javascript",
        "application/xml",
        "text/xml",
    }
)


class UploadRefused(Refused, code="upload_refused"):
    """The upload is not allowed; `code` says why (stable for clients)."""


class UploadTooLarge(UploadRefused, TooLarge, code="too_large"):
    """The declared or uploaded size is over the module's limit."""


class AssetNotFound(NotFound):
    """No such asset or upload for this caller (another user's looks exactly like a missing one)."""


class UploadNotReady(Conflict, code="upload_not_ready"):
    """The upload cannot be confirmed (not uploaded yet, or not what was declared); `code` says why."""


class OutputOfDeletedTask(Conflict, code="task_deleted"):
    """An output arrived for a task that was deleted: its outputs went with it, and so does this one."""


@dataclass(frozen=True)
class PendingUpload:
    """A key reserved for an object on its way (a presigned upload, or a server-side write)."""

    id: str
    user_id: str
    bucket: str
    storage_key: str
    visibility: Visibility
    module: str
    filename: str
    content_type: str
    size: int
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None = None
    asset_id: str | None = None  # once confirmed


@dataclass(frozen=True)
class AssetRecord:
    id: str
    user_id: str
    bucket: str
    storage_key: str
    visibility: Visibility
    module: str
    filename: str
    mime_type: str
    kind: AssetKind  # from mime_type (`asset_kind`), stored so that lists filter and count in SQL
    size: int
    task_id: str | None
    public_key: str | None  # its key in the public bucket while published
    created_at: datetime
    updated_at: datetime


def sanitize_filename(name: str) -> str:
    """A safe, readable file name: no path separators, control characters or `..`; unicode kept (NFC);
    at most 120 bytes of UTF-8 with the extension preserved."""
    text = unicodedata.normalize("NFC", name)
    text = "".join("_" if ch in "/\\" else ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r"\s+", " ", text).strip(" ._")
    if not text:
        return "file"
    stem, dot, extension = text.rpartition(".")
    if not dot or not stem or len(extension.encode()) > 16:
        stem, extension = text, ""
    suffix = f".{extension}" if extension else ""
    budget = MAX_FILENAME_BYTES - len(suffix.encode())
    while len(stem.encode()) > budget:
        stem = stem[:-1]
    return (stem.rstrip(" ._") or "file") + suffix


def check_module(module: str) -> str:
    if not _MODULE.fullmatch(module):
        raise UploadRefused("a module is 1–40 lower-case letters, digits or dashes", code="invalid_module")
    return module


def check_upload(
    *, content_type: str, size: int, module: str, max_bytes: int, allowed_types: frozenset[str]
) -> None:
    check_module(module)
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ACTIVE_CONTENT:
        raise UploadRefused(f"{kind} can carry scripts and is not accepted", code="active_content")
    if kind not in allowed_types:
        raise UploadRefused(
            f"{kind} is not accepted; use one of {sorted(allowed_types)}", code="unsupported_type"
        )
    if size <= 0:
        raise UploadRefused("the file is empty", code="empty_file")
    if size > max_bytes:
        raise UploadTooLarge(f"{size} bytes is over the {max_bytes}-byte limit for {module}")


def asset_kind(mime_type: str) -> AssetKind:
    """What an asset is, from its MIME type: `image/*` an image; glTF (binary or JSON) and OBJ a model; PLY
    a point cloud; anything else other."""
    essence = mime_type.split(";", 1)[0].strip().lower()
    if essence.startswith("image/"):
        return "image"
    if essence in MODEL_TYPES:
        return "model"
    if essence in POINT_CLOUD_TYPES:
        return "pointcloud"
    return "other"


def published_assets_outlive_their_task(asset: AssetRecord) -> bool:
    """A published output stays when its task is deleted: someone may hold its public link."""
    return asset.visibility == "public"


def outputs_deleted_with_their_tasks(
    assets: Iterable[AssetRecord], *, user_id: str, task_ids: Iterable[str]
) -> list[AssetRecord]:
    """Of `assets`, those that go when `user_id` deletes the tasks `task_ids`: the tasks' outputs that user
    owns, except the published ones."""
    deleted = set(task_ids)
    return [
        asset
        for asset in assets
        if asset.task_id in deleted
        and asset.user_id == user_id
        and not published_assets_outlive_their_task(asset)
    ]


def discarded_outputs(
    assets: Iterable[AssetRecord], *, user_id: str, task_id: str, asset_ids: Iterable[str]
) -> list[AssetRecord]:
    """Of `assets`, those that go when a step's output of `user_id`'s task `task_id` is discarded (nothing
    paid for it): the named assets that are that task's outputs and that user's, except published ones."""
    named = set(asset_ids)
    return [
        asset
        for asset in outputs_deleted_with_their_tasks(assets, user_id=user_id, task_ids=(task_id,))
        if asset.id in named
    ]


def storage_key(user_id: str, module: str, timestamp_ms: int, filename: str) -> str:
    return f"{user_id}/{module}/{timestamp_ms}_{filename}"


def public_key(user_id: str, asset_id: str, filename: str) -> str:
    return f"shared/{user_id}/{asset_id}/{filename}"


def sniff_image_type(head: bytes) -> str | None:
    """The image type the first bytes prove, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None
