"""The composition root of tasks: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from psycopg_pool import AsyncConnectionPool

from funmagic_kit.audit_log import audit_routes
from funmagic_kit.clock import Clock, SystemClock
from funmagic_kit.errors import ConfigError
from funmagic_kit.metrics import Metrics
from funmagic_kit.runtime import Runtime, ServiceParts, ServiceSpec
from funmagic_kit.tracing_http import tracing_client_middleware
from funmagic_kit.workers import Periodic
from funmagic_tasks.adapters.metrics import TasksMetrics
from funmagic_tasks.adapters.services import (
    ProvidersDirectory,
    ProvidersStudioModels,
    StorageAssets,
    StorageCatalogImages,
)
from funmagic_tasks.adapters.unit_of_work import TasksUnitOfWork
from funmagic_tasks.application.catalog import Catalog
from funmagic_tasks.application.ports import Assets, CatalogImages, Providers, StudioModels
from funmagic_tasks.application.studio import StudioService
from funmagic_tasks.application.tasks import TaskService
from funmagic_tasks.config import TasksSettings
from funmagic_tasks.domain.task import TaskPolicy
from funmagic_tasks.entrypoints import cli, kafka
from funmagic_tasks.entrypoints.catalog_http import CatalogApp
from funmagic_tasks.entrypoints.studio_http import StudioApp
from funmagic_tasks.entrypoints.tasks_http import TasksApp


@dataclass(frozen=True)
class Tasks:
    tasks: TaskService
    catalog: Catalog
    studio: StudioService
    parts: ServiceParts


def build(
    settings: TasksSettings,
    *,
    pool: AsyncConnectionPool,
    http: aiohttp.ClientSession | None,
    clock: Clock | None = None,
    assets: Assets | None = None,
    providers: Providers | None = None,
    catalog_images: CatalogImages | None = None,
    studio_models: StudioModels | None = None,
    metrics: Metrics | None = None,
) -> Tasks:
    """Tasks' application objects and what the runtime serves. `http` reaches storage and providers; a
    test may pass None with all of their ports given. `metrics`: the process's registry that /metrics
    serves (by default one of its own, which nobody reads)."""
    clock = clock or SystemClock()
    if assets is None or providers is None or catalog_images is None or studio_models is None:
        if http is None:
            raise ConfigError("tasks needs an HTTP session to reach storage and providers")
        token = settings.internal_api_tokens()[0]
        assets = assets or StorageAssets(settings.storage_url, token, http)
        providers = providers or ProvidersDirectory(settings.providers_url, token, http)
        catalog_images = catalog_images or StorageCatalogImages(settings.storage_url, token, http)
        studio_models = studio_models or ProvidersStudioModels(settings.providers_url, token, http)

    def unit_of_work() -> TasksUnitOfWork:
        return TasksUnitOfWork(pool)

    catalog = Catalog(uow=unit_of_work, providers=providers, images=catalog_images, clock=clock)
    tasks = TaskService(
        uow=unit_of_work,
        assets=assets,
        clock=clock,
        policy=TaskPolicy(
            max_active_per_user=settings.max_active_tasks_per_user,
            deadline_grace=timedelta(seconds=settings.step_deadline_grace_seconds),
            pending_timeout=timedelta(seconds=settings.pending_timeout_seconds),
        ),
        metrics=TasksMetrics((metrics or Metrics("tasks")).registry),
    )
    studio = StudioService(uow=unit_of_work, assets=assets, models=studio_models, clock=clock)
    parts = ServiceParts(
        routes=[
            *TasksApp(tasks).routes(),
            *CatalogApp(catalog).routes(),
            *StudioApp(studio).routes(),
            *audit_routes(pool, "tasks"),
        ],
        subscriptions=kafka.subscriptions(tasks, studio),
        unit_of_work=unit_of_work,
        workers=(
            Periodic("overdue-tasks", tasks.sweep_overdue, settings.sweep_interval_seconds),
            Periodic("overdue-studio-replies", studio.sweep_overdue_replies, settings.sweep_interval_seconds),
        ),
    )
    return Tasks(tasks=tasks, catalog=catalog, studio=studio, parts=parts)


async def _http_session(runtime: Runtime) -> aiohttp.ClientSession:
    return await runtime.exit_stack.enter_async_context(
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10), middlewares=(tracing_client_middleware,)
        )
    )


async def _from_runtime(runtime: Runtime) -> ServiceParts:
    http = await _http_session(runtime)
    return build(runtime.settings, pool=runtime.require_pool(), http=http, metrics=runtime.metrics).parts


class _EveryProviderExists:
    """The seed names providers without asking the providers service: it runs before that service is up
    (`make run` seeds first) or without it at all. Every seed tool runs on `local` unless the operator names
    other providers; a provider that is then missing fails the task's step with `provider_not_found`."""

    async def exists(self, name: str) -> bool:
        return True


async def _seed(runtime: Runtime, argv: Sequence[str]) -> int:
    http = await _http_session(runtime)
    built = build(runtime.settings, pool=runtime.require_pool(), http=http, providers=_EveryProviderExists())
    return await cli.seed(built.catalog, argv)


SPEC = ServiceSpec(
    "tasks",
    TasksSettings,
    "funmagic_tasks.migrations",
    build=_from_runtime,
    commands={"seed": _seed},
    # Every task request re-checks the forwarded token: from the local view, not Redis.
    revocation_view=True,
)
