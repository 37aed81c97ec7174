"""`/api/assets/*` and admin uploads: the public face of storage, every route a declared forward."""

from __future__ import annotations

from funmagic_contracts.api.storage import Asset, AssetPage, AssetQuery, UploadRequest, UploadTicket
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, operations
from funmagic_kit.api import UUID_SEGMENT, Operation

__all__ = ["storage_operations"]

_UPLOAD_RULE = (
    "Business rule: `content_type` must be one the bucket accepts (users: images; 422 "
    "`unsupported_type`, or `active_content` for types that can carry scripts) and `size` at most the "
    "module's limit (413)."
)


def storage_operations(storage: ServiceClient) -> list[Operation]:
    tag, admin = "assets", "admin: assets"
    # `uploads` is not an asset id: only UUID-like segments are.
    asset_id = "{asset_id:" + UUID_SEGMENT + "}"
    upload, asset = "/api/assets/uploads/{upload_id}", "/api/assets/" + asset_id
    return operations(
        Forward("POST", "/api/assets/uploads", storage, "/v1/uploads",
                "Get a URL to upload a file to", tag, "create_upload", access="user", body=UploadRequest,
                reply=UploadTicket, status=201, description=_UPLOAD_RULE),
        Forward("POST", upload + "/complete", storage, "/v1/uploads/{upload_id}/complete",
                "Confirm an upload: the file becomes an asset", tag, "complete_upload", access="user",
                owner="caller", reply=Asset, status=201, errors=(404, 409)),
        Forward("GET", "/api/assets", storage, "/v1/assets",
                "My assets, newest first", tag, "list_assets", access="user", query=AssetQuery,
                reply=AssetPage, description=CURSOR_RULE),
        Forward("GET", asset, storage, "/v1/assets/{asset_id}",
                "One of my assets, with a URL to fetch it", tag, "get_asset", access="user", owner="caller",
                reply=Asset, errors=(404,)),
        Forward("DELETE", asset, storage, "/v1/assets/{asset_id}",
                "Delete one of my assets", tag, "delete_asset", access="user", owner="caller",
                status=204, errors=(404,)),
        Forward("POST", asset + "/publish", storage, "/v1/assets/{asset_id}/publish",
                "Publish an asset at a public, cacheable URL", tag, "publish", access="user", owner="caller",
                reply=Asset, errors=(404,)),
        Forward("POST", asset + "/unpublish", storage, "/v1/assets/{asset_id}/unpublish",
                "Take an asset private again", tag, "unpublish", access="user", owner="caller",
                reply=Asset, errors=(404,)),
        Forward("POST", "/api/admin/assets/uploads", storage, "/v1/admin/uploads",
                "Upload into the admin-only bucket", admin, "create_admin_upload", access="admin",
                body=UploadRequest, reply=UploadTicket, status=201, description=_UPLOAD_RULE),
        Forward("GET", "/api/admin/assets/" + asset_id, storage, "/v1/admin/assets/{asset_id}",
                "Any asset, admin-only ones too", admin, "get_any_asset", access="admin", reply=Asset,
                errors=(404,)),
    )  # fmt: skip
