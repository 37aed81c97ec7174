"""`/api/assets*` and admin uploads: the models of storage's public face.

Request models and the storage route they are the body (or query) of — the same fields and rules:

    UploadRequest   POST /v1/uploads and POST /v1/admin/uploads
    AssetQuery      GET /v1/assets (query)

`Asset` is the answer of completing an upload and of reading, publishing and unpublishing an asset.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from funmagic_contracts.api.base import Reply, Request

__all__ = ["Asset", "AssetPage", "AssetQuery", "UploadRequest", "UploadTicket"]


class UploadRequest(Request):
    filename: str = Field(min_length=1, max_length=1024)
    content_type: str = Field(min_length=3, max_length=100, examples=["image/png"])
    size: int = Field(gt=0, le=10 * 1024**3, description="Bytes; the upload URL accepts exactly this many.")
    module: str = Field(min_length=1, max_length=40, examples=["uploads"])


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
    size: int
    task_id: str | None = None
    url: str = Field(description="CDN URL when published, else a presigned GET URL valid for about an hour.")
    created_at: datetime


class AssetPage(Reply):
    items: list[Asset]
    next_cursor: str | None = None


class AssetQuery(Request):
    module: str | None = Field(None, max_length=40)
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)
