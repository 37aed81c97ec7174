"""`/api/assets/*` and admin uploads: the public face of storage."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import Field

from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import relay, safe_id
from funmagic_gateway.entrypoints.schemas import Reply, Request
from funmagic_kit.api import Operation, read_body, read_query

__all__ = ["StorageRoutes"]


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


class StorageRoutes:
    def __init__(self, storage: ServiceClient) -> None:
        self._storage = storage

    def operations(self) -> list[Operation]:
        tag, admin = "assets", "admin: assets"
        return [
            Operation(
                "POST",
                "/api/assets/uploads",
                self.create_upload,
                "Get a URL to upload a file to",
                tag,
                access="user",
                body=UploadRequest,
                response=UploadTicket,
                status=201,
            ),
            Operation(
                "POST",
                "/api/assets/uploads/{upload_id}/complete",
                self.complete_upload,
                "Confirm an upload: the file becomes an asset",
                tag,
                access="user",
                response=Asset,
                status=201,
                errors=(404, 409),
            ),
            Operation(
                "GET",
                "/api/assets",
                self.list_assets,
                "My assets, newest first",
                tag,
                access="user",
                query=AssetQuery,
                response=AssetPage,
            ),
            Operation(
                "GET",
                "/api/assets/{asset_id}",
                self.get_asset,
                "One of my assets, with a URL to fetch it",
                tag,
                access="user",
                response=Asset,
                errors=(404,),
            ),
            Operation(
                "DELETE",
                "/api/assets/{asset_id}",
                self.delete_asset,
                "Delete one of my assets",
                tag,
                access="user",
                status=204,
                errors=(404,),
            ),
            Operation(
                "POST",
                "/api/assets/{asset_id}/publish",
                self.publish,
                "Publish an asset at a public, cacheable URL",
                tag,
                access="user",
                response=Asset,
                errors=(404,),
            ),
            Operation(
                "POST",
                "/api/assets/{asset_id}/unpublish",
                self.unpublish,
                "Take an asset private again",
                tag,
                access="user",
                response=Asset,
                errors=(404,),
            ),
            Operation(
                "POST",
                "/api/admin/assets/uploads",
                self.create_admin_upload,
                "Upload into the admin-only bucket",
                admin,
                access="admin",
                body=UploadRequest,
                response=UploadTicket,
                status=201,
            ),
            Operation(
                "GET",
                "/api/admin/assets/{asset_id}",
                self.get_any_asset,
                "Any asset, admin-only ones too",
                admin,
                access="admin",
                response=Asset,
                errors=(404,),
            ),
        ]

    async def create_upload(self, request: web.Request) -> web.Response:
        body = await read_body(request, UploadRequest)
        return await relay(
            self._storage, request, "POST", "/v1/uploads", UploadTicket, payload=body.model_dump()
        )

    async def create_admin_upload(self, request: web.Request) -> web.Response:
        body = await read_body(request, UploadRequest)
        return await relay(
            self._storage, request, "POST", "/v1/admin/uploads", UploadTicket, payload=body.model_dump()
        )

    async def complete_upload(self, request: web.Request) -> web.Response:
        upload_id = safe_id(request.match_info["upload_id"])
        return await relay(self._storage, request, "POST", f"/v1/uploads/{upload_id}/complete", Asset)

    async def list_assets(self, request: web.Request) -> web.Response:
        query = read_query(request, AssetQuery)
        params = {k: str(v) for k, v in query.model_dump(exclude_none=True).items()}
        return await relay(self._storage, request, "GET", "/v1/assets", AssetPage, params=params)

    async def get_asset(self, request: web.Request) -> web.Response:
        asset_id = safe_id(request.match_info["asset_id"])
        return await relay(self._storage, request, "GET", f"/v1/assets/{asset_id}", Asset)

    async def get_any_asset(self, request: web.Request) -> web.Response:
        asset_id = safe_id(request.match_info["asset_id"])
        return await relay(self._storage, request, "GET", f"/v1/admin/assets/{asset_id}", Asset)

    async def delete_asset(self, request: web.Request) -> web.Response:
        asset_id = safe_id(request.match_info["asset_id"])
        return await relay(self._storage, request, "DELETE", f"/v1/assets/{asset_id}", None)

    async def publish(self, request: web.Request) -> web.Response:
        asset_id = safe_id(request.match_info["asset_id"])
        return await relay(self._storage, request, "POST", f"/v1/assets/{asset_id}/publish", Asset)

    async def unpublish(self, request: web.Request) -> web.Response:
        asset_id = safe_id(request.match_info["asset_id"])
        return await relay(self._storage, request, "POST", f"/v1/assets/{asset_id}/unpublish", Asset)
