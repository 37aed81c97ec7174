"""The composition root of tasks: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web

from funmagic_contracts.envelope import Envelope
from funmagic_kit.db import UnitOfWork
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.outbox import add_to_outbox
from funmagic_kit.runtime import BackgroundWorker, Middleware, Runtime, ServiceSpec
from funmagic_kit.workers import Periodic
from funmagic_tasks.adapters.catalog_records import CatalogRecords
from funmagic_tasks.adapters.services import ProvidersDirectory, StorageAssets
from funmagic_tasks.adapters.task_records import TaskRecords
from funmagic_tasks.application.catalog import Catalog
from funmagic_tasks.application.tasks import TaskPolicy, TaskService
from funmagic_tasks.cli import COMMANDS
from funmagic_tasks.config import TasksSettings
from funmagic_tasks.entrypoints.catalog_http import CatalogApp, catalog_error_middleware
from funmagic_tasks.entrypoints.kafka import TaskReactions
from funmagic_tasks.entrypoints.tasks_http import TasksApp, tasks_error_middleware

__all__ = ["SPEC", "SystemClock", "publish"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def publish(conn, events, caused_by: Envelope | None = None) -> None:
    """Events into the outbox, in the caller's transaction; reactions carry their cause's correlation."""
    if caused_by is not None:
        envelopes = [Envelope.wrap(e, caused_by=caused_by) for e in events]
    else:
        envelopes = [Envelope.wrap(e, correlation_id=current_correlation_id()) for e in events]
    await add_to_outbox(conn, [(e.TOPIC, envelope) for e, envelope in zip(events, envelopes, strict=True)])


@dataclass
class Wiring:
    tasks: TaskService
    catalog: Catalog
    reactions: TaskReactions


async def startup(runtime: Runtime) -> None:
    settings: TasksSettings = runtime.settings
    assert runtime.pool is not None
    assert runtime.exit_stack is not None
    pool = runtime.pool
    session = await runtime.exit_stack.enter_async_context(
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    )
    token = settings.internal_api_tokens()[0]
    providers = ProvidersDirectory(settings.providers_url, token, session)
    catalog = Catalog(
        uow=lambda: UnitOfWork(pool),
        records=CatalogRecords,
        publish=publish,
        provider_exists=providers.exists,
        clock=SystemClock(),
    )
    tasks = TaskService(
        uow=lambda: UnitOfWork(pool),
        tasks=TaskRecords,
        catalog=CatalogRecords,
        assets=StorageAssets(settings.storage_url, token, session),
        publish=publish,
        clock=SystemClock(),
        policy=TaskPolicy(
            max_active_per_user=settings.max_active_tasks_per_user,
            deadline_grace=timedelta(seconds=settings.step_deadline_grace_seconds),
            pending_timeout=timedelta(seconds=settings.pending_timeout_seconds),
        ),
    )
    runtime.state["tasks"] = Wiring(tasks, catalog, TaskReactions(tasks))


def _wiring(runtime: Runtime) -> Wiring:
    return runtime.state["tasks"]


def subscriptions(runtime: Runtime):
    return _wiring(runtime).reactions.subscriptions()


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    wiring = _wiring(runtime)
    return [*TasksApp(wiring.tasks).routes(), *CatalogApp(wiring.catalog).routes()]


def middlewares(runtime: Runtime) -> Sequence[Middleware]:
    return (tasks_error_middleware(), catalog_error_middleware())


def workers(runtime: Runtime) -> Sequence[BackgroundWorker]:
    interval = runtime.settings.sweep_interval_seconds
    return (Periodic("overdue-tasks", _wiring(runtime).tasks.sweep_overdue, interval),)


SPEC = ServiceSpec(
    name="tasks",
    settings_class=TasksSettings,
    migrations_package="funmagic_tasks.migrations",
    subscriptions=subscriptions,
    routes=routes,
    startup=startup,
    middlewares=middlewares,
    workers=workers,
    commands=COMMANDS,
)
