"""The composition root of gateway: the only place that names concrete classes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from funmagic_contracts.api.audit import AUDITED_SERVICES
from funmagic_gateway.adapters.live_replies import LiveReplyReader
from funmagic_gateway.adapters.rate_limiter import (
    CounterLeases,
    PurchasedCredits,
    RateLimitSettingsStore,
    RedisRateLimiter,
)
from funmagic_gateway.adapters.reply_cache import ReplyCache
from funmagic_gateway.adapters.services import (
    AuditClient,
    CreditsClient,
    IdentityClient,
    ProvidersClient,
    ServiceClient,
    StorageClient,
    TasksClient,
)
from funmagic_gateway.adapters.task_streams import StreamWakeups, TaskStreams, create_stream_read_client
from funmagic_gateway.application.admin_audit import AdminAudit
from funmagic_gateway.application.admin_stats import AdminStats
from funmagic_gateway.application.task_views import TaskViews
from funmagic_gateway.application.user_overview import UserOverviews
from funmagic_gateway.config import GatewaySettings
from funmagic_gateway.entrypoints.admin_routes import (
    admin_audit_operations,
    admin_stats_operations,
    admin_user_operations,
)
from funmagic_gateway.entrypoints.auth import CookiePolicy, authentication_middleware, csrf_middleware
from funmagic_gateway.entrypoints.auth_routes import AuthRoutes
from funmagic_gateway.entrypoints.catalog_routes import catalog_operations
from funmagic_gateway.entrypoints.credits_routes import credits_operations
from funmagic_gateway.entrypoints.edge import (
    cors_middleware,
    parse_trusted_proxies,
    rate_limit_middleware,
    security_headers_middleware,
)
from funmagic_gateway.entrypoints.http import PublicApi, health_checks, rate_limit_operations
from funmagic_gateway.entrypoints.kafka import CatalogWatcher, PurchasesWatcher, SseProjector
from funmagic_gateway.entrypoints.live_relay import LiveRelay
from funmagic_gateway.entrypoints.provider_routes import provider_operations
from funmagic_gateway.entrypoints.queue_routes import queue_operations
from funmagic_gateway.entrypoints.sse_routes import SseRoutes, task_owner_check, token_session_check
from funmagic_gateway.entrypoints.storage_routes import storage_operations
from funmagic_gateway.entrypoints.studio_routes import studio_operations
from funmagic_gateway.entrypoints.task_routes import task_operations
from funmagic_gateway.entrypoints.web_apps import WebApp, web_app_routes
from funmagic_kit.auth import TokenVerifier
from funmagic_kit.clock import Clock, SystemClock
from funmagic_kit.errors import ConfigError
from funmagic_kit.runtime import Runtime, ServiceParts, ServiceSpec
from funmagic_kit.tracing_http import tracing_client_middleware

# Pre-authentication actions carry no ambient authority; a foreign Origin is still refused for them.
CSRF_EXEMPT = (
    "/api/auth/sign-in/email",
    "/api/auth/sign-up/email",
    "/api/auth/forgot-password",
    "/api/auth/reset-password",
    "/api/auth/verify-email",
)


@dataclass(frozen=True)
class Gateway:
    api: PublicApi
    task_streams: TaskStreams
    sse: SseRoutes
    rate_limits: RateLimitSettingsStore
    purchased: PurchasedCredits
    task_views: TaskViews
    user_overviews: UserOverviews
    admin_stats: AdminStats
    parts: ServiceParts


def build(
    settings: GatewaySettings,
    *,
    redis: Redis,
    stream_reads: Redis,
    http: aiohttp.ClientSession,
    verifier: TokenVerifier,
    clock: Clock | None = None,
) -> Gateway:
    """The gateway over its adapters: `redis` (rate limits, the projector's appends), `stream_reads` (the
    SSE streams' blocking reads, a pool of their own), `http` (calls to the services), `verifier` (tokens)."""
    try:
        trusted_proxies = parse_trusted_proxies(settings.trusted_proxies)
    except ValueError as error:
        raise ConfigError(f"TRUSTED_PROXIES: {error}") from None
    internal_token = settings.internal_api_tokens()[0]
    services = {
        name: ServiceClient(name, url, internal_token, http) for name, url in settings.service_urls().items()
    }
    # One subscription per process wakes every SSE stream waiting on a key (no connection per stream).
    wakeups = StreamWakeups(redis)
    task_streams = TaskStreams(redis, stream_reads, wakeups=wakeups)
    sse = SseRoutes(
        task_streams,
        task_owner_check(services["tasks"]),
        heartbeat_seconds=settings.sse_heartbeat_seconds,
        session_check=token_session_check(verifier),
        session_check_seconds=settings.sse_session_check_seconds,
    )
    cookies = CookiePolicy(
        secure=settings.cookie_secure,
        domain=settings.cookie_domain or None,
        samesite=settings.cookie_samesite,
    )
    auth = AuthRoutes(
        services["identity"],
        cookies,
        clock or SystemClock(),
        app_url=settings.public_app_url,
        storage=services["storage"],
    )
    identity, credits = IdentityClient(services["identity"]), CreditsClient(services["credits"])
    tasks = TasksClient(services["tasks"])
    # The limits are kept by identity and cached in Redis; what users bought is asked of credits.
    rate_limits = RateLimitSettingsStore(redis, identity)
    purchased = PurchasedCredits(redis, credits)
    task_views = TaskViews(tasks=tasks, assets=StorageClient(services["storage"]))
    user_overviews = UserOverviews(users=identity, credits=credits, tasks=tasks)
    admin_stats = AdminStats(tasks=tasks, credits=credits, providers=ProvidersClient(services["providers"]))
    catalog_cache = ReplyCache(ttl_seconds=settings.catalog_cache_seconds)
    admin_audit = AdminAudit({name: AuditClient(services[name]) for name in AUDITED_SERVICES})
    operations = [
        *auth.operations(),
        *admin_user_operations(user_overviews),
        *admin_stats_operations(admin_stats, services["tasks"], services["credits"]),
        *admin_audit_operations(admin_audit),
        *credits_operations(services["credits"]),
        *storage_operations(services["storage"]),
        *provider_operations(services["providers"]),
        *queue_operations(services["providers"]),
        *rate_limit_operations(rate_limits),
        *catalog_operations(services["tasks"], catalog_cache),
        *task_operations(services["tasks"], task_views),
        *studio_operations(services["tasks"], services["providers"]),
        *sse.operations(),
    ]
    api = PublicApi(operations, services["identity"])
    origins = settings.allowed_origins()
    # Outermost first: headers on every answer, then who is calling, then limits, then CSRF.
    middlewares = (
        security_headers_middleware(hsts=settings.hsts),
        cors_middleware(origins),
        authentication_middleware(verifier),
        rate_limit_middleware(
            CounterLeases(RedisRateLimiter(redis)), rate_limits, trusted_proxies, purchased=purchased
        ),
        csrf_middleware(origins, exempt_paths=CSRF_EXEMPT),
    )
    apps = [WebApp(Path(settings.web_admin_app_dir), "/admin/")] if settings.web_admin_app_dir else []
    if settings.web_app_dir:
        apps.append(WebApp(Path(settings.web_app_dir), "/"))
    parts = ServiceParts(
        # The apps' catch-all comes last: every API route is matched before it.
        routes=[*api.routes(), *web_app_routes(apps, content_origins=settings.content_origins())],
        subscriptions=[
            *SseProjector(task_streams).subscriptions(CatalogWatcher(catalog_cache)),
            *PurchasesWatcher(purchased).subscriptions(),
        ],
        health_checks=health_checks(settings.service_urls()),
        middlewares=middlewares,
        workers=(LiveRelay(LiveReplyReader(stream_reads, f"gateway-{uuid.uuid4()}"), task_streams), wakeups),
    )
    return Gateway(
        api, task_streams, sse, rate_limits, purchased, task_views, user_overviews, admin_stats, parts
    )


async def _build_from_runtime(runtime: Runtime) -> ServiceParts:
    settings: GatewaySettings = runtime.settings
    if runtime.verifier is None:
        raise ConfigError("the gateway verifies every caller's token: the runtime has no token verifier")
    http = await runtime.exit_stack.enter_async_context(
        aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
            connector=aiohttp.TCPConnector(limit=200),
            middlewares=(tracing_client_middleware,),
        )
    )
    # Each open SSE stream's blocking reads use a pool of their own, so they never starve the rate
    # limiter and the token checks of the shared client.
    stream_reads = create_stream_read_client(
        settings.redis_url,
        max_connections=settings.sse_redis_max_connections,
        block_seconds=settings.sse_heartbeat_seconds,
    )
    runtime.exit_stack.push_async_callback(stream_reads.aclose)
    return build(
        settings, redis=runtime.redis, stream_reads=stream_reads, http=http, verifier=runtime.verifier
    ).parts


SPEC = ServiceSpec(
    name="gateway",
    settings_class=GatewaySettings,
    build=_build_from_runtime,
    requires_caller=False,
    revocation_view=True,
    # Every query the document allows, each character percent-encoded (up to 12 bytes), and a query some
    # way past its bounds, reach the routes: they answer what is wrong (422, problem+json) instead of the
    # parser's plain-text 400. What the gateway forwards is only ever validated, bounded parameters.
    max_request_line=64 * 1024,
)
