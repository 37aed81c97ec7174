"""The composition root of storage: the only place that names concrete classes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from psycopg_pool import AsyncConnectionPool

from funmagic_kit.audit_log import audit_routes
from funmagic_kit.clock import Clock, SystemClock
from funmagic_kit.runtime import Runtime, ServiceParts, ServiceSpec
from funmagic_kit.s3 import presigned_urls
from funmagic_kit.workers import Periodic
from funmagic_storage.adapters.s3 import S3ObjectStore
from funmagic_storage.adapters.unit_of_work import StorageUnitOfWork
from funmagic_storage.application.assets import AssetService, StoragePolicy
from funmagic_storage.config import StorageSettings
from funmagic_storage.entrypoints import kafka
from funmagic_storage.entrypoints.http import StorageApp


@dataclass(frozen=True)
class Storage:
    assets: AssetService
    objects: S3ObjectStore
    policy: StoragePolicy
    parts: ServiceParts


def build(
    settings: StorageSettings,
    *,
    pool: AsyncConnectionPool,
    s3: Any,
    http: aiohttp.ClientSession,
    clock: Clock | None = None,
) -> Storage:
    """Storage's application objects and what the runtime serves. `s3` is the aiobotocore client; `http`
    sends the requests of URLs signed for the services' own endpoint."""
    policy = StoragePolicy(
        bucket_public=settings.s3_bucket_public,
        bucket_private=settings.s3_bucket_private,
        bucket_admin=settings.s3_bucket_admin,
        cdn_url=settings.cdn_url,
        download_ttl=timedelta(seconds=settings.download_url_ttl_seconds),
        upload_ttl=timedelta(seconds=settings.upload_url_ttl_seconds),
        pending_ttl=timedelta(seconds=settings.pending_upload_ttl_seconds),
        max_bytes=settings.upload_max_bytes,
        module_max_bytes=settings.module_limits(),
        deleted_owner_grace=timedelta(hours=settings.deleted_user_asset_grace_hours),
    )
    objects = S3ObjectStore(
        s3,
        client_urls=presigned_urls(settings, for_clients=True),
        service_urls=presigned_urls(settings, for_clients=False),
        http=http,
    )

    def unit_of_work() -> StorageUnitOfWork:
        return StorageUnitOfWork(pool)

    assets = AssetService(uow=unit_of_work, objects=objects, policy=policy, clock=clock or SystemClock())
    sweep = Periodic("upload-sweep", assets.sweep_expired_uploads, settings.upload_sweep_interval_seconds)
    purge = Periodic(
        "deleted-owner-purge", assets.purge_deleted_owners, settings.deleted_user_purge_interval_seconds
    )
    parts = ServiceParts(
        routes=[*StorageApp(assets).routes(), *audit_routes(pool, "storage")],
        subscriptions=kafka.subscriptions(assets),
        unit_of_work=unit_of_work,
        workers=(sweep, purge),
    )
    return Storage(assets=assets, objects=objects, policy=policy, parts=parts)


async def _from_runtime(runtime: Runtime) -> ServiceParts:
    settings: StorageSettings = runtime.settings
    http = await runtime.exit_stack.enter_async_context(
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=S3_REQUEST_TIMEOUT_SECONDS))
    )
    storage = build(settings, pool=runtime.require_pool(), s3=runtime.s3, http=http)
    buckets = (settings.s3_bucket_public, settings.s3_bucket_private, settings.s3_bucket_admin)
    await storage.objects.ensure_buckets(*buckets)
    if settings.cors_origins():
        await storage.objects.allow_browsers(settings.cors_origins(), *buckets)
    return storage.parts


# What the S3 requests storage sends itself may take (one ranged GET of a few bytes).
S3_REQUEST_TIMEOUT_SECONDS = 10.0
# Server-side writes of provider outputs come in one request, and a 3D model can be large.
MAX_REQUEST_BYTES = 64 * 1024 * 1024

SPEC = ServiceSpec(
    "storage",
    StorageSettings,
    "funmagic_storage.migrations",
    build=_from_runtime,
    client_max_size=MAX_REQUEST_BYTES,
    # Every upload, download and confirmation re-checks the forwarded token: from the local view, not Redis.
    revocation_view=True,
    # Its reactions are deletions (a task's outputs, a chat's files, a user's assets): a second late is fine.
    reactions_may_wait_ms=1_000,
)
