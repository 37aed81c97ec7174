"""The composition root of storage: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiohttp import web

from funmagic_contracts.envelope import Envelope
from funmagic_kit.db import UnitOfWork
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.outbox import add_to_outbox
from funmagic_kit.runtime import BackgroundWorker, Middleware, Runtime, ServiceSpec
from funmagic_kit.s3 import open_presigning_client
from funmagic_kit.workers import Periodic
from funmagic_storage.adapters.postgres import AssetRecords
from funmagic_storage.adapters.s3 import S3ObjectStore
from funmagic_storage.application.assets import AssetService, StoragePolicy
from funmagic_storage.config import StorageSettings
from funmagic_storage.entrypoints.http import StorageApp, error_middleware
from funmagic_storage.entrypoints.kafka import subscriptions

__all__ = ["SPEC"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def publish(conn, events) -> None:
    correlation_id = current_correlation_id()
    await add_to_outbox(conn, [(e.TOPIC, Envelope.wrap(e, correlation_id=correlation_id)) for e in events])


async def startup(runtime: Runtime) -> None:
    settings: StorageSettings = runtime.settings
    assert runtime.pool is not None
    assert runtime.exit_stack is not None
    pool = runtime.pool
    objects = S3ObjectStore(runtime.s3, await open_presigning_client(settings, runtime.exit_stack))
    await objects.ensure_buckets(
        settings.s3_bucket_public, settings.s3_bucket_private, settings.s3_bucket_admin
    )
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
    )
    assets = AssetService(
        uow=lambda: UnitOfWork(pool),
        records=AssetRecords,
        publish=publish,
        objects=objects,
        policy=policy,
        clock=SystemClock(),
    )
    runtime.state["storage"] = (StorageApp(assets), assets)


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return runtime.state["storage"][0].routes()


def middlewares(runtime: Runtime) -> Sequence[Middleware]:
    return (error_middleware(),)


def workers(runtime: Runtime) -> Sequence[BackgroundWorker]:
    assets: AssetService = runtime.state["storage"][1]
    return (
        Periodic(
            "upload-sweep", assets.sweep_expired_uploads, runtime.settings.upload_sweep_interval_seconds
        ),
    )


SPEC = ServiceSpec(
    name="storage",
    settings_class=StorageSettings,
    migrations_package="funmagic_storage.migrations",
    subscriptions=subscriptions,
    routes=routes,
    startup=startup,
    middlewares=middlewares,
    workers=workers,
    client_max_size=64 * 1024 * 1024,  # server-side writes of provider outputs (a 3D model can be large)
)
