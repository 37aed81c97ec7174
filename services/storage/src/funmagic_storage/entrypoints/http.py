"""Internal HTTP API of storage, called by the gateway and by other services (health/metrics: the kit).

Refusals are the domain's own errors, answered as problem+json by the kit's middleware."""

from __future__ import annotations

__all__ = ["StorageApp"]

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from funmagic_contracts.api.storage import AssetQuery, AssetUrlsRequest, UploadRequest
from funmagic_kit.api import (
    path_uuid,
    read_body,
    read_query,
    require_internal_caller,
    require_principal,
    require_role,
)
from funmagic_storage.application.assets import AssetService


# The public bodies and queries are `funmagic_contracts.api.storage`'s (and so is the body of the internal
# `…/urls`); these are of the other internal routes other services call.
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=1024)


class OwnerQuery(_Body):
    user_id: str = Field(min_length=1, max_length=64)


class CatalogPublication(_Body):
    """On behalf of whom an image is published for the catalog: the admin whose edit names it."""

    admin_id: str = Field(min_length=1, max_length=64)


class StoreQuery(_Body):
    user_id: str = Field(min_length=1, max_length=64)
    module: str = Field(min_length=1, max_length=40)
    filename: str = Field(min_length=1, max_length=1024)
    visibility: Literal["private", "admin-private"] = "private"
    task_id: str | None = Field(None, max_length=64)


@dataclass(frozen=True)
class StorageApp:
    assets: AssetService

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/v1/uploads", self.create_upload),
            web.post("/v1/uploads/{upload_id}/complete", self.complete_upload),
            web.get("/v1/assets", self.list_assets),
            web.get("/v1/assets/{asset_id}", self.get_asset),
            web.delete("/v1/assets/{asset_id}", self.delete_asset),
            web.post("/v1/assets/{asset_id}/publish", self.publish),
            web.post("/v1/assets/{asset_id}/unpublish", self.unpublish),
            web.post("/v1/admin/uploads", self.create_admin_upload),
            web.get("/v1/admin/assets/{asset_id}", self.get_any_asset),
            web.post("/v1/internal/assets", self.store_bytes),
            web.post("/v1/internal/assets/urls", self.asset_urls),
            web.get("/v1/internal/assets/{asset_id}", self.owned_asset),
            web.get("/v1/internal/assets/{asset_id}/content", self.read_content),
            web.get("/v1/internal/assets/{asset_id}/published-content", self.read_published_content),
            web.post("/v1/internal/assets/{asset_id}/publish-for-catalog", self.publish_for_catalog),
        ]

    async def create_upload(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        body = await read_body(request, UploadRequest)
        upload = await self.assets.create_upload(principal.user_id, **body.model_dump())
        return web.json_response(upload, status=201)

    async def create_admin_upload(self, request: web.Request) -> web.Response:
        principal = require_role(request, "admin")
        body = await read_body(request, UploadRequest)
        upload = await self.assets.create_upload(
            principal.user_id, **body.model_dump(), visibility="admin-private"
        )
        return web.json_response(upload, status=201)

    async def complete_upload(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        upload_id = path_uuid(request, "upload_id", "upload")
        return web.json_response(await self.assets.complete_upload(principal.user_id, upload_id), status=201)

    async def list_assets(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, AssetQuery)
        page = await self.assets.list(
            principal.user_id, module=query.module, kind=query.kind, limit=query.limit, cursor=query.cursor
        )
        return web.json_response(page)

    async def get_asset(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        return web.json_response(
            await self.assets.get(principal.user_id, path_uuid(request, "asset_id", "asset"))
        )

    async def get_any_asset(self, request: web.Request) -> web.Response:
        principal = require_role(request, "admin")
        asset_id = path_uuid(request, "asset_id", "asset")
        return web.json_response(await self.assets.get(principal.user_id, asset_id, admin=True))

    async def delete_asset(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        await self.assets.delete(principal.user_id, path_uuid(request, "asset_id", "asset"))
        return web.Response(status=204)

    async def publish(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        return web.json_response(
            await self.assets.publish(principal.user_id, path_uuid(request, "asset_id", "asset"))
        )

    async def unpublish(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        asset_id = path_uuid(request, "asset_id", "asset")
        return web.json_response(await self.assets.unpublish(principal.user_id, asset_id))

    async def store_bytes(self, request: web.Request) -> web.Response:
        """For other services only (the internal credential): the body is the file."""
        require_internal_caller(request)
        query = read_query(request, StoreQuery)
        data = await request.read()
        asset = await self.assets.store_bytes(
            **query.model_dump(), content_type=request.content_type or "application/octet-stream", data=data
        )
        return web.json_response(asset, status=201)

    async def read_content(self, request: web.Request) -> web.Response:
        """For other services only: the bytes of an asset the given user owns (404 otherwise)."""
        require_internal_caller(request)
        query = read_query(request, OwnerQuery)
        asset, data = await self.assets.read_owned(query.user_id, path_uuid(request, "asset_id", "asset"))
        return web.Response(
            body=data,
            content_type=asset.mime_type,
            headers={"X-Asset-Filename": quote(asset.filename), "X-Asset-Module": asset.module},
        )

    async def read_published_content(self, request: web.Request) -> web.Response:
        """For other services only (providers, for a style reference's image): the bytes of a published
        asset, whoever owns it — its public copy, what its CDN URL gives anyone (404 when not published)."""
        require_internal_caller(request)
        asset, data = await self.assets.read_published(path_uuid(request, "asset_id", "asset"))
        return web.Response(
            body=data,
            content_type=asset.mime_type,
            headers={"X-Asset-Filename": quote(asset.filename), "X-Asset-Module": asset.module},
        )

    async def owned_asset(self, request: web.Request) -> web.Response:
        """For other services only: an asset's record if the given user owns it (404 otherwise)."""
        require_internal_caller(request)
        query = read_query(request, OwnerQuery)
        asset = await self.assets.owned_record(query.user_id, path_uuid(request, "asset_id", "asset"))
        return web.json_response(asset)

    async def asset_urls(self, request: web.Request) -> web.Response:
        """For other services only: a URL (and kind, type, name) for each of the assets the given user
        owns among those asked for; the others are simply absent."""
        require_internal_caller(request)
        body = await read_body(request, AssetUrlsRequest)
        return web.json_response({"urls": await self.assets.urls(body.user_id, body.asset_ids)})

    async def publish_for_catalog(self, request: web.Request) -> web.Response:
        """For other services only (tasks, for a tool's or banner's image): publish the asset of the admin
        the body names (`CatalogPublication`), in whichever bucket, and answer its CDN URL."""
        require_internal_caller(request)
        body = await read_body(request, CatalogPublication)
        asset_id = path_uuid(request, "asset_id", "asset")
        return web.json_response(await self.assets.publish_for_catalog(asset_id, body.admin_id))
