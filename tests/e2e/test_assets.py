"""Assets through the gateway and the real S3 server: upload, confirm, download, publish, isolation."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from clients import PASSWORD, bearer, browser, call, sign_in, sign_up, unique_email

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


async def _user() -> dict:
    async with browser() as client:
        return await sign_up(client, unique_email("assets"), mode="token")


async def _ticket(
    token: str,
    *,
    filename: str = "cat.png",
    content_type: str = "image/png",
    size: int = len(PNG),
    module: str = "uploads",
) -> tuple[int, dict]:
    async with browser() as client:
        status, body, _ = await call(
            client,
            "POST",
            "/api/assets/uploads",
            json={"filename": filename, "content_type": content_type, "size": size, "module": module},
            headers=bearer(token),
        )
        return status, body


async def _put(ticket: dict, data: bytes, headers: dict | None = None) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            ticket["url"], data=data, headers=headers if headers is not None else ticket["headers"]
        ) as response,
    ):
        return response.status


async def _complete(token: str, upload_id: str) -> tuple[int, dict]:
    async with browser() as client:
        status, body, _ = await call(
            client, "POST", f"/api/assets/uploads/{upload_id}/complete", headers=bearer(token)
        )
        return status, body


async def _get(url: str) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.read(), dict(response.headers)


async def _uploaded_asset(token: str) -> dict:
    status, ticket = await _ticket(token)
    assert status == 201, ticket
    assert await _put(ticket, PNG) == 200
    status, asset = await _complete(token, ticket["upload_id"])
    assert status == 201, asset
    return asset


async def test_upload_confirm_and_download_with_plain_http(platform) -> None:
    user = await _user()
    token = user["access_token"]

    asset = await _uploaded_asset(token)

    assert asset["visibility"] == "private"
    assert asset["size"] == len(PNG)
    assert asset["mime_type"] == "image/png"
    status, data, _ = await _get(asset["url"])
    assert status == 200
    assert data == PNG
    async with browser() as client:
        status, listed, _ = await call(client, "GET", "/api/assets", headers=bearer(token))
    assert [a["id"] for a in listed["items"]] == [asset["id"]]


async def test_publish_serves_a_cacheable_public_copy_and_unpublish_takes_it_back(platform) -> None:
    user = await _user()
    token = user["access_token"]
    asset = await _uploaded_asset(token)

    async with browser() as client:
        status, published, _ = await call(
            client, "POST", f"/api/assets/{asset['id']}/publish", headers=bearer(token)
        )
        assert status == 200, published
        assert published["visibility"] == "public"
        assert f"/shared/{user['user']['id']}/{asset['id']}/cat.png" in published["url"]
        assert "X-Amz-Signature" not in published["url"], "a public asset is handed out by its CDN URL only"
        status, data, headers = await _get(published["url"])
        assert status == 200
        assert data == PNG
        assert headers["Cache-Control"] == "max-age=31536000, immutable"

        status, again, _ = await call(client, "GET", f"/api/assets/{asset['id']}", headers=bearer(token))
        assert again["url"] == published["url"]

        status, private, _ = await call(
            client, "POST", f"/api/assets/{asset['id']}/unpublish", headers=bearer(token)
        )
        assert status == 200
        assert private["visibility"] == "private"
        assert "X-Amz-Signature" in private["url"]
        status, _, _ = await _get(published["url"])
        assert status in (403, 404), "the public copy is gone"


async def test_another_user_can_neither_see_nor_complete_my_assets(platform) -> None:
    owner, stranger = await _user(), await _user()
    asset = await _uploaded_asset(owner["access_token"])
    status, ticket = await _ticket(owner["access_token"])
    assert await _put(ticket, PNG) == 200

    async with browser() as client:
        for method, path in (
            ("GET", f"/api/assets/{asset['id']}"),
            ("POST", f"/api/assets/{asset['id']}/publish"),
            ("DELETE", f"/api/assets/{asset['id']}"),
            ("POST", f"/api/assets/uploads/{ticket['upload_id']}/complete"),
        ):
            status, problem, _ = await call(client, method, path, headers=bearer(stranger["access_token"]))
            assert status == 404, (method, path, problem)
        status, listed, _ = await call(client, "GET", "/api/assets", headers=bearer(stranger["access_token"]))
        assert listed["items"] == []


async def test_completing_before_uploading_or_with_other_bytes_is_refused(platform) -> None:
    token = (await _user())["access_token"]
    status, ticket = await _ticket(token)
    status, problem = await _complete(token, ticket["upload_id"])
    assert status == 409
    assert problem["code"] == "not_uploaded"

    assert await _put(ticket, PNG + b"x", {**ticket["headers"], "Content-Length": str(len(PNG) + 1)}) >= 400
    assert await _put(ticket, PNG, {**ticket["headers"], "Content-Type": "image/jpeg"}) >= 400, (
        "S3 refuses a body whose type is not the signed one"
    )

    status, ticket = await _ticket(token, size=len(b"not a png at all, just text....."))
    assert await _put(ticket, b"not a png at all, just text.....") == 200
    status, problem = await _complete(token, ticket["upload_id"])
    assert status == 409
    assert problem["code"] == "content_mismatch"


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("a/b.png", "a_b.png"),
        ("🎨 portrait.png", "🎨 portrait.png"),
    ],
)
async def test_filenames_are_made_safe(platform, filename: str, stored: str) -> None:
    token = (await _user())["access_token"]
    status, ticket = await _ticket(token, filename=filename)
    assert status == 201, ticket
    assert ticket["filename"] == stored
    assert await _put(ticket, PNG) == 200
    status, asset = await _complete(token, ticket["upload_id"])
    assert asset["filename"] == stored


async def test_an_overlong_filename_is_shortened_keeping_its_extension(platform) -> None:
    token = (await _user())["access_token"]
    status, ticket = await _ticket(token, filename="x" * 300 + ".png")
    assert status == 201
    assert ticket["filename"].endswith(".png")
    assert len(ticket["filename"].encode()) <= 120


async def test_users_upload_only_safe_types_within_limits(platform) -> None:
    token = (await _user())["access_token"]
    status, problem = await _ticket(token, filename="x.svg", content_type="image/svg+xml")
    assert status == 422
    assert problem["code"] == "active_content"
    status, problem = await _ticket(token, size=1024**3)
    assert status == 413
    async with browser() as client:
        status, problem, _ = await call(
            client,
            "POST",
            "/api/assets/uploads",
            json={
                "filename": "x.png",
                "content_type": "image/png",
                "size": 10,
                "module": "uploads",
                "visibility": "public",
            },
            headers=bearer(token),
        )
    assert status == 422, "a user cannot choose a bucket: publishing is the only way into public"


async def test_admin_only_assets_are_never_reachable_by_a_user(platform, identity_command) -> None:
    email = unique_email("assets-admin")
    result = identity_command(
        "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stderr
    async with browser() as client:
        _, admin = await sign_in(client, email, mode="token")
        status, ticket, _ = await call(
            client,
            "POST",
            "/api/admin/assets/uploads",
            json={
                "filename": "banner.png",
                "content_type": "image/png",
                "size": len(PNG),
                "module": "banners",
            },
            headers=bearer(admin["access_token"]),
        )
        assert status == 201, ticket
        assert await _put(ticket, PNG) == 200
        status, asset = await _complete(admin["access_token"], ticket["upload_id"])
        assert status == 201, asset
        assert asset["visibility"] == "admin-private"

        user = await _user()
        status, _, _ = await call(
            client, "GET", f"/api/assets/{asset['id']}", headers=bearer(user["access_token"])
        )
        assert status == 404
        status, _, _ = await call(
            client, "GET", f"/api/admin/assets/{asset['id']}", headers=bearer(user["access_token"])
        )
        assert status == 403
        status, _, _ = await call(
            client,
            "POST",
            "/api/admin/assets/uploads",
            json={"filename": "b.png", "content_type": "image/png", "size": 10, "module": "banners"},
            headers=bearer(user["access_token"]),
        )
        assert status == 403
        status, seen, _ = await call(
            client, "GET", f"/api/admin/assets/{asset['id']}", headers=bearer(admin["access_token"])
        )
        assert status == 200
        assert seen["id"] == asset["id"]


async def test_a_deleted_asset_is_gone_with_its_object(platform) -> None:
    token = (await _user())["access_token"]
    asset = await _uploaded_asset(token)
    async with browser() as client:
        status, _, _ = await call(client, "DELETE", f"/api/assets/{asset['id']}", headers=bearer(token))
        assert status == 204
        status, _, _ = await call(client, "GET", f"/api/assets/{asset['id']}", headers=bearer(token))
        assert status == 404
    status, _, _ = await _get(asset["url"])
    assert status in (403, 404), "the presigned URL finds nothing any more"
    unknown = str(uuid.uuid4())
    async with browser() as client:
        status, _, _ = await call(client, "GET", f"/api/assets/{unknown}", headers=bearer(token))
    assert status == 404
