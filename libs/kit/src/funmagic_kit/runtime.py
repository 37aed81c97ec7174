"""The service runtime: what every service process does between start and SIGTERM.

A service describes itself with a `ServiceSpec`: its name, settings, migrations, commands and `build`, the
service's composition root. `serve` opens the concrete adapters (pool, Redis, producer, S3) as a
`Runtime`, runs migrations, awaits `build(runtime)` for the service's `ServiceParts` (routes,
subscriptions, workers, its unit of work…), starts the outbox relay, the consumers and the HTTP server, and
on SIGTERM/SIGINT shuts down in the order that loses nothing: stop taking HTTP requests and messages, let
in-flight handlers finish, flush the outbox, then close connections.

Operator commands (`python -m funmagic_<service> <command>`) open the same adapters with `open_runtime`
(no HTTP, no consumers) and call the service's composition root like `serve` does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_kit.auth import JwksSource, TokenVerifier, caller_middleware
from funmagic_kit.collector import settle_after_startup
from funmagic_kit.consumer import GATHERING_FETCH_MIN_BYTES, EventConsumer, Subscription
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.errors import ConfigError
from funmagic_kit.failpoints import Failpoints, PoisonedEvents
from funmagic_kit.health import HealthCheck, HealthChecks
from funmagic_kit.http import metrics_route, problem_middleware
from funmagic_kit.kafka import create_producer, kafka_is_reachable
from funmagic_kit.logs import configure_logging
from funmagic_kit.metrics import Metrics
from funmagic_kit.migrations import migrate_database
from funmagic_kit.outbox import OutboxRelay
from funmagic_kit.redis import create_redis
from funmagic_kit.revocations import RevocationView
from funmagic_kit.s3 import open_s3_client
from funmagic_kit.settings import DatabaseSettings, S3Settings, ServiceSettings, load_settings
from funmagic_kit.tracing import configure_tracing
from funmagic_kit.tracing_http import tracing_middleware

__all__ = [
    "RUNTIME_KEY",
    "BackgroundWorker",
    "Runtime",
    "ServiceParts",
    "ServiceSpec",
    "main",
    "open_runtime",
    "serve",
]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The live adapters of one service process, handed to the service's own wiring functions."""

    settings: Any
    metrics: Metrics
    redis: Redis
    # None when an operator command opened the runtime (no Kafka there).
    producer: AIOKafkaProducer | None
    pool: AsyncConnectionPool | None = None
    s3: Any = None
    verifier: TokenVerifier | None = None
    revocation_view: RevocationView | None = None
    # Closes what a service's build opened (HTTP client sessions…), after HTTP and consumers stopped.
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    def require_pool(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise ConfigError("this service has no database settings")
        return self.pool


class BackgroundWorker(Protocol):
    """A loop the service runs beside HTTP and Kafka (e.g. a mail dispatcher); stopped before the pool."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


Middleware = Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[Any]]
Command = Callable[["Runtime", Sequence[str]], Awaitable[int]]
"""`await command(runtime, argv)`: an operator command, run with the service's adapters open."""


RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


@dataclass(frozen=True)
class ServiceParts:
    """What a service's composition root builds from the runtime's adapters."""

    routes: Sequence[web.RouteDef] = ()
    subscriptions: Sequence[Subscription[Any]] = ()
    # The service's unit of work (a PostgresUnitOfWork subclass binding its stores): consumers run their
    # handlers in it, with the inbox row. None: the kit's plain one (services with a database).
    unit_of_work: Callable[[], PostgresUnitOfWork] | None = None
    workers: Sequence[BackgroundWorker] = ()
    health_checks: Sequence[HealthCheck] = ()
    # Run after the kit's own (problem+json, caller check).
    middlewares: Sequence[Middleware] = ()


async def _nothing(runtime: Runtime) -> ServiceParts:
    return ServiceParts()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_class: type[ServiceSettings]
    migrations_package: str | None = None
    # The composition root: awaited once the adapters exist and before traffic is taken.
    build: Callable[[Runtime], Awaitable[ServiceParts]] = _nothing
    # Extra CLI commands: `python -m funmagic_<svc> <name> [args...]`, each returning an exit code.
    commands: Mapping[str, Command] = field(default_factory=dict)
    # The gateway authenticates users itself; every other service refuses callers without credentials.
    requires_caller: bool = True
    client_max_size: int = 1024**2
    # The longest request line (method, path and query) read; a longer one is refused by aiohttp's parser
    # with a plain-text 400 before any route or middleware sees it.
    max_request_line: int = 8190
    # Answer revocation checks from a local view kept current by announcements instead of one Redis round
    # trip per check (`funmagic_kit.revocations`): the gateway, which checks every request, and storage, tasks
    # and credits, which re-check every request forwarded to them. (Identity with a view of its own
    # failed the super admin's fuzz run's sign-ins, not yet diagnosed: keep it off there.)
    revocation_view: bool = False
    # A service whose reactions may wait lets the broker gather its topics' records for up to this long
    # before it answers a fetch, instead of being woken by each one. Storage reacts only to deletions while
    # its topics carry every task's lifecycle, which it would otherwise fetch and pass over event by event
    # (in e2e_tasks, 4 wakeups a task). None: woken by the first record, as the flow of a task needs.
    reactions_may_wait_ms: int | None = None

    @property
    def uses_database(self) -> bool:
        return issubclass(self.settings_class, DatabaseSettings)

    @property
    def uses_s3(self) -> bool:
        return issubclass(self.settings_class, S3Settings)


def consumer_fetch(spec: ServiceSpec, settings: ServiceSettings) -> dict[str, int]:
    """How the service's consumer fetches: answered by the first record after a long poll, or gathering
    (`ServiceSpec.reactions_may_wait_ms`)."""
    if spec.reactions_may_wait_ms is None:
        return {"fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms, "fetch_min_bytes": 1}
    return {"fetch_max_wait_ms": spec.reactions_may_wait_ms, "fetch_min_bytes": GATHERING_FETCH_MIN_BYTES}


async def migrate(spec: ServiceSpec, settings: Any) -> None:
    if not spec.uses_database:
        return
    components = [(spec.name, spec.migrations_package)] if spec.migrations_package else []
    applied = await migrate_database(settings.database_url.get_secret_value(), *components)
    log.info("database is up to date", extra={"applied": [f"{m.component}/{m.version:03d}" for m in applied]})


async def serve(spec: ServiceSpec, settings: Any, *, ready: asyncio.Event | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _serve_until(stop, spec, settings, ready)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")


async def _open_adapters(
    spec: ServiceSpec, settings: Any, stack: AsyncExitStack, *, metrics: Metrics, kafka: bool, pool_max: int
) -> Runtime:
    pool = None
    if spec.uses_database:
        await migrate(spec, settings)
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=min(settings.database_pool_min, pool_max),
            max_size=pool_max,
            name=spec.name,
        )
        stack.push_async_callback(pool.close)
    redis = await create_redis(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    producer = None
    if kafka:
        producer = await create_producer(settings.kafka_bootstrap_servers, client_id=spec.name)
        stack.push_async_callback(producer.stop)
    s3 = await open_s3_client(settings, stack) if spec.uses_s3 else None
    # Only a serving process keeps the view (an operator command has no traffic to spare a round trip on).
    revocation_view = RevocationView(redis) if spec.revocation_view and kafka else None
    verifier = TokenVerifier(
        JwksSource.from_url(settings.auth_jwks_url),
        redis,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        revocations=revocation_view,
    )
    return Runtime(
        settings=settings,
        metrics=metrics,
        redis=redis,
        producer=producer,
        pool=pool,
        s3=s3,
        verifier=verifier,
        revocation_view=revocation_view,
        exit_stack=stack,
    )


@asynccontextmanager
async def open_runtime(spec: ServiceSpec, settings: Any) -> AsyncIterator[Runtime]:
    """The service's adapters for an operator command: the migrated database (a small pool), Redis and S3;
    no Kafka (events a command publishes wait in the outbox for the service's relay). Closed on exit."""
    async with AsyncExitStack() as stack:
        yield await _open_adapters(
            spec, settings, stack, metrics=Metrics(f"{spec.name}_cli"), kafka=False, pool_max=2
        )


async def _serve_until(
    stop: asyncio.Event, spec: ServiceSpec, settings: Any, ready: asyncio.Event | None
) -> None:
    metrics = Metrics(spec.name)
    async with AsyncExitStack() as stack:
        stop_tracing = configure_tracing(spec.name)
        if stop_tracing is not None:
            # Unwound last: the spans of the final drain are exported too (a blocking flush, in a thread).
            stack.push_async_callback(asyncio.to_thread, stop_tracing)
        pool_max = settings.database_pool_max if spec.uses_database else 0
        runtime = await _open_adapters(spec, settings, stack, metrics=metrics, kafka=True, pool_max=pool_max)
        pool, redis, s3, verifier = runtime.pool, runtime.redis, runtime.s3, runtime.verifier
        producer = runtime.producer
        if producer is None or verifier is None:
            raise ConfigError("serving needs Kafka and a token verifier")
        parts = await spec.build(runtime)

        consumer = EventConsumer(
            name=spec.name,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            producer=producer,
            metrics=metrics,
            unit_of_work=_unit_of_work(parts, pool),
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_ms=settings.consumer_retry_backoff_ms,
            **consumer_fetch(spec, settings),
            wake_interval_ms=settings.kafka_consumer_wake_ms,
            max_batch=settings.consumer_max_batch,
            concurrency=settings.consumer_concurrency,
            grace_seconds=settings.shutdown_grace_seconds,
            poisoned=PoisonedEvents.from_environment(),
            failpoints=Failpoints.from_environment(),
            names=settings.kafka_names(),
        )
        for subscription in parts.subscriptions:
            consumer.subscribe(subscription)

        if pool is not None:
            relay = OutboxRelay(
                dsn=settings.database_url.get_secret_value(),
                pool=pool,
                producer=producer,
                metrics=metrics,
                failpoints=Failpoints.from_environment(),
                names=settings.kafka_names(),
            )
            relay_task = asyncio.create_task(relay.run(), name=f"{spec.name}-outbox-relay")
            # Runs after the consumers and HTTP have stopped (the exit stack unwinds in reverse), so it
            # flushes what their last handlers committed.
            stack.push_async_callback(_stop_relay, relay, relay_task)

        checks = HealthChecks(spec.name)
        if pool is not None:
            checks.add(HealthCheck("db", lambda: _select_one(pool)))
        checks.add(HealthCheck("redis", redis.ping))
        checks.add(HealthCheck("kafka", lambda: kafka_is_reachable(producer)))
        if s3 is not None:
            checks.add(HealthCheck("s3", lambda: _list_buckets(s3)))
        for check in parts.health_checks:
            checks.add(check)

        workers = [*parts.workers]
        if runtime.revocation_view is not None:
            workers.append(runtime.revocation_view)
        for worker in workers:
            worker_task = asyncio.create_task(worker.run(), name=f"{spec.name}-{type(worker).__name__}")
            stack.push_async_callback(_stop_worker, worker, worker_task)

        middlewares: list[Any] = [
            tracing_middleware,
            problem_middleware(metrics, access_log_sample=settings.access_log_sample),
        ]
        if spec.requires_caller:
            middlewares.append(caller_middleware(verifier, settings.internal_api_tokens()))
        middlewares += parts.middlewares
        max_body = getattr(
            settings, "max_body_bytes", spec.client_max_size
        )  # a service may make it a setting
        app = web.Application(middlewares=middlewares, client_max_size=max_body)
        # Open, or behind METRICS_AUTH_TOKEN (the kit's caller check leaves /metrics to this route).
        metrics_endpoint = metrics_route(metrics, token=settings.metrics_token())
        app.add_routes([*checks.routes(), metrics_endpoint, *parts.routes])
        app[RUNTIME_KEY] = runtime
        http_runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=settings.shutdown_grace_seconds,
            max_line_size=spec.max_request_line,
        )
        await http_runner.setup()
        stack.push_async_callback(http_runner.cleanup)  # lets in-flight requests finish
        site = web.TCPSite(http_runner, settings.http_host, settings.http_port)

        await consumer.start()
        stack.push_async_callback(consumer.stop)  # lets the batch in progress finish (grace period)
        await site.start()
        stack.push_async_callback(site.stop)  # first of all: take no new requests
        log.info("service started", extra={"port": settings.http_port})
        if ready is not None:
            ready.set()

        await stop.wait()
        # Unwinding the exit stack shuts down in the order that loses nothing: no new requests, no new
        # messages, in-flight handlers finish, the outbox is flushed, then connections close.
        log.info("shutting down")


def _unit_of_work(
    parts: ServiceParts, pool: AsyncConnectionPool | None
) -> Callable[[], PostgresUnitOfWork] | None:
    if parts.unit_of_work is not None:
        return parts.unit_of_work
    if pool is None:
        return None
    return lambda: PostgresUnitOfWork(pool)


async def _stop_relay(relay: OutboxRelay, relay_task: asyncio.Task[None]) -> None:
    relay.stop()  # flushes pending rows, then returns
    await relay_task


async def _stop_worker(worker: BackgroundWorker, task: asyncio.Task[None]) -> None:
    worker.stop()
    await task


async def _select_one(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("SELECT 1")


async def _list_buckets(s3: Any) -> None:
    await s3.list_buckets()


def main(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    """`python -m funmagic_<service> [serve|migrate|<service command> ...]`."""
    parser = argparse.ArgumentParser(prog=f"python -m funmagic_{spec.name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate", *spec.commands])
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(spec.settings_class)
    except ConfigError as error:
        raise SystemExit(f"{spec.name}: {error}") from None
    configure_logging(spec.name, settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(spec, settings))
    elif args.command in spec.commands:
        raise SystemExit(asyncio.run(_run_command(spec, settings, args.command, args.arguments)))
    else:
        asyncio.run(_serve_as_the_process(spec, settings))


async def _serve_as_the_process(spec: ServiceSpec, settings: Any) -> None:
    """`serve`, as the one job of this process: once it serves, the collector policy of a long-running
    process applies (`funmagic_kit.collector`; not when tests serve a service inside their own process)."""
    ready = asyncio.Event()

    async def settle_once_serving() -> None:
        await ready.wait()
        settle_after_startup()

    settling = asyncio.create_task(settle_once_serving())
    try:
        await serve(spec, settings, ready=ready)
    finally:
        settling.cancel()


async def _run_command(spec: ServiceSpec, settings: Any, name: str, argv: Sequence[str]) -> int:
    async with open_runtime(spec, settings) as runtime:
        return await spec.commands[name](runtime, argv)
