"""The HTTP API of storage as the runtime serves it (the routes `build` returns behind the kit's problem+json
middleware): refusals keep their statuses and codes, and the routes for other services answer only them."""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote

import aiohttp
from storage_test_support import PNG, Storage
from yarl import URL

SERVICE = {"X-Test-Internal": "yes"}


def as_user(user_id: str, role: str = "user") -> dict[str, str]:
    return {"X-Test-User": user_id, "X-Test-Role": role}


def upload_body(**changes: object) -> dict[str, object]:
    return {
        "filename": "a.png",
        "content_type": "image/png",
        "size": len(PNG),
        "module": "uploads",
        **changes,
    }


async def problem_of(response: aiohttp.ClientResponse) -> tuple[int, str | None]:
    body = await response.json(content_type=None)
    assert response.content_type == "application/problem+json", body
    return response.status, body.get("code")


async def test_an_upload_over_its_module_limit_is_too_large_and_other_refusals_unprocessable(
    api: aiohttp.ClientSession, storage: Storage
) -> None:
    user = as_user(storage.new_user())
    cases = [
        (upload_body(module="avatar", size=5 * 1024 * 1024 + 1), (413, "too_large")),
        (upload_body(content_type="image/svg+xml"), (422, "active_content")),
        (upload_body(content_type="application/pdf"), (422, "unsupported_type")),
        # Refused by the body's schema (the module's pattern, in the document), before storage's own rule.
        (upload_body(module="Bad-Module"), (422, None)),
    ]
    for body, expected in cases:
        async with api.post("/v1/uploads", json=body, headers=user) as response:
            assert await problem_of(response) == expected, body


async def test_confirming_before_the_bytes_arrive_is_a_conflict_naming_why(
    api: aiohttp.ClientSession, storage: Storage
) -> None:
    user = as_user(storage.new_user())
    async with api.post("/v1/uploads", json=upload_body(), headers=user) as response:
        assert response.status == 201
        ticket = await response.json()

    async with api.post(f"/v1/uploads/{ticket['upload_id']}/complete", headers=user) as response:
        assert await problem_of(response) == (409, "not_uploaded")
    assert await storage.outbox() == []


async def test_an_unknown_or_foreign_asset_is_not_found(api: aiohttp.ClientSession, storage: Storage) -> None:
    owner, other = storage.new_user(), storage.new_user()
    stored = await storage.assets.store_bytes(
        user_id=owner,
        module="uploads",
        filename="a.png",
        content_type="image/png",
        data=PNG,
        visibility="private",
        task_id=None,
    )
    for asset_id, user in ((str(uuid.uuid4()), owner), (stored["id"], other)):
        async with api.get(f"/v1/assets/{asset_id}", headers=as_user(user)) as response:
            assert await problem_of(response) == (404, "not_found")
        async with api.post(f"/v1/assets/{asset_id}/publish", headers=as_user(user)) as response:
            assert await problem_of(response) == (404, "not_found")
    async with api.get(f"/v1/assets/{stored['id']}", headers=as_user(owner)) as response:
        assert response.status == 200


async def test_a_forged_cursor_is_unprocessable(api: aiohttp.ClientSession, storage: Storage) -> None:
    forged = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", "not-a-uuid"]').decode()
    async with api.get(f"/v1/assets?cursor={forged}", headers=as_user(storage.new_user())) as response:
        assert await problem_of(response) == (422, "invalid_cursor")


async def test_other_services_store_and_read_a_users_bytes_and_nobody_else_may(
    api: aiohttp.ClientSession, storage: Storage
) -> None:
    owner = storage.new_user()
    query = f"user_id={owner}&module=image-gen&filename={quote('out put.png')}&task_id=task-1"

    async with api.post(
        f"/v1/internal/assets?{query}", data=PNG, headers={"Content-Type": "image/png"}
    ) as response:
        assert response.status == 403, "a user's credentials are not a service's"
    async with api.post(
        f"/v1/internal/assets?{query}", data=PNG, headers={**SERVICE, "Content-Type": "image/png"}
    ) as response:
        assert response.status == 201
        stored = await response.json()

    assert (stored["user_id"], stored["filename"], stored["task_id"]) == (owner, "out put.png", "task-1")
    base = f"/v1/internal/assets/{stored['id']}"
    async with api.get(f"{base}?user_id={owner}", headers=SERVICE) as response:
        record = await response.json()
    assert record == {
        "id": stored["id"],
        "user_id": owner,
        "visibility": "private",
        "module": "image-gen",
        "filename": "out put.png",
        "mime_type": "image/png",
        "size": len(PNG),
        "task_id": "task-1",
    }
    async with api.get(f"{base}/content?user_id={owner}", headers=SERVICE) as response:
        assert response.status == 200
        assert await response.read() == PNG
        assert response.headers["X-Asset-Filename"] == quote("out put.png")
        assert response.headers["X-Asset-Module"] == "image-gen"
        assert response.content_type == "image/png"
    async with api.get(f"{base}/content?user_id={storage.new_user()}", headers=SERVICE) as response:
        assert await problem_of(response) == (404, "not_found")
    [created] = await storage.outbox()
    assert created.type == "AssetCreated"
    assert URL(stored["url"]).query.get("X-Amz-Signature")


async def test_other_services_read_a_published_asset_whoever_owns_it_and_only_while_published(
    api: aiohttp.ClientSession, storage: Storage
) -> None:
    """A style reference's image: the admin's asset, read for another user's task (providers)."""
    admin = storage.new_user()
    query = f"user_id={admin}&module=banners&filename=style.png&visibility=admin-private"
    async with api.post(
        f"/v1/internal/assets?{query}", data=PNG, headers={**SERVICE, "Content-Type": "image/png"}
    ) as response:
        assert response.status == 201
        stored = await response.json()
    base = f"/v1/internal/assets/{stored['id']}"

    async with api.get(f"{base}/published-content", headers=SERVICE) as response:
        assert await problem_of(response) == (404, "not_found"), "not published: nobody's to read"
    async with api.post(f"{base}/publish-for-catalog", json={"admin_id": admin}, headers=SERVICE) as response:
        assert response.status == 200
    async with api.get(f"{base}/published-content", headers=as_user(admin, "admin")) as response:
        assert response.status == 403, "for other services only"
    async with api.get(f"{base}/published-content", headers=SERVICE) as response:
        assert response.status == 200
        assert await response.read() == PNG
        assert response.headers["X-Asset-Filename"] == "style.png"
        assert response.content_type == "image/png"
    async with api.post(f"/v1/assets/{stored['id']}/unpublish", headers=as_user(admin, "admin")) as response:
        assert response.status == 200
    async with api.get(f"{base}/published-content", headers=SERVICE) as response:
        assert await problem_of(response) == (404, "not_found"), "unpublished: no longer readable"
