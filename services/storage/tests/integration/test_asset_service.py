"""AssetService on real S3 and Postgres: presigned uploads and downloads driven with plain HTTP, the
confirmation's checks, ownership, publishing through the CDN, deletion, admin-only assets, the sweep of
expired uploads and pagination."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr
from storage_test_support import PNG, Storage, get, key_of, png, put, upload, uploaded_ticket
from yarl import URL

from funmagic_kit.errors import TransientError
from funmagic_kit.outages import is_transient
from funmagic_kit.pagination import InvalidCursor
from funmagic_kit.s3 import presigned_urls
from funmagic_storage.adapters.s3 import S3ObjectStore, S3Refused
from funmagic_storage.application.ports import ObjectInfo
from funmagic_storage.domain.assets import AssetNotFound, UploadNotReady, UploadRefused

GIF = (  # a 1 × 1 GIF
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


async def not_ready(storage: Storage, user_id: str, upload_id: str) -> str:
    with pytest.raises(UploadNotReady) as caught:
        await storage.assets.complete_upload(user_id, upload_id)
    return caught.value.code


# --- presigned uploads ----------------------------------------------------------------------------


async def test_create_upload_returns_a_presigned_put_bound_to_type_and_size(storage: Storage) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="../me.png", content_type="image/PNG; x=1", size=len(PNG), module="uploads"
    )
    assert ticket["method"] == "PUT"
    assert ticket["headers"] == {"Content-Type": "image/png", "Content-Length": str(len(PNG))}
    assert ticket["filename"] == "me.png"
    url = URL(ticket["url"], encoded=True)
    assert str(url).startswith(storage.settings.s3_endpoint)
    assert url.path.startswith(f"/{storage.policy.bucket_private}/{user}/uploads/")
    assert url.path.endswith("_me.png")
    assert url.query["X-Amz-Expires"] == str(int(storage.policy.upload_ttl.total_seconds()))
    signed = url.query["X-Amz-SignedHeaders"].split(";")
    assert "content-type" in signed
    assert "content-length" in signed


async def test_a_plain_http_upload_then_complete_registers_the_asset_and_writes_asset_created(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="cat.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert await storage.outbox() == []
    status, text = await put(http, ticket, PNG)
    assert status == 200, text

    asset = await storage.assets.complete_upload(user, ticket["upload_id"])

    assert asset["user_id"] == user
    assert asset["filename"] == "cat.png"
    assert asset["mime_type"] == "image/png"
    assert asset["size"] == len(PNG)
    assert asset["visibility"] == "private"
    assert asset["module"] == "uploads"
    assert (await storage.assets.get(user, asset["id"]))["id"] == asset["id"]
    [envelope] = await storage.outbox()
    assert envelope.type == "AssetCreated"
    assert envelope.subject == user
    assert envelope.data["asset_id"] == asset["id"]
    assert envelope.data["bucket"] == storage.policy.bucket_private
    assert envelope.data["storage_key"].startswith(f"{user}/uploads/")
    assert envelope.data["size"] == len(PNG)
    assert envelope.data["mime_type"] == "image/png"
    stored = await storage.objects.head(storage.policy.bucket_private, envelope.data["storage_key"])
    assert stored is not None
    assert stored.size == len(PNG)


@pytest.mark.parametrize("delta", [1, -1])
async def test_s3_refuses_a_body_of_another_length_than_declared(
    storage: Storage, http: aiohttp.ClientSession, delta: int
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    other = PNG + b"\x00" if delta > 0 else PNG[:-1]
    status, text = await put(http, ticket, other, {"Content-Type": "image/png"})
    assert 400 <= status < 500, text
    assert await not_ready(storage, user, ticket["upload_id"]) == "not_uploaded"


async def test_s3_refuses_another_content_type_than_declared(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    for content_type in ("text/html", "image/svg+xml", "image/jpeg"):
        headers = {**ticket["headers"], "Content-Type": content_type}
        status, text = await put(http, ticket, PNG, headers)
        assert 400 <= status < 500, (content_type, text)
    assert await not_ready(storage, user, ticket["upload_id"]) == "not_uploaded"


async def test_complete_before_the_upload_is_not_ready(storage: Storage) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=10, module="uploads"
    )
    assert await not_ready(storage, user, ticket["upload_id"]) == "not_uploaded"
    assert await storage.outbox() == []


async def test_bytes_that_are_not_the_declared_image_are_refused(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    text = b"<script>alert(1)</script> definitely not a png"
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(text), module="uploads"
    )
    status, body = await put(http, ticket, text)
    assert status == 200, body  # S3 only checks type and length; the confirmation checks the bytes

    assert await not_ready(storage, user, ticket["upload_id"]) == "content_mismatch"
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []
    assert await storage.outbox() == []


async def test_a_gif_declared_as_png_is_refused(storage: Storage, http: aiohttp.ClientSession) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(GIF), module="uploads"
    )
    assert (await put(http, ticket, GIF))[0] == 200
    assert await not_ready(storage, user, ticket["upload_id"]) == "content_mismatch"


async def test_an_object_of_another_size_or_type_written_behind_the_url_is_refused(storage: Storage) -> None:
    # S3 would refuse these through the presigned URL; the confirmation checks on its own anyway.
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    key, bucket = key_of(ticket), storage.policy.bucket_private
    await storage.objects.put(bucket, key, PNG + b"x", content_type="image/png")
    assert await not_ready(storage, user, ticket["upload_id"]) == "size_mismatch"
    await storage.objects.put(bucket, key, PNG, content_type="image/gif")
    assert await not_ready(storage, user, ticket["upload_id"]) == "type_mismatch"
    await storage.objects.put(bucket, key, PNG, content_type="image/png")
    asset = await storage.assets.complete_upload(user, ticket["upload_id"])
    assert asset["size"] == len(PNG)


async def test_two_uploads_of_the_same_name_in_the_same_millisecond_keep_their_own_bytes(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    storage.clock.freeze()  # what a phone sending several "image.png" at once can hit with a real clock
    first, second = png(1, 1), png(2, 2)
    tickets = [
        await storage.assets.create_upload(
            user, filename="image.png", content_type="image/png", size=len(body), module="uploads"
        )
        for body in (first, second)
    ]
    assert key_of(tickets[0]) != key_of(tickets[1])
    for ticket, body in zip(tickets, (first, second), strict=True):
        assert (await put(http, ticket, body))[0] == 200
    # Were they one object, the second PUT would replace the first and its confirmation would fail.
    assets = [await storage.assets.complete_upload(user, t["upload_id"]) for t in tickets]
    for asset, body in zip(assets, (first, second), strict=True):
        status, downloaded, _ = await get(http, (await storage.assets.get(user, asset["id"]))["url"])
        assert status == 200
        assert downloaded == body


async def test_another_user_cannot_complete_my_upload_or_get_my_asset(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    me, other = storage.new_user(), storage.new_user()
    ticket = await storage.assets.create_upload(
        me, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200

    with pytest.raises(AssetNotFound):
        await storage.assets.complete_upload(other, ticket["upload_id"])
    asset = await storage.assets.complete_upload(me, ticket["upload_id"])  # still mine to complete

    with pytest.raises(AssetNotFound):
        await storage.assets.get(other, asset["id"])
    with pytest.raises(AssetNotFound):
        await storage.assets.publish(other, asset["id"])
    with pytest.raises(AssetNotFound):
        await storage.assets.delete(other, asset["id"])
    with pytest.raises(AssetNotFound):  # a retry by someone else does not reveal the asset either
        await storage.assets.complete_upload(other, ticket["upload_id"])
    assert (await storage.assets.list(other, module=None, limit=10, cursor=None))["items"] == []
    assert (await storage.assets.get(me, asset["id"]))["id"] == asset["id"]


@pytest.mark.parametrize("upload_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
async def test_an_unknown_upload_or_asset_is_not_found(storage: Storage, upload_id: str) -> None:
    user = storage.new_user()
    with pytest.raises(AssetNotFound):
        await storage.assets.complete_upload(user, upload_id)
    with pytest.raises(AssetNotFound):
        await storage.assets.get(user, upload_id)


async def test_a_retried_complete_returns_the_same_asset(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200
    first = await storage.assets.complete_upload(user, ticket["upload_id"])
    again = await storage.assets.complete_upload(user, ticket["upload_id"])
    assert again["id"] == first["id"]
    assert [e.type for e in await storage.outbox()] == ["AssetCreated"]  # one event, not two
    assert len((await storage.assets.list(user, module=None, limit=10, cursor=None))["items"]) == 1


async def test_concurrent_completes_register_one_asset(storage: Storage, http: aiohttp.ClientSession) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200
    results = await asyncio.gather(
        *(storage.assets.complete_upload(user, ticket["upload_id"]) for _ in range(4))
    )
    assert len({r["id"] for r in results}) == 1
    assert [e.type for e in await storage.outbox()] == ["AssetCreated"]


async def test_a_retried_complete_of_a_deleted_asset_is_not_found(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200
    asset = await storage.assets.complete_upload(user, ticket["upload_id"])
    await storage.assets.delete(user, asset["id"])
    with pytest.raises(AssetNotFound):
        await storage.assets.complete_upload(user, ticket["upload_id"])


async def test_an_upload_past_its_pending_time_cannot_be_completed(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200
    storage.clock.advance(storage.policy.pending_ttl + timedelta(seconds=1))
    assert await not_ready(storage, user, ticket["upload_id"]) == "expired"


async def test_refused_uploads_leave_no_record(storage: Storage) -> None:
    user = storage.new_user()
    cases = [
        ({"content_type": "image/svg+xml"}, "active_content"),
        ({"content_type": "application/pdf"}, "unsupported_type"),
        ({"size": 0}, "empty_file"),
        ({"module": "avatar", "size": 5 * 1024 * 1024 + 1}, "too_large"),
        ({"module": "Bad Module"}, "invalid_module"),
        ({"visibility": "public"}, "visibility"),
    ]
    for overrides, code in cases:
        arguments: dict[str, Any] = {
            "filename": "a.png",
            "content_type": "image/png",
            "size": 100,
            "module": "uploads",
            **overrides,
        }
        with pytest.raises(UploadRefused) as caught:
            await storage.assets.create_upload(user, **arguments)
        assert caught.value.code == code, overrides
    # The module limit is the module's: the same size elsewhere is fine.
    await storage.assets.create_upload(
        user, filename="a.png", content_type="image/png", size=5 * 1024 * 1024 + 1, module="uploads"
    )
    async with storage.pool.connection() as conn:
        count = await (await conn.execute("SELECT count(*) AS n FROM pending_uploads")).fetchone()
    assert count is not None
    assert count["n"] == 1


# --- downloads ------------------------------------------------------------------------------------


async def test_a_presigned_get_downloads_the_bytes_with_plain_http(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    asset = await upload(storage, http, user)
    view = await storage.assets.get(user, asset["id"])
    assert "X-Amz-Signature=" in view["url"]
    status, body, headers = await get(http, view["url"])
    assert status == 200
    assert body == PNG
    assert headers["Content-Type"] == "image/png"


async def test_an_anonymous_get_of_a_private_object_is_refused(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    asset = await upload(storage, http, user)
    unsigned = str(URL(asset["url"], encoded=True).with_query(None))
    status, body, _ = await get(http, unsigned)
    assert status in (401, 403), body
    assert body != PNG


async def test_an_expired_presigned_get_is_refused(storage: Storage, http: aiohttp.ClientSession) -> None:
    user = storage.new_user()
    stored = await storage.assets.store_bytes(
        user_id=user,
        module="uploads",
        filename="a.png",
        content_type="image/png",
        data=PNG,
        visibility="private",
        task_id=None,
    )
    [envelope] = await storage.outbox()
    url = await storage.objects.presign_get(
        envelope.data["bucket"], envelope.data["storage_key"], ttl_seconds=1
    )
    assert stored["id"] == envelope.data["asset_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    statuses = []
    while True:
        status, body, _ = await get(http, url)
        statuses.append(status)
        if status != 200:
            break
        assert body == PNG
        assert loop.time() < deadline, f"still served after 15 s: {statuses}"
        await asyncio.sleep(0.25)  # polling towards the deadline, not waiting for a state
    assert status == 403, body
    assert body != PNG


# --- publishing -----------------------------------------------------------------------------------


async def test_publish_serves_the_bytes_from_the_cdn_with_immutable_caching(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    asset = await upload(storage, http, user, filename="shared cat.png")

    published = await storage.assets.publish(user, asset["id"])

    key = f"shared/{user}/{asset['id']}/shared cat.png"
    assert published["visibility"] == "public"
    url, cdn = URL(published["url"], encoded=True), URL(storage.policy.cdn_url)
    assert (url.scheme, url.host, url.port) == (cdn.scheme, cdn.host, cdn.port)
    assert url.path == f"{cdn.path}/{key}"  # the URL as handed out, decoded once, is the key
    assert " " not in published["url"]
    info = await storage.objects.head(storage.policy.bucket_public, key)
    assert info is not None
    assert info.size == len(PNG)
    assert info.content_type == "image/png"
    status, body, headers = await get(http, published["url"])  # anonymous: no signature at all
    assert status == 200
    assert body == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["Cache-Control"] == "max-age=31536000, immutable"

    view = await storage.assets.get(user, asset["id"])
    assert view["url"] == published["url"]
    assert "X-Amz-Signature" not in view["url"]
    assert (await storage.assets.publish(user, asset["id"]))["url"] == published["url"]  # idempotent
    events = await storage.outbox()
    assert [e.type for e in events] == ["AssetCreated", "AssetPublished"]
    assert events[1].data["public_key"] == key
    assert events[1].data["cdn_url"] == published["url"]


@pytest.mark.parametrize(
    "filename", ["photo#1.png", "what?.png", "100%25.png", "a&b=c.png", "café 😀 ✓.png", "a+b.png"]
)
async def test_the_cdn_url_of_a_name_with_url_delimiters_serves_the_bytes(
    storage: Storage, http: aiohttp.ClientSession, filename: str
) -> None:
    # sanitize_filename keeps "#", "?", "%", "+" and unicode: the CDN URL must still lead to the object.
    user = storage.new_user()
    asset = await upload(storage, http, user, filename=filename)
    assert asset["filename"] == filename
    published = await storage.assets.publish(user, asset["id"])
    url = URL(published["url"], encoded=True)
    assert url.path == f"{URL(storage.policy.cdn_url).path}/shared/{user}/{asset['id']}/{filename}"
    assert not url.query_string
    assert not url.fragment
    status, body, _ = await get(http, published["url"])
    assert status == 200, (published["url"], body[:200])
    assert body == PNG


async def test_unpublish_removes_the_public_copy_and_downloads_are_presigned_again(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    asset = await upload(storage, http, user)
    cdn_url = (await storage.assets.publish(user, asset["id"]))["url"]
    assert (await get(http, cdn_url))[0] == 200

    unpublished = await storage.assets.unpublish(user, asset["id"])

    assert unpublished["visibility"] == "private"
    status, body, _ = await get(http, cdn_url)
    assert status in (403, 404), body
    view = await storage.assets.get(user, asset["id"])
    assert view["url"] != cdn_url
    assert "X-Amz-Signature=" in view["url"]
    status, body, _ = await get(http, view["url"])
    assert status == 200
    assert body == PNG
    assert [e.type for e in await storage.outbox()] == ["AssetCreated", "AssetPublished", "AssetUnpublished"]
    await storage.assets.unpublish(user, asset["id"])  # nothing to do: no second event
    assert len(await storage.outbox()) == 3


# --- deleting -------------------------------------------------------------------------------------


async def test_delete_removes_the_objects_and_the_record(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    asset = await upload(storage, http, user)
    private_url = (await storage.assets.get(user, asset["id"]))["url"]
    cdn_url = (await storage.assets.publish(user, asset["id"]))["url"]
    [created] = [e for e in await storage.outbox() if e.type == "AssetCreated"]

    await storage.assets.delete(user, asset["id"])

    with pytest.raises(AssetNotFound):
        await storage.assets.get(user, asset["id"])
    with pytest.raises(AssetNotFound):
        await storage.assets.delete(user, asset["id"])
    assert await storage.objects.head(created.data["bucket"], created.data["storage_key"]) is None
    assert (await get(http, cdn_url))[0] in (403, 404)
    assert (await get(http, private_url))[0] in (403, 404)  # a URL handed out earlier is now dead
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []
    deleted = (await storage.outbox())[-1]
    assert deleted.type == "AssetDeleted"
    assert deleted.data["asset_id"] == asset["id"]


# --- admin-private assets -------------------------------------------------------------------------


async def test_stored_admin_private_bytes_are_only_reachable_as_admin(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    owner = storage.new_user()
    stored = await storage.assets.store_bytes(
        user_id=owner,
        module="reports",
        filename="secret.png",
        content_type="image/png",
        data=PNG,
        visibility="admin-private",
        task_id=None,
    )
    assert stored["visibility"] == "admin-private"
    [created] = await storage.outbox()
    assert created.data["bucket"] == storage.policy.bucket_admin

    with pytest.raises(AssetNotFound):
        await storage.assets.get(owner, stored["id"])
    with pytest.raises(AssetNotFound):
        await storage.assets.publish(owner, stored["id"])
    with pytest.raises(AssetNotFound):
        await storage.assets.delete(owner, stored["id"])
    assert (await storage.assets.list(owner, module=None, limit=10, cursor=None))["items"] == []
    assert (await storage.assets.list(owner, module="reports", limit=10, cursor=None))["items"] == []

    admin = storage.new_user()
    for who in (owner, admin):
        view = await storage.assets.get(who, stored["id"], admin=True)
        assert view["id"] == stored["id"]
        status, body, _ = await get(http, view["url"])
        assert status == 200
        assert body == PNG


async def test_an_admin_private_upload_is_only_reachable_as_admin(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await storage.assets.create_upload(
        user,
        filename="a.png",
        content_type="image/png",
        size=len(PNG),
        module="uploads",
        visibility="admin-private",
    )
    assert URL(ticket["url"], encoded=True).path.startswith(f"/{storage.policy.bucket_admin}/")
    assert (await put(http, ticket, PNG))[0] == 200
    asset = await storage.assets.complete_upload(user, ticket["upload_id"])
    assert asset["visibility"] == "admin-private"

    with pytest.raises(AssetNotFound):
        await storage.assets.get(user, asset["id"])
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []
    assert (await storage.assets.get(user, asset["id"], admin=True))["id"] == asset["id"]


# --- server-side writes ---------------------------------------------------------------------------


async def test_store_bytes_writes_and_registers(storage: Storage, http: aiohttp.ClientSession) -> None:
    user = storage.new_user()
    task_id = "0190f5a0-0000-7000-8000-00000000abcd"
    data = b'{"vertices": []}'
    stored = await storage.assets.store_bytes(
        user_id=user,
        module="3d-models",
        filename="../model.json",
        content_type="application/json",
        data=data,
        visibility="private",
        task_id=task_id,
    )
    assert stored["filename"] == "model.json"
    assert stored["size"] == len(data)
    assert stored["task_id"] == task_id
    assert stored["mime_type"] == "application/json"
    [created] = await storage.outbox()
    assert created.type == "AssetCreated"
    assert created.data["task_id"] == task_id
    assert created.data["storage_key"].startswith(f"{user}/3d-models/")
    view = await storage.assets.get(user, stored["id"])
    status, body, headers = await get(http, view["url"])
    assert status == 200
    assert body == data
    assert headers["Content-Type"] == "application/json"


async def test_store_bytes_refuses_public_and_bad_modules(storage: Storage) -> None:
    user = storage.new_user()
    cases = (("public", "uploads", "visibility"), ("private", "../x", "invalid_module"))
    for visibility, module, code in cases:
        with pytest.raises(UploadRefused) as caught:
            await storage.assets.store_bytes(
                user_id=user,
                module=module,
                filename="a.png",
                content_type="image/png",
                data=PNG,
                visibility=visibility,  # type: ignore[arg-type]
                task_id=None,
            )
        assert caught.value.code == code
    assert await storage.outbox() == []


# --- sweeping expired uploads ---------------------------------------------------------------------


async def test_the_sweep_removes_an_expired_pending_upload_and_its_object(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    hasty = storage.build(pending_upload_ttl_seconds=0)
    ticket = await hasty.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    kept = await storage.assets.create_upload(
        user, filename="b.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    for each in (ticket, kept):
        assert (await put(http, each, PNG))[0] == 200
    done = await hasty.create_upload(
        user, filename="c.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, done, PNG))[0] == 200
    storage.clock.advance(timedelta(seconds=-1))  # still in time for this one
    confirmed = await hasty.complete_upload(user, done["upload_id"])
    storage.clock.advance(timedelta(seconds=2))

    assert await hasty.sweep_expired_uploads() == 1

    bucket = storage.policy.bucket_private
    assert await storage.objects.head(bucket, key_of(ticket)) is None
    with pytest.raises(AssetNotFound):
        await hasty.complete_upload(user, ticket["upload_id"])
    # The upload still within its time and the confirmed one are untouched.
    await storage.assets.complete_upload(user, kept["upload_id"])
    status, body, _ = await get(http, (await storage.assets.get(user, confirmed["id"]))["url"])
    assert status == 200
    assert body == PNG
    assert await hasty.sweep_expired_uploads() == 0


# --- listing --------------------------------------------------------------------------------------


async def store(storage: Storage, user: str, module: str, name: str) -> str:
    stored = await storage.assets.store_bytes(
        user_id=user,
        module=module,
        filename=name,
        content_type="image/png",
        data=PNG,
        visibility="private",
        task_id=None,
    )
    return str(stored["id"])


async def walk(storage: Storage, user: str, module: str | None, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await storage.assets.list(user, module=module, limit=limit, cursor=cursor)
        pages.append([item["id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursor does not advance"


async def test_list_pages_newest_first_with_a_cursor_and_filters_by_module(storage: Storage) -> None:
    user, other = storage.new_user(), storage.new_user()
    ids: dict[str, list[str]] = {"a": [], "b": []}
    created = []
    for i in range(7):
        module = "a" if i % 3 else "b"
        created.append(await store(storage, user, module, f"{i}.png"))
        ids[module].append(created[-1])
        storage.clock.advance(timedelta(seconds=1))
    await store(storage, other, "a", "other.png")

    pages = await walk(storage, user, None, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [asset_id for page in pages for asset_id in page] == list(reversed(created))

    a_pages = await walk(storage, user, "a", 2)
    assert [i for p in a_pages for i in p] == list(reversed(ids["a"]))
    assert [len(p) for p in a_pages] == [2, 2]
    assert await walk(storage, user, "b", 10) == [list(reversed(ids["b"]))]
    assert await walk(storage, user, "none", 10) == [[]]


async def test_list_pages_through_assets_created_at_the_same_instant(storage: Storage) -> None:
    user = storage.new_user()
    storage.clock.freeze()
    ids = {await store(storage, user, "uploads", f"{i}.png") for i in range(5)}
    pages = await walk(storage, user, None, 2)
    flat = [asset_id for page in pages for asset_id in page]
    assert len(flat) == 5
    assert set(flat) == ids


async def test_list_refuses_a_cursor_that_is_not_one_with_an_invalid_cursor_refusal(storage: Storage) -> None:
    user = storage.new_user()
    await store(storage, user, "uploads", "a.png")
    forged = json.dumps(["2026-01-01T00:00:00+00:00", "not-a-uuid"])
    forged = base64.urlsafe_b64encode(forged.encode()).decode()
    for cursor in ("garbage!", base64.urlsafe_b64encode(b"[1]").decode(), forged):
        with pytest.raises(InvalidCursor, match="cursor") as caught:
            await storage.assets.list(user, module=None, limit=10, cursor=cursor)
        assert (caught.value.code, caught.value.field) == ("invalid_cursor", "cursor")


class ConnectionsSeenByS3:
    """The real object store, noting how many database connections are checked out at each S3 call."""

    def __init__(self, objects: Any, pool: AsyncConnectionPool) -> None:
        self._objects = objects
        self._pool = pool
        self.checked_out: list[int] = []

    def _note(self) -> None:
        stats = self._pool.get_stats()
        self.checked_out.append(stats["pool_size"] - stats["pool_available"])

    async def head(self, *args: Any, **kwargs: Any) -> Any:
        self._note()
        return await self._objects.head(*args, **kwargs)

    async def inspect(self, *args: Any, **kwargs: Any) -> Any:
        self._note()
        return await self._objects.inspect(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objects, name)


async def test_the_uploaded_object_is_checked_in_s3_while_no_database_connection_is_held(
    storage: Storage, http: aiohttp.ClientSession, pool: AsyncConnectionPool
) -> None:
    observed = ConnectionsSeenByS3(storage.assets.objects, pool)
    assets = dataclasses.replace(storage.assets, objects=observed)
    user = storage.new_user()
    ticket = await assets.create_upload(
        user, filename="a.png", content_type="image/png", size=len(PNG), module="uploads"
    )
    assert (await put(http, ticket, PNG))[0] == 200

    asset = await assets.complete_upload(user, ticket["upload_id"])

    assert asset["id"]
    assert observed.checked_out == [0], "one ranged GET, outside any transaction"


class SomethingHappensDuringTheCheck:
    """The real object store, running `meanwhile` while the uploaded object is inspected: what another
    request or worker does between the confirmation's read and its record."""

    def __init__(self, objects: Any, meanwhile: Any) -> None:
        self._objects = objects
        self._meanwhile = meanwhile

    async def inspect(self, *args: Any, **kwargs: Any) -> Any:
        await self._meanwhile()
        return await self._objects.inspect(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._objects, name)


async def test_a_confirmation_that_another_finished_during_the_check_answers_that_ones_asset(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await uploaded_ticket(storage, http, user)
    first: list[dict[str, Any]] = []

    async def another_confirmation() -> None:
        first.append(dict(await storage.assets.complete_upload(user, ticket["upload_id"])))

    racing = dataclasses.replace(
        storage.assets, objects=SomethingHappensDuringTheCheck(storage.assets.objects, another_confirmation)
    )
    asset = await racing.complete_upload(user, ticket["upload_id"])

    assert asset["id"] == first[0]["id"]
    assert [e.type for e in await storage.outbox()] == ["AssetCreated"]


async def test_an_upload_swept_during_the_check_is_not_found_and_records_nothing(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user = storage.new_user()
    ticket = await uploaded_ticket(storage, http, user)

    async def swept() -> None:
        async with storage.pool.connection() as conn:
            await conn.execute("DELETE FROM pending_uploads WHERE id = %s", (ticket["upload_id"],))

    racing = dataclasses.replace(
        storage.assets, objects=SomethingHappensDuringTheCheck(storage.assets.objects, swept)
    )
    with pytest.raises(AssetNotFound):
        await racing.complete_upload(user, ticket["upload_id"])
    assert (await storage.assets.list(user, module=None, limit=10, cursor=None))["items"] == []
    assert await storage.outbox() == []


# --- the object store's inspection: size, type and first bytes in one request ----------------------


@pytest.mark.parametrize(
    ("body", "expected_first_bytes"),
    [
        (PNG + b"\x00" * 100, (PNG + b"\x00" * 100)[:32]),  # longer than what is read: the total size
        (b"short", b"short"),
        (b"", b""),  # nothing to range over: the size comes from a HEAD
    ],
)
async def test_inspecting_an_object_reads_its_size_type_and_first_bytes(
    storage: Storage, body: bytes, expected_first_bytes: bytes
) -> None:
    bucket, key = storage.policy.bucket_private, f"inspected/{len(body)}.bin"
    await storage.objects.put(bucket, key, body, content_type="image/png")

    info = await storage.objects.inspect(bucket, key)

    assert info is not None
    assert (info.size, info.content_type, info.first_bytes) == (len(body), "image/png", expected_first_bytes)
    await storage.objects.delete(bucket, key)


async def test_inspecting_a_missing_object_finds_none(storage: Storage) -> None:
    assert await storage.objects.inspect(storage.policy.bucket_private, "inspected/nothing-here") is None


# --- the object store's reads and writes on a task's path (signed URLs sent with aiohttp) ------------------


async def test_an_object_written_is_read_back_byte_for_byte_with_its_type(storage: Storage) -> None:
    bucket, key = storage.policy.bucket_private, "written/model.glb"
    body = bytes(range(256)) * 40

    await storage.objects.put(bucket, key, body, content_type="model/gltf-binary")

    assert await storage.objects.read(bucket, key) == body
    assert await storage.objects.head(bucket, key) == ObjectInfo(len(body), "model/gltf-binary")
    await storage.objects.delete(bucket, key)


async def test_reading_a_missing_object_is_a_transient_error(storage: Storage) -> None:
    with pytest.raises(TransientError, match="404"):
        await storage.objects.read(storage.policy.bucket_private, "written/nothing-here")


async def test_a_write_s3_refuses_for_good_is_not_taken_for_an_outage(storage: Storage) -> None:
    # Signed with a secret S3 does not know: 403, which no retry changes (and no 503 should promise).
    wrong_secret = storage.settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    wrong = presigned_urls(wrong_secret, for_clients=False)
    objects = S3ObjectStore(storage.s3, client_urls=wrong, service_urls=wrong, http=storage.s3_http)

    with pytest.raises(S3Refused, match="403") as refused:
        await objects.put(storage.policy.bucket_private, "written/refused", b"x", content_type="image/png")

    assert not is_transient(refused.value)
