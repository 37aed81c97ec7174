"""Helpers of storage's integration tests: the test clock, the settings, the fixture's bundle, and plain HTTP
to presigned URLs as a browser does it (uploads, downloads)."""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from psycopg_pool import AsyncConnectionPool
from yarl import URL

from funmagic_contracts.envelope import Envelope
from funmagic_kit.runtime import ServiceParts
from funmagic_kit.settings import load_settings
from funmagic_storage.adapters.s3 import S3ObjectStore
from funmagic_storage.application.assets import AssetService, StoragePolicy
from funmagic_storage.config import StorageSettings
from funmagic_storage.domain.assets import AssetNotFound

__all__ = [
    "PNG",
    "Storage",
    "TestClock",
    "deletions",
    "exists",
    "get",
    "key_of",
    "object_of",
    "output",
    "png",
    "put",
    "storage_settings",
    "upload",
]


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid PNG of `width` × `height` black pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x00" * width for _ in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


PNG = png(3, 2)


class TestClock:
    """The system clock, shifted by whatever a test advanced it by; `freeze` stops it."""

    __test__ = False

    def __init__(self) -> None:
        self.offset = timedelta()
        self.frozen: datetime | None = None

    def now(self) -> datetime:
        return self.frozen if self.frozen is not None else datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        if self.frozen is not None:
            self.frozen += delta
        else:
            self.offset += delta

    def freeze(self) -> None:
        self.frozen = self.now()


def storage_settings() -> StorageSettings:
    """The service's settings: S3 from the stack's environment, the rest never dialled by these tests."""
    return load_settings(
        StorageSettings,
        env={
            **{name: value for name, value in os.environ.items() if name.startswith(("S3_", "CDN_"))},
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "REDIS_URL": "redis://127.0.0.1:9",
            "INTERNAL_API_TOKEN": "storage-tests-internal-token-0123456789",
            "AUTH_JWKS_URL": "http://127.0.0.1:9/jwks",
            "DATABASE_URL": "postgresql://unused",
        },
    )


@dataclass
class Storage:
    """What a test needs: the service as bootstrap builds it, its parts, and fresh user ids (whose objects
    are removed later). `build(**settings)` builds it again with other settings, on the same clock."""

    assets: AssetService
    parts: ServiceParts  # the subscriptions and the unit of work they run in
    policy: StoragePolicy
    objects: S3ObjectStore
    s3: Any  # the connecting aiobotocore client
    s3_http: aiohttp.ClientSession  # what storage sends its own signed S3 requests with
    pool: AsyncConnectionPool
    clock: TestClock
    settings: StorageSettings
    build: Callable[..., AssetService]
    users: list[str] = field(default_factory=list)

    def new_user(self) -> str:
        user_id = str(uuid.uuid4())
        self.users.append(user_id)
        return user_id

    async def outbox(self) -> list[Envelope]:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT payload FROM outbox ORDER BY id")
            rows = await cursor.fetchall()
        return [Envelope.model_validate_json(bytes(row["payload"])) for row in rows]


async def put(
    http: aiohttp.ClientSession, ticket: dict[str, Any], body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """PUT `body` to a presigned URL exactly as a browser would: no SDK, only the URL and headers."""
    async with http.put(
        URL(ticket["url"], encoded=True), data=body, headers=headers or ticket["headers"]
    ) as response:
        return response.status, await response.text()


def key_of(ticket: dict[str, Any]) -> str:
    """The storage key a presigned URL points at (path-style: /bucket/key)."""
    return URL(ticket["url"], encoded=True).path.split("/", 2)[2]


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, bytes, dict[str, str]]:
    """GET a URL as a browser would: anonymously, with what it does not encode itself encoded."""
    async with http.get(URL(url)) as response:
        return response.status, await response.read(), dict(response.headers)


async def uploaded_ticket(
    storage: Storage,
    http: aiohttp.ClientSession,
    user_id: str,
    body: bytes = PNG,
    *,
    content_type: str = "image/png",
    filename: str = "a.png",
    module: str = "uploads",
    **kwargs: Any,
) -> dict[str, Any]:
    """An upload's ticket whose body is in S3, not yet confirmed."""
    ticket = await storage.assets.create_upload(
        user_id, filename=filename, content_type=content_type, size=len(body), module=module, **kwargs
    )
    status, text = await put(http, ticket, body)
    assert status == 200, text
    return ticket


async def upload(
    storage: Storage,
    http: aiohttp.ClientSession,
    user_id: str,
    body: bytes = PNG,
    *,
    content_type: str = "image/png",
    filename: str = "photo.png",
    module: str = "uploads",
    **kwargs: Any,
) -> dict[str, Any]:
    """A confirmed upload: the asset's view."""
    ticket = await uploaded_ticket(
        storage, http, user_id, body, content_type=content_type, filename=filename, module=module, **kwargs
    )
    return await storage.assets.complete_upload(user_id, ticket["upload_id"])


async def output(storage: Storage, user: str, task: str | None, *, visibility: str = "private") -> str:
    """An output of `task` as providers stores it (None: of no task); its asset id."""
    stored = await storage.assets.store_bytes(
        user_id=user,
        module="image-gen",
        filename="out.png",
        content_type="image/png",
        data=PNG,
        visibility=visibility,  # type: ignore[arg-type]
        task_id=task,
    )
    return str(stored["id"])


async def object_of(storage: Storage, asset_id: str) -> tuple[str, str]:
    """Where an asset's object is: its bucket and key."""
    async with storage.pool.connection() as conn:
        cursor = await conn.execute("SELECT bucket, storage_key FROM assets WHERE id = %s", (asset_id,))
        row = await cursor.fetchone()
    assert row is not None
    return row["bucket"], row["storage_key"]


async def exists(storage: Storage, asset_id: str) -> bool:
    """The record is live (as an admin finds it) and its object is there."""
    try:
        await storage.assets.get(str(uuid.uuid4()), asset_id, admin=True)
    except AssetNotFound:
        return False
    return await storage.objects.head(*await object_of(storage, asset_id)) is not None


async def deletions(storage: Storage) -> list[Envelope]:
    """The AssetDeleted events storage has written so far."""
    return [e for e in await storage.outbox() if e.type == "AssetDeleted"]
