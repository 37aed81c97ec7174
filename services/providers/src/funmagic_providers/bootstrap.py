"""The composition root of providers: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_kit.audit_log import audit_routes
from funmagic_kit.clock import Clock, SystemClock
from funmagic_kit.metrics import Metrics
from funmagic_kit.runtime import Runtime, ServiceParts, ServiceSpec
from funmagic_kit.tracing_http import tracing_client_middleware
from funmagic_kit.workers import Periodic
from funmagic_providers import migrations
from funmagic_providers.adapters.apis.fal_queue import FalQueue
from funmagic_providers.adapters.apis.gemini import Gemini
from funmagic_providers.adapters.apis.hunyuan import Hunyuan
from funmagic_providers.adapters.apis.local import LocalProvider
from funmagic_providers.adapters.apis.openai_api import OpenAIApi
from funmagic_providers.adapters.apis.recorded_http import ContextCallRecorder, provider_session
from funmagic_providers.adapters.apis.replicate import Replicate
from funmagic_providers.adapters.apis.tripo import Tripo
from funmagic_providers.adapters.kafka_queue import KafkaQueueReader
from funmagic_providers.adapters.keyring import ProviderKeyring
from funmagic_providers.adapters.lag_trend import RedisLagTrend
from funmagic_providers.adapters.live_replies import RedisLiveReplies
from funmagic_providers.adapters.metrics import ProvidersMetrics
from funmagic_providers.adapters.postgres import ProvidersUnitOfWork
from funmagic_providers.adapters.rate_limiter import ProviderRateLimiter
from funmagic_providers.adapters.storage_client import StorageClient
from funmagic_providers.application.diagnostics import ProviderDiagnostics
from funmagic_providers.application.ports import KafkaQueue, Storage
from funmagic_providers.application.queue_monitor import QueueMonitor
from funmagic_providers.application.registry import ProviderRegistry
from funmagic_providers.application.steps import StepJobs, StepRunner
from funmagic_providers.config import ProvidersSettings
from funmagic_providers.domain.documents import JsonObject
from funmagic_providers.domain.steps import ProviderAdapter
from funmagic_providers.entrypoints import cli, kafka
from funmagic_providers.entrypoints.diagnostics_http import DiagnosticsApp
from funmagic_providers.entrypoints.http import ProvidersApp
from funmagic_providers.entrypoints.queue_http import QueueMonitorApp


@dataclass(frozen=True)
class Providers:
    registry: ProviderRegistry
    limiter: ProviderRateLimiter
    runner: StepRunner
    jobs: StepJobs
    monitor: QueueMonitor
    parts: ServiceParts


def build(
    settings: ProvidersSettings,
    *,
    pool: AsyncConnectionPool,
    redis: Redis,
    http: aiohttp.ClientSession,
    clock: Clock | None = None,
    storage: Storage | None = None,
    adapters: Mapping[str, ProviderAdapter] | None = None,
    owner: str | None = None,
    kafka_queue: KafkaQueue | None = None,
    metrics: Metrics | None = None,
) -> Providers:
    """`adapters` replace the provider APIs of those types (fakes of third parties in tests); `owner`
    names this process's runner in job leases; `kafka_queue` is what the queue monitor reads Kafka with
    (by default a reader of its own that connects on first use: its owner closes it); `metrics`: the
    process's registry that /metrics serves (by default one of its own, which nobody reads)."""
    clock = clock or SystemClock()
    recorded = ProvidersMetrics((metrics or Metrics("providers")).registry)

    def unit_of_work() -> ProvidersUnitOfWork:
        return ProvidersUnitOfWork(pool)

    # The limiter loads a provider's limits through the registry, and the registry clears the limiter's
    # cached copy when an admin edits them: the loader closes over the registry built just after it.
    async def load_limits(scope: str, provider: str) -> JsonObject | None:
        return await registry.rate_limit_source(scope, provider)

    limiter = ProviderRateLimiter(
        redis, load_limits, lease_seconds=settings.limiter_lease_seconds, clock=clock.now
    )
    registry = ProviderRegistry(
        uow=unit_of_work,
        keyring=ProviderKeyring.from_settings(
            settings.provider_master_keys.get_secret_value(), settings.secret_key.get_secret_value()
        ),
        adapters={**_provider_apis(settings, http), **(adapters or {})},
        config_cache=limiter,
        clock=clock,
    )
    runner = StepRunner(
        uow=unit_of_work,
        registry=registry,
        limiter=limiter,
        storage=storage or StorageClient(settings.storage_url, settings.internal_api_tokens()[0], http),
        settings=settings,
        clock=clock,
        metrics=recorded,
        owner=owner,
        live=RedisLiveReplies(redis),
        recorder=ContextCallRecorder(),
    )
    recorded.watch_circuits(runner.circuits)
    jobs = StepJobs(runner=runner, clock=clock)
    health_checks = Periodic("provider-health", registry.check_all, settings.health_check_interval_seconds)
    monitor = QueueMonitor(
        uow=unit_of_work,
        kafka=kafka_queue
        or KafkaQueueReader(
            settings.kafka_bootstrap_servers, client_id="providers", names=settings.kafka_names()
        ),
        trend=RedisLagTrend(redis),
        limiter=limiter,
        runner=runner,
        clock=clock,
        sample_spacing_seconds=settings.queue_lag_sample_seconds / 2,
        metrics=recorded,
    )
    lag_samples = Periodic("queue-lag-samples", monitor.sample_lag, settings.queue_lag_sample_seconds)
    parts = ServiceParts(
        routes=[
            *ProvidersApp(registry).routes(),
            *QueueMonitorApp(monitor).routes(),
            *DiagnosticsApp(ProviderDiagnostics(uow=unit_of_work)).routes(),
            *audit_routes(pool, "providers"),
        ],
        subscriptions=kafka.subscriptions(jobs),
        unit_of_work=unit_of_work,
        workers=(runner, health_checks, lag_samples),
    )
    return Providers(
        registry=registry, limiter=limiter, runner=runner, jobs=jobs, monitor=monitor, parts=parts
    )


def _provider_apis(settings: ProvidersSettings, http: aiohttp.ClientSession) -> dict[str, ProviderAdapter]:
    poll = settings.provider_poll_interval_seconds
    return {
        "openai": OpenAIApi(timeout_seconds=settings.provider_call_timeout_seconds),
        "fal": FalQueue(http, poll_interval_seconds=poll),
        "tripo": Tripo(http, poll_interval_seconds=poll),
        "replicate": Replicate(http, poll_interval_seconds=poll),
        "hunyuan": Hunyuan(http, poll_interval_seconds=poll),
        "gemini": Gemini(http),
        "local": LocalProvider(),
    }


async def _build_from_runtime(runtime: Runtime) -> ServiceParts:
    settings: ProvidersSettings = runtime.settings
    # The session the fal and Tripo adapters call through records their calls (`recorded_http`).
    http = await runtime.exit_stack.enter_async_context(
        provider_session(settings.provider_call_timeout_seconds)
    )
    kafka_queue = KafkaQueueReader(
        settings.kafka_bootstrap_servers, client_id=SPEC.name, names=settings.kafka_names()
    )
    runtime.exit_stack.push_async_callback(kafka_queue.close)
    # Storage is one of ours: its calls carry the trace on (the provider session's do not).
    storage_http = await runtime.exit_stack.enter_async_context(
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.provider_call_timeout_seconds),
            middlewares=(tracing_client_middleware,),
        )
    )
    providers = build(
        settings,
        pool=runtime.require_pool(),
        redis=runtime.redis,
        http=http,
        storage=StorageClient(settings.storage_url, settings.internal_api_tokens()[0], storage_http),
        kafka_queue=kafka_queue,
        metrics=runtime.metrics,
    )
    # A wrong master key must stop the service here, not fail every step later.
    await providers.registry.verify_keys()
    # Unwound after the step runner stopped: the slots of its last calls are given back, not left to expire.
    runtime.exit_stack.push_async_callback(providers.limiter.flush_releases)
    return providers.parts


async def _rotate_provider_keys(runtime: Runtime, argv: Sequence[str]) -> int:
    http = await runtime.exit_stack.enter_async_context(aiohttp.ClientSession())
    providers = build(runtime.settings, pool=runtime.require_pool(), redis=runtime.redis, http=http)
    return await cli.rotate_provider_keys(providers.registry, argv)


SPEC = ServiceSpec(
    name="providers",
    settings_class=ProvidersSettings,
    migrations_package=migrations.__name__,
    build=_build_from_runtime,
    commands={"rotate-provider-keys": _rotate_provider_keys},
)
