"""The composition root of gateway: the only place that names concrete classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from funmagic_gateway.adapters.rate_limiter import RateLimitSettingsStore, RedisRateLimiter
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.adapters.task_streams import TaskStreams, create_stream_read_client
from funmagic_gateway.config import GatewaySettings
from funmagic_gateway.entrypoints.auth import CookiePolicy, authentication_middleware, csrf_middleware
from funmagic_gateway.entrypoints.auth_routes import AuthRoutes
from funmagic_gateway.entrypoints.catalog_routes import CatalogRoutes
from funmagic_gateway.entrypoints.credits_routes import CreditsRoutes
from funmagic_gateway.entrypoints.edge import (
    cors_middleware,
    parse_trusted_proxies,
    rate_limit_middleware,
    security_headers_middleware,
)
from funmagic_gateway.entrypoints.http import PublicApi, health_checks, rate_limit_operations
from funmagic_gateway.entrypoints.kafka import TASK_STREAMS, subscriptions
from funmagic_gateway.entrypoints.provider_routes import ProviderRoutes
from funmagic_gateway.entrypoints.sse_routes import SseRoutes, task_owner_check
from funmagic_gateway.entrypoints.storage_routes import StorageRoutes
from funmagic_gateway.entrypoints.task_routes import TaskRoutes
from funmagic_kit.errors import ConfigError
from funmagic_kit.runtime import Middleware, Runtime, ServiceSpec

__all__ = ["SPEC"]

# Pre-authentication actions carry no ambient authority; a foreign Origin is still refused for them.
CSRF_EXEMPT = (
    "/api/auth/sign-in/email",
    "/api/auth/sign-up/email",
    "/api/auth/forgot-password",
    "/api/auth/reset-password",
    "/api/auth/verify-email",
)


@dataclass
class Wiring:
    api: PublicApi
    rate_limits: RateLimitSettingsStore
    limiter: RedisRateLimiter
    trusted_proxies: tuple


async def startup(runtime: Runtime) -> None:
    settings: GatewaySettings = runtime.settings
    assert runtime.exit_stack is not None
    try:
        trusted_proxies = parse_trusted_proxies(settings.trusted_proxies)
    except ValueError as error:
        raise ConfigError(f"TRUSTED_PROXIES: {error}") from None
    http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
        connector=aiohttp.TCPConnector(limit=200),
    )
    runtime.exit_stack.push_async_callback(http.close)
    internal_token = settings.internal_api_tokens()[0]
    identity = ServiceClient("identity", settings.identity_url, internal_token, http)
    credits = ServiceClient("credits", settings.credits_url, internal_token, http)
    storage = ServiceClient("storage", settings.storage_url, internal_token, http)
    providers = ServiceClient("providers", settings.providers_url, internal_token, http)
    tasks = ServiceClient("tasks", settings.tasks_url, internal_token, http)
    # Task progress (SSE): the projector appends through the shared client; each open stream's blocking
    # reads use a separate pool, so they never starve the rate limiter and the token checks.
    stream_reads = create_stream_read_client(
        settings.redis_url,
        max_connections=settings.sse_redis_max_connections,
        block_seconds=settings.sse_heartbeat_seconds,
    )
    runtime.exit_stack.push_async_callback(stream_reads.aclose)
    runtime.state[TASK_STREAMS] = TaskStreams(runtime.redis, stream_reads)
    sse = SseRoutes(
        runtime.state[TASK_STREAMS], task_owner_check(tasks), heartbeat_seconds=settings.sse_heartbeat_seconds
    )
    cookies = CookiePolicy(
        secure=settings.cookie_secure,
        domain=settings.cookie_domain or None,
        samesite=settings.cookie_samesite,
    )
    rate_limits = RateLimitSettingsStore(runtime.redis)
    auth = AuthRoutes(identity, cookies, app_url=settings.public_app_url)
    operations = [
        *auth.operations(),
        *CreditsRoutes(credits).operations(),
        *StorageRoutes(storage).operations(),
        *ProviderRoutes(providers).operations(),
        *rate_limit_operations(rate_limits),
        *CatalogRoutes(tasks).operations(),
        *TaskRoutes(tasks).operations(),
        *sse.operations(),
    ]
    api = PublicApi(operations, identity)
    runtime.state["gateway"] = Wiring(api, rate_limits, RedisRateLimiter(runtime.redis), trusted_proxies)


def _wiring(runtime: Runtime) -> Wiring:
    return runtime.state["gateway"]


def routes(runtime: Runtime) -> Sequence[web.RouteDef]:
    return _wiring(runtime).api.routes()


def middlewares(runtime: Runtime) -> Sequence[Middleware]:
    """Outermost first: headers on every answer, then who is calling, then limits, then CSRF."""
    settings: GatewaySettings = runtime.settings
    wiring = _wiring(runtime)
    assert runtime.verifier is not None
    return (
        security_headers_middleware(hsts=settings.hsts),
        cors_middleware(settings.allowed_origins()),
        authentication_middleware(runtime.verifier),
        rate_limit_middleware(wiring.limiter, wiring.rate_limits, wiring.trusted_proxies),
        csrf_middleware(settings.allowed_origins(), exempt_paths=CSRF_EXEMPT),
    )


SPEC = ServiceSpec(
    name="gateway",
    settings_class=GatewaySettings,
    subscriptions=subscriptions,
    routes=routes,
    health_checks=health_checks,
    startup=startup,
    middlewares=middlewares,
    requires_caller=False,
)
