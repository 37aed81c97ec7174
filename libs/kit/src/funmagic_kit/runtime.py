"""The service runtime: what every service process does between start and SIGTERM.

A service describes itself with a `ServiceSpec` (its name, migrations, subscriptions, routes); `serve`
builds the concrete adapters (pool, Redis, producer, broker, S3), runs migrations, starts the outbox
relay, the consumers and the HTTP server, and on SIGTERM/SIGINT shuts down in the order that loses
nothing: stop taking HTTP requests and messages, let in-flight handlers finish, flush the outbox,
then close connections.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from funmagic_kit.auth import JwksSource, TokenVerifier, caller_middleware
from funmagic_kit.consumer import EventConsumer, Subscription
from funmagic_kit.db import create_pool
from funmagic_kit.errors import ConfigError
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.health import HealthCheck, HealthChecks
from funmagic_kit.http import metrics_route, problem_middleware
from funmagic_kit.kafka import create_broker, create_producer, kafka_is_reachable
from funmagic_kit.logs import configure_logging
from funmagic_kit.metrics import Metrics
from funmagic_kit.migrations import migrate_database
from funmagic_kit.outbox import OutboxRelay
from funmagic_kit.redis import create_redis
from funmagic_kit.s3 import open_s3_client
from funmagic_kit.settings import DatabaseSettings, S3Settings, ServiceSettings, load_settings

__all__ = ["RUNTIME_KEY", "BackgroundWorker", "Runtime", "ServiceSpec", "main", "serve"]

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The live adapters of one service process, handed to the service's own wiring functions."""

    settings: Any
    metrics: Metrics
    redis: Redis
    producer: AIOKafkaProducer
    broker: KafkaBroker
    pool: AsyncConnectionPool | None = None
    s3: Any = None
    verifier: TokenVerifier | None = None
    # Closes what a service's startup opened (HTTP client sessions…), after HTTP and consumers stopped.
    exit_stack: AsyncExitStack | None = None
    state: dict[str, Any] = field(default_factory=dict)


class BackgroundWorker(Protocol):
    """A loop the service runs beside HTTP and Kafka (e.g. a mail dispatcher); stopped before the pool."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


Middleware = Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[Any]]
Command = Callable[[Any, Sequence[str]], Awaitable[int]]


RUNTIME_KEY: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)


def _no_subscriptions(runtime: Runtime) -> Sequence[Subscription]:
    return ()


def _no_routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return ()


def _no_checks(runtime: Runtime) -> Sequence[HealthCheck]:
    return ()


def _no_middlewares(runtime: Runtime) -> Sequence[Middleware]:
    return ()


def _no_workers(runtime: Runtime) -> Sequence[BackgroundWorker]:
    return ()


async def _no_startup(runtime: Runtime) -> None:
    return None


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_class: type[ServiceSettings]
    migrations_package: str | None = None
    subscriptions: Callable[[Runtime], Sequence[Subscription]] = _no_subscriptions
    routes: Callable[[Runtime], Sequence[web.RouteDef]] = _no_routes
    health_checks: Callable[[Runtime], Sequence[HealthCheck]] = _no_checks
    # Run after the service's own middlewares are known; internal services also get the caller check.
    middlewares: Callable[[Runtime], Sequence[Middleware]] = _no_middlewares
    workers: Callable[[Runtime], Sequence[BackgroundWorker]] = _no_workers
    # Awaited once the adapters exist and before traffic is taken (e.g. make sure a signing key exists).
    startup: Callable[[Runtime], Awaitable[None]] = _no_startup
    # Extra CLI commands: `python -m funmagic_<svc> <name> [args...]`, each returning an exit code.
    commands: Mapping[str, Command] = field(default_factory=dict)
    # The gateway authenticates users itself; every other service refuses callers without credentials.
    requires_caller: bool = True
    client_max_size: int = 1024**2

    @property
    def uses_database(self) -> bool:
        return issubclass(self.settings_class, DatabaseSettings)

    @property
    def uses_s3(self) -> bool:
        return issubclass(self.settings_class, S3Settings)


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


async def _serve_until(
    stop: asyncio.Event, spec: ServiceSpec, settings: Any, ready: asyncio.Event | None
) -> None:
    metrics = Metrics(spec.name)
    async with AsyncExitStack() as stack:
        pool = None
        if spec.uses_database:
            await migrate(spec, settings)
            pool = await create_pool(
                settings.database_url.get_secret_value(),
                min_size=settings.database_pool_min,
                max_size=settings.database_pool_max,
                name=spec.name,
            )
            stack.push_async_callback(pool.close)
        redis = await create_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        producer = await create_producer(settings.kafka_bootstrap_servers, client_id=spec.name)
        stack.push_async_callback(producer.stop)
        s3 = await open_s3_client(settings, stack) if spec.uses_s3 else None

        broker = create_broker(
            settings.kafka_bootstrap_servers,
            client_id=spec.name,
            graceful_timeout=settings.shutdown_grace_seconds,
        )
        verifier = TokenVerifier(
            JwksSource.from_url(settings.auth_jwks_url),
            redis,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
        )
        runtime = Runtime(
            settings=settings,
            metrics=metrics,
            redis=redis,
            producer=producer,
            broker=broker,
            pool=pool,
            s3=s3,
            verifier=verifier,
            exit_stack=stack,
        )
        await spec.startup(runtime)

        consumer = EventConsumer(
            name=spec.name,
            broker=broker,
            producer=producer,
            metrics=metrics,
            pool=pool,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_ms=settings.consumer_retry_backoff_ms,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            concurrency=settings.consumer_concurrency,
        )
        for subscription in spec.subscriptions(runtime):
            consumer.subscribe(subscription)

        if pool is not None:
            relay = OutboxRelay(
                dsn=settings.database_url.get_secret_value(),
                pool=pool,
                producer=producer,
                metrics=metrics,
                failpoints=Failpoints.from_environment(),
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
        for check in spec.health_checks(runtime):
            checks.add(check)

        for worker in spec.workers(runtime):
            worker_task = asyncio.create_task(worker.run(), name=f"{spec.name}-{type(worker).__name__}")
            stack.push_async_callback(_stop_worker, worker, worker_task)

        middlewares: list[Any] = [problem_middleware(metrics)]
        if spec.requires_caller:
            middlewares.append(caller_middleware(verifier, settings.internal_api_tokens()))
        middlewares += spec.middlewares(runtime)
        max_body = getattr(
            settings, "max_body_bytes", spec.client_max_size
        )  # a service may make it a setting
        app = web.Application(middlewares=middlewares, client_max_size=max_body)
        app.add_routes([*checks.routes(), metrics_route(metrics), *spec.routes(runtime)])
        app[RUNTIME_KEY] = runtime
        http_runner = web.AppRunner(app, access_log=None, shutdown_timeout=settings.shutdown_grace_seconds)
        await http_runner.setup()
        stack.push_async_callback(http_runner.cleanup)  # lets in-flight requests finish
        site = web.TCPSite(http_runner, settings.http_host, settings.http_port)

        await broker.start()
        stack.push_async_callback(broker.stop)  # waits for in-flight handlers up to the grace period
        stack.push_async_callback(consumer.prepare_to_stop)
        await site.start()
        stack.push_async_callback(site.stop)  # first of all: take no new requests
        log.info("service started", extra={"port": settings.http_port})
        if ready is not None:
            ready.set()

        await stop.wait()
        # Unwinding the exit stack shuts down in the order that loses nothing: no new requests, no new
        # messages, in-flight handlers finish, the outbox is flushed, then connections close.
        log.info("shutting down")


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
        raise SystemExit(asyncio.run(spec.commands[args.command](settings, args.arguments)))
    else:
        asyncio.run(serve(spec, settings))
