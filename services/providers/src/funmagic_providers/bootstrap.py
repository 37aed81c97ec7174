"""The composition root of providers: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from funmagic_contracts.envelope import Envelope
from funmagic_kit.db import UnitOfWork
from funmagic_kit.logs import current_correlation_id
from funmagic_kit.outbox import add_to_outbox
from funmagic_kit.runtime import BackgroundWorker, Middleware, Runtime, ServiceSpec
from funmagic_kit.workers import Periodic
from funmagic_providers.adapters.apis.fal_queue import FalQueue
from funmagic_providers.adapters.apis.local import LocalProvider
from funmagic_providers.adapters.apis.openai_images import OpenAIImages
from funmagic_providers.adapters.apis.tripo import Tripo
from funmagic_providers.adapters.keyring import ProviderKeyring
from funmagic_providers.adapters.postgres import ProviderRecords, StepJobRecords
from funmagic_providers.adapters.rate_limiter import ProviderRateLimiter
from funmagic_providers.adapters.storage_client import StorageClient
from funmagic_providers.application.registry import ProviderRegistry
from funmagic_providers.application.steps import RunnerSettings, StepJobs, StepRunner
from funmagic_providers.cli import COMMANDS
from funmagic_providers.config import ProvidersSettings
from funmagic_providers.entrypoints.http import ProvidersApp, error_middleware
from funmagic_providers.entrypoints.kafka import ProvidersReactions

__all__ = ["SPEC", "build_registry"]


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def publish(conn, events) -> None:
    correlation_id = current_correlation_id()
    await add_to_outbox(conn, [(e.TOPIC, Envelope.wrap(e, correlation_id=correlation_id)) for e in events])


@dataclass
class Wiring:
    registry: ProviderRegistry
    runner: StepRunner
    app: ProvidersApp
    reactions: ProvidersReactions


def build_registry(
    settings: ProvidersSettings, pool, redis, session: aiohttp.ClientSession
) -> tuple[ProviderRegistry, ProviderRateLimiter]:
    keyring = ProviderKeyring.from_settings(
        settings.provider_master_keys.get_secret_value(), settings.secret_key.get_secret_value()
    )
    registry: ProviderRegistry

    async def load_config(scope: str, provider: str):
        return await registry.rate_limit_source(scope, provider)

    limiter = ProviderRateLimiter(redis, load_config, lease_seconds=settings.limiter_lease_seconds)
    poll = settings.provider_poll_interval_seconds
    registry = ProviderRegistry(
        uow=lambda: UnitOfWork(pool),
        records=ProviderRecords,
        keyring=keyring,
        adapters={
            "openai": OpenAIImages(timeout_seconds=settings.provider_call_timeout_seconds),
            "fal": FalQueue(session, poll_interval_seconds=poll),
            "tripo": Tripo(session, poll_interval_seconds=poll),
            "local": LocalProvider(),
        },
        config_cache=limiter,
        publish=publish,
        clock=SystemClock(),
    )
    return registry, limiter


async def startup(runtime: Runtime) -> None:
    settings: ProvidersSettings = runtime.settings
    assert runtime.pool is not None
    assert runtime.exit_stack is not None
    pool = runtime.pool
    session = await runtime.exit_stack.enter_async_context(
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.provider_call_timeout_seconds))
    )
    registry, limiter = build_registry(settings, pool, runtime.redis, session)
    # A wrong master key must stop the service here, not fail every step later.
    await registry.verify_keys()
    storage = StorageClient(settings.storage_url, settings.internal_api_tokens()[0], session)
    runner = StepRunner(
        uow=lambda: UnitOfWork(pool),
        jobs=StepJobRecords,
        registry=registry,
        limiter=limiter,
        storage=storage,
        settings=RunnerSettings(
            concurrency=settings.step_concurrency,
            lease_seconds=settings.step_lease_seconds,
            poll_interval_seconds=settings.step_poll_interval_seconds,
            circuit_failure_threshold=settings.circuit_failure_threshold,
            circuit_cooldown_seconds=settings.circuit_cooldown_seconds,
        ),
    )
    runtime.state["providers"] = Wiring(
        registry, runner, ProvidersApp(registry), ProvidersReactions(StepJobs(runner, StepJobRecords))
    )


def _wiring(runtime: Runtime) -> Wiring:
    return runtime.state["providers"]


def subscriptions(runtime: Runtime):
    return _wiring(runtime).reactions.subscriptions()


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return _wiring(runtime).app.routes()


def middlewares(runtime: Runtime) -> Sequence[Middleware]:
    return (error_middleware(),)


def workers(runtime: Runtime) -> Sequence[BackgroundWorker]:
    wiring = _wiring(runtime)
    interval = runtime.settings.health_check_interval_seconds
    return (wiring.runner, Periodic("provider-health", wiring.registry.check_all, interval))


SPEC = ServiceSpec(
    name="providers",
    settings_class=ProvidersSettings,
    migrations_package="funmagic_providers.migrations",
    subscriptions=subscriptions,
    routes=routes,
    startup=startup,
    middlewares=middlewares,
    workers=workers,
    commands=COMMANDS,
)
