"""Kinds, URLs for other services and catalog publication, on real S3 and Postgres: a user's list filtered and
counted by kind in SQL (with existing rows backfilled by the migration), `urls` for the assets a user owns,
and `publish_for_catalog` of an admin's upload; through the service and through its HTTP routes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import aiohttp
import psycopg
import pytest
from storage_test_support import PNG, Storage, get, upload
from yarl import URL

from funmagic_kit.migrations import apply_migrations, load_migrations
from funmagic_kit.testing import scratch_database
from funmagic_storage.domain.assets import AssetNotFound

SERVICE = {"X-Test-Internal": "yes"}
GLB = b"glTF\x02\x00\x00\x00" + b"\x00" * 12
PLY = b"ply\nformat ascii 1.0\nelement vertex 0\nend_header\n"
NO_COUNTS = {"image": 0, "model": 0, "pointcloud": 0, "other": 0}


async def store(
    storage: Storage,
    user: str,
    content_type: str = "image/png",
    *,
    data: bytes = PNG,
    module: str = "image-gen",
    visibility: str = "private",
    task_id: str | None = None,
) -> str:
    """A server-side write, as providers stores an output; the asset id. The clock moves on a second."""
    stored = await storage.assets.store_bytes(
        user_id=user,
        module=module,
        filename="out",
        content_type=content_type,
        data=data,
        visibility=visibility,  # type: ignore[arg-type]
        task_id=task_id,
    )
    storage.clock.advance(timedelta(seconds=1))
    return str(stored["id"])


def as_user(user_id: str, role: str = "user") -> dict[str, str]:
    return {"X-Test-User": user_id, "X-Test-Role": role}


# --- kinds ----------------------------------------------------------------------------------------


async def test_every_asset_view_says_its_kind(storage: Storage, http: aiohttp.ClientSession) -> None:
    user = storage.new_user()
    uploaded = await upload(storage, http, user)
    model = await store(storage, user, "model/gltf-binary", data=GLB)
    cloud = await store(storage, user, "application/x-ply", data=PLY)
    other = await store(storage, user, "application/json", data=b"{}")

    assert uploaded["kind"] == "image"
    assert (await storage.assets.publish(user, uploaded["id"]))["kind"] == "image"
    assert [(await storage.assets.get(user, i))["kind"] for i in (model, cloud, other)] == [
        "model",
        "pointcloud",
        "other",
    ]


async def test_the_list_filters_by_kind_with_pages_and_counts_every_kind(storage: Storage) -> None:
    user, other_user = storage.new_user(), storage.new_user()
    images = [await store(storage, user) for _ in range(3)]
    models = [await store(storage, user, "model/gltf-binary", data=GLB) for _ in range(2)]
    cloud = await store(storage, user, "application/x-ply", data=PLY)
    await store(storage, user, "model/gltf-binary", data=GLB, visibility="admin-private")  # not listed
    deleted = await store(storage, user)
    await storage.assets.delete(user, deleted)
    await store(storage, other_user, "application/x-ply", data=PLY)
    counts = {"image": 3, "model": 2, "pointcloud": 1, "other": 0}

    first = await storage.assets.list(user, module=None, kind="image", limit=2, cursor=None)
    second = await storage.assets.list(user, module=None, kind="image", limit=2, cursor=first["next_cursor"])

    assert [item["id"] for item in first["items"] + second["items"]] == list(reversed(images))
    assert second["next_cursor"] is None
    assert first["counts"] == second["counts"] == counts  # whatever the page and the kind asked for
    page = await storage.assets.list(user, module=None, kind="model", limit=10, cursor=None)
    assert [item["id"] for item in page["items"]] == list(reversed(models))
    assert {item["kind"] for item in page["items"]} == {"model"}
    page = await storage.assets.list(user, module=None, kind="pointcloud", limit=10, cursor=None)
    assert [item["id"] for item in page["items"]] == [cloud]
    page = await storage.assets.list(user, module=None, kind="other", limit=10, cursor=None)
    assert (page["items"], page["counts"]) == ([], counts)
    everything = await storage.assets.list(user, module=None, limit=10, cursor=None)
    assert len(everything["items"]) == 6
    assert everything["counts"] == counts


async def test_counts_are_of_the_module_asked_for(storage: Storage) -> None:
    user = storage.new_user()
    await store(storage, user, module="uploads")
    await store(storage, user, module="image-gen")
    await store(storage, user, "model/gltf-binary", data=GLB, module="image-gen")

    page = await storage.assets.list(user, module="image-gen", limit=10, cursor=None)

    assert page["counts"] == {**NO_COUNTS, "image": 1, "model": 1}
    nothing = await storage.assets.list(storage.new_user(), module=None, kind="image", limit=10, cursor=None)
    assert nothing == {"items": [], "next_cursor": None, "counts": NO_COUNTS}


async def test_the_migration_gives_existing_assets_their_kind(postgres_url: str) -> None:
    migrations = load_migrations("storage", "funmagic_storage.migrations")
    before = [m for m in migrations if m.version < 3]
    types = {
        "image/png": "image",
        "IMAGE/JPEG; charset=binary": "image",
        "model/gltf-binary": "model",
        "model/gltf+json": "model",
        "model/obj": "model",
        "application/x-ply": "pointcloud",
        "model/ply": "pointcloud",
        "application/json": "other",
        "application/octet-stream": "other",
    }
    async with (
        scratch_database(postgres_url, "storage_backfill") as url,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as conn,
    ):
        await apply_migrations(conn, before)
        for mime_type in types:
            await conn.execute(
                "INSERT INTO assets (id, user_id, bucket, storage_key, visibility, module, filename, "
                "mime_type, size, created_at, updated_at) "
                "VALUES (%s, 'u', 'b', %s, 'private', 'm', 'f', %s, 1, now(), now())",
                (uuid.uuid4(), mime_type, mime_type),
            )

        await apply_migrations(conn, migrations)

        rows = await (await conn.execute("SELECT mime_type, kind FROM assets")).fetchall()
    assert dict(rows) == types  # type: ignore[arg-type]


# --- URLs for other services ----------------------------------------------------------------------


async def test_urls_answers_the_users_own_assets_and_leaves_out_the_rest(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    user, other_user = storage.new_user(), storage.new_user()
    private = await store(storage, user)
    published = await store(storage, user, "model/gltf-binary", data=GLB)
    await storage.assets.publish(user, published)
    admin_only = await store(storage, user, "application/x-ply", data=PLY, visibility="admin-private")
    deleted = await store(storage, user)
    await storage.assets.delete(user, deleted)
    foreign = await store(storage, other_user)
    asked = [private, published, admin_only, deleted, foreign, str(uuid.uuid4()), "not-a-uuid", private]

    urls = await storage.assets.urls(user, asked)

    assert set(urls) == {private, published, admin_only}
    assert {k: (v["kind"], v["mime_type"], v["filename"]) for k, v in urls.items()} == {
        private: ("image", "image/png", "out"),
        published: ("model", "model/gltf-binary", "out"),
        admin_only: ("pointcloud", "application/x-ply", "out"),
    }
    assert "X-Amz-Signature=" in urls[private]["url"]
    assert urls[published]["url"].startswith(storage.policy.cdn_url)
    for asset_id, body in ((private, PNG), (published, GLB), (admin_only, PLY)):
        status, downloaded, _ = await get(http, urls[asset_id]["url"])
        assert (status, downloaded) == (200, body), asset_id
    assert await storage.assets.urls(user, []) == {}


async def test_the_urls_route_is_for_services_only_and_takes_at_most_200_ids(
    api: aiohttp.ClientSession, storage: Storage
) -> None:
    user = storage.new_user()
    asset_id = await store(storage, user)
    body = {"user_id": user, "asset_ids": [asset_id, str(uuid.uuid4())]}

    async with api.post("/v1/internal/assets/urls", json=body, headers=as_user(user)) as response:
        assert response.status == 403
    async with api.post("/v1/internal/assets/urls", json=body, headers=SERVICE) as response:
        assert response.status == 200
        answer = await response.json()
    assert list(answer) == ["urls"]
    assert list(answer["urls"]) == [asset_id]
    assert set(answer["urls"][asset_id]) == {"url", "kind", "mime_type", "filename"}
    too_many = {"user_id": user, "asset_ids": [asset_id] * 201}
    async with api.post("/v1/internal/assets/urls", json=too_many, headers=SERVICE) as response:
        assert response.status == 422
    async with api.post("/v1/internal/assets/urls", json={"asset_ids": []}, headers=SERVICE) as response:
        assert response.status == 422


async def test_the_list_route_takes_a_kind_and_answers_counts(
    api: aiohttp.ClientSession, storage: Storage
) -> None:
    user = storage.new_user()
    await store(storage, user)
    model = await store(storage, user, "model/gltf-binary", data=GLB)

    async with api.get("/v1/assets?kind=model", headers=as_user(user)) as response:
        assert response.status == 200
        page = await response.json()
    assert [(item["id"], item["kind"]) for item in page["items"]] == [(model, "model")]
    assert page["counts"] == {**NO_COUNTS, "image": 1, "model": 1}
    async with api.get("/v1/assets?kind=video", headers=as_user(user)) as response:
        assert response.status == 422


# --- publication for the catalog ------------------------------------------------------------------


async def test_publish_for_catalog_publishes_an_admin_upload_once_at_an_immutable_cdn_url(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    admin = storage.new_user()
    uploaded = await upload(storage, http, admin, filename="thumb.png", visibility="admin-private")
    assert uploaded["visibility"] == "admin-private"

    first = await storage.assets.publish_for_catalog(uploaded["id"], admin)
    again = await storage.assets.publish_for_catalog(uploaded["id"], admin)

    key = f"shared/{admin}/{uploaded['id']}/thumb.png"
    assert (
        first == again == {"asset_id": uploaded["id"], "url": f"{storage.policy.cdn_url.rstrip('/')}/{key}"}
    )
    status, body, headers = await get(http, first["url"])
    assert (status, body) == (200, PNG)
    assert headers["Cache-Control"] == "max-age=31536000, immutable"
    published = [e for e in await storage.outbox() if e.type == "AssetPublished"]
    assert [(e.data["asset_id"], e.data["cdn_url"]) for e in published] == [(uploaded["id"], first["url"])]
    with pytest.raises(AssetNotFound):
        await storage.assets.publish_for_catalog(str(uuid.uuid4()), admin)


async def test_an_admin_publishes_for_the_catalog_only_their_own_asset_or_one_public_already(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    admin, other_admin, user = storage.new_user(), storage.new_user(), storage.new_user()
    private_upload = await upload(storage, http, user, filename="passport.png")
    studio_output = await store(storage, other_admin, visibility="admin-private")
    thumbnail = await upload(storage, http, other_admin, filename="thumb.png", visibility="admin-private")
    kept = await storage.assets.publish_for_catalog(thumbnail["id"], other_admin)

    # A user's private file and another admin's unpublished output look like no asset at all, and stay so.
    for asset_id in (private_upload["id"], studio_output):
        with pytest.raises(AssetNotFound):
            await storage.assets.publish_for_catalog(asset_id, admin)
    assert (await storage.assets.get(user, private_upload["id"]))["visibility"] == "private"
    assert (await storage.assets.get(other_admin, studio_output, admin=True))["visibility"] == "admin-private"
    assert [e.data["asset_id"] for e in await storage.outbox() if e.type == "AssetPublished"] == [
        thumbnail["id"]
    ]
    # Another admin's image public already (kept on the tool this admin edits) is answered as it is.
    assert await storage.assets.publish_for_catalog(thumbnail["id"], admin) == kept


async def test_a_catalog_asset_taken_private_again_is_admin_only_again(
    storage: Storage, http: aiohttp.ClientSession
) -> None:
    admin = storage.new_user()
    uploaded = await upload(storage, http, admin, visibility="admin-private")
    await storage.assets.publish_for_catalog(uploaded["id"], admin)

    unpublished = await storage.assets.unpublish(admin, uploaded["id"])

    assert unpublished["visibility"] == "admin-private"
    with pytest.raises(AssetNotFound):
        await storage.assets.get(admin, uploaded["id"])
    assert (await storage.assets.get(admin, uploaded["id"], admin=True))["visibility"] == "admin-private"


async def test_the_publish_for_catalog_route_is_for_services_only(
    api: aiohttp.ClientSession, storage: Storage, http: aiohttp.ClientSession
) -> None:
    admin = storage.new_user()
    asset_id = await store(storage, admin, visibility="admin-private")
    path = f"/v1/internal/assets/{asset_id}/publish-for-catalog"

    on_behalf = {"admin_id": admin}
    async with api.post(path, json=on_behalf, headers=as_user(admin, "admin")) as response:
        assert response.status == 403
    async with api.post(path, json=on_behalf, headers=SERVICE) as response:
        assert response.status == 200
        answer = await response.json()
    async with api.post(path, json=on_behalf, headers=SERVICE) as response:  # again: the same
        assert await response.json() == answer
    async with api.post(path, json={}, headers=SERVICE) as response:  # on nobody's behalf: refused
        assert response.status == 422
    async with api.post(path, headers=SERVICE) as response:  # no body at all
        assert response.status == 415
    assert answer["asset_id"] == asset_id
    assert URL(answer["url"]).path.endswith(f"/shared/{admin}/{asset_id}/out")
    assert (await get(http, answer["url"]))[:2] == (200, PNG)
    async with api.post(path, json={"asset_id": asset_id}, headers=SERVICE) as response:
        assert response.status == 422
    missing = f"/v1/internal/assets/{uuid.uuid4()}/publish-for-catalog"
    async with api.post(missing, json=on_behalf, headers=SERVICE) as response:
        assert response.status == 404
    async with api.post(path.replace(asset_id, await store(storage, storage.new_user())), json=on_behalf,
                        headers=SERVICE) as response:  # fmt: skip
        assert response.status == 404, "another user's asset is not found"
