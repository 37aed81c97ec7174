"""`/api/assets*` and admin uploads: the models of storage's public face.

Request models and the storage route they are the body (or query) of — the same fields and rules:

    UploadRequest     POST /v1/uploads and POST /v1/admin/uploads
    AssetQuery        GET /v1/assets (query)
    AssetUrlsRequest  POST /v1/internal/assets/urls (other services only)

`Asset` is the answer of completing an upload and of reading, publishing and unpublishing an asset;
`AssetPage` of listing them. The internal routes answer `AssetUrls` (`POST /v1/internal/assets/urls`) and
`CatalogAsset` (`POST /v1/internal/assets/{asset_id}/publish-for-catalog`): shared here so that their callers
(the gateway, tasks) read them with the same models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from funmagic_contracts.api.base import Reply, Request

__all__ = [
    "Asset",
    "AssetCounts",
    "AssetKind",
    "AssetPage",
    "AssetQuery",
    "AssetUrl",
    "AssetUrls",
    "AssetUrlsRequest",
    "CatalogAsset",
    "UploadRequest",
    "UploadTicket",
]

AssetKind = Literal["image", "model", "pointcloud", "other"]
"""What an asset is, from its MIME type: `image/*` → image; `model/gltf-binary`, `model/gltf+json`,
`model/obj` → model; `application/x-ply`, `model/ply` → pointcloud; anything else → other."""


class UploadRequest(Request):
    filename: str = Field(min_length=1, max_length=1024)
    content_type: str = Field(min_length=3, max_length=100, examples=["image/png"])
    size: int = Field(gt=0, le=10 * 1024**3, description="Bytes; the upload URL accepts exactly this many.")
    module: str = Field(
        min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", examples=["uploads"]
    )


class UploadTicket(Reply):
    upload_id: str
    method: str
    url: str = Field(description="PUT the file here, with exactly these headers, before `expires_at`.")
    headers: dict[str, str]
    filename: str = Field(description="The file name as stored (sanitised).")
    expires_at: datetime


class Asset(Reply):
    id: str
    user_id: str
    visibility: str
    module: str
    filename: str
    mime_type: str
    kind: AssetKind = Field(description="What the asset is, from its MIME type.")
    size: int
    task_id: str | None = None
    url: str = Field(description="CDN URL when published, else a presigned GET URL valid for about an hour.")
    created_at: datetime


class AssetCounts(Reply):
    """How many of my assets there are of each kind (within the `module` asked for, if any)."""

    image: int = 0
    model: int = 0
    pointcloud: int = 0
    other: int = 0


class AssetPage(Reply):
    items: list[Asset]
    next_cursor: str | None = None
    counts: AssetCounts = Field(
        default_factory=AssetCounts,
        description="My assets per kind, whatever the page and the `kind` filter: the tabs' numbers.",
    )


class AssetQuery(Request):
    module: str | None = Field(None, max_length=40)
    kind: AssetKind | None = Field(None, description="Only assets of this kind.")
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)


class AssetUrlsRequest(Request):
    """Which of these assets `user_id` owns, with a URL each (other services only)."""

    user_id: str = Field(min_length=1, max_length=64)
    asset_ids: list[str] = Field(max_length=200, description="At most 200; duplicates are answered once.")


class AssetUrl(Reply):
    url: str = Field(description="CDN URL when published, else a presigned GET URL valid for about an hour.")
    kind: AssetKind
    mime_type: str
    filename: str


class AssetUrls(Reply):
    urls: dict[str, AssetUrl] = Field(
        description="By asset id: the asked-for assets the user owns; the others are simply absent."
    )


class CatalogAsset(Reply):
    """An asset published for the catalog (a tool's thumbnail, a banner's image): its immutable CDN URL."""

    asset_id: str
    url: str
