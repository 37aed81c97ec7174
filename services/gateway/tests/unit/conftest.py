"""The gateway as production composes it (`bootstrap.build`), over adapters that are never dialled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from redis.asyncio import Redis

from funmagic_gateway.bootstrap import Gateway, build
from funmagic_gateway.config import GatewaySettings
from funmagic_kit.auth import JwksSource, TokenVerifier
from funmagic_kit.clock import ManualClock

NOWHERE = "http://127.0.0.1:1"  # nothing listens there: a unit test that dialled out would fail

Settings = Callable[..., GatewaySettings]


def _settings(**overrides: str) -> GatewaySettings:
    values = {
        "HTTP_PORT": "8000",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "INTERNAL_API_TOKEN": "internal-token-for-unit-tests-only",
        "AUTH_JWKS_URL": f"{NOWHERE}/.well-known/jwks.json",
        **{f"{name}_URL": NOWHERE for name in ("IDENTITY", "TASKS", "CREDITS", "STORAGE", "PROVIDERS")},
        **overrides,
    }
    return GatewaySettings.model_validate(values)


@pytest.fixture
def gateway_settings() -> Settings:
    """`gateway_settings(TRUSTED_PROXIES="…")`: valid settings, with the given variables changed."""
    return _settings


BuildGateway = Callable[[GatewaySettings], Gateway]


@pytest.fixture
async def build_gateway() -> AsyncIterator[BuildGateway]:
    """`build_gateway(settings)`: `bootstrap.build` over real adapter objects that never connect (Redis
    clients dial on first use, an HTTP session on its first request), with a manual clock."""
    redis = Redis.from_url("redis://127.0.0.1:1/0")
    verifier = TokenVerifier(JwksSource.from_url(f"{NOWHERE}/jwks"), redis, issuer="funmagic", audience="api")
    async with aiohttp.ClientSession() as http:

        def build_with(settings: GatewaySettings) -> Gateway:
            return build(
                settings, redis=redis, stream_reads=redis, http=http, verifier=verifier, clock=ManualClock()
            )

        yield build_with
    await redis.aclose()


@pytest.fixture
def gateway(build_gateway: BuildGateway) -> Gateway:
    """Built like production; building it makes no calls."""
    return build_gateway(_settings())
