"""The caller check of services, over HTTP, with a real Redis behind the token verifier."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from funmagic_kit.auth import (
    INTERNAL_TOKEN_HEADER,
    PRINCIPAL_KEY,
    JwksSource,
    TokenVerifier,
    caller_middleware,
    mark_session_revoked,
)
from funmagic_kit.http import metrics_route, problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.request_keys import INTERNAL_CALLER_KEY

from .signing import AUDIENCE, ISSUER, PublishedKeys, SigningKey, claims_for

INTERNAL_TOKEN = "a-long-internal-token-for-tests-1"


async def whoami(request: web.Request) -> web.Response:
    principal = request.get(PRINCIPAL_KEY)
    return web.json_response(
        {
            "internal_caller": request[INTERNAL_CALLER_KEY],
            "user_id": principal.user_id if principal else None,
        }
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def jwks(request: web.Request) -> web.Response:
    return web.json_response({"keys": []})


async def metrics_export(request: web.Request) -> web.Response:
    return web.json_response({"internal": "figures"})


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
async def user_id(redis: Redis) -> AsyncIterator[str]:
    user_id = f"user-{uuid.uuid4().hex}"
    yield user_id
    keys = [key async for key in redis.scan_iter(match=f"auth:{{{user_id}}}:*")]
    if keys:
        await redis.delete(*keys)


async def serve(verifier: TokenVerifier) -> TestServer:
    metrics = Metrics("test")
    app = web.Application(
        middlewares=[problem_middleware(metrics), caller_middleware(verifier, [INTERNAL_TOKEN])]
    )
    app.add_routes(
        [
            web.get("/work", whoami),
            web.get("/health", health),
            web.get("/health/db", health),
            web.get("/.well-known/jwks.json", jwks),
            web.get("/metrics-export", metrics_export),
            metrics_route(metrics),
        ]
    )
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture
async def client(redis: Redis, signing_key: SigningKey) -> AsyncIterator[aiohttp.ClientSession]:
    verifier = TokenVerifier(
        JwksSource(PublishedKeys([signing_key]).fetch), redis, issuer=ISSUER, audience=AUDIENCE
    )
    server = await serve(verifier)
    async with aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session:
        yield session
    await server.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_unauthorized(response: aiohttp.ClientResponse) -> dict:
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    body = await response.json(content_type=None)
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    return body


async def test_a_request_without_credentials_is_refused_with_a_problem(client: aiohttp.ClientSession) -> None:
    async with client.get("/work") as response:
        body = await assert_unauthorized(response)

    assert "service credential or a user token" in body["detail"]


@pytest.mark.parametrize(
    "presented",
    [
        "a-long-internal-token-for-tests-2",
        INTERNAL_TOKEN[:-1],
        INTERNAL_TOKEN + "x",
        INTERNAL_TOKEN.upper(),
        "",
    ],
    ids=["another token", "a prefix", "a longer token", "different case", "empty"],
)
async def test_a_wrong_internal_token_is_refused(client: aiohttp.ClientSession, presented: str) -> None:
    async with client.get("/work", headers={INTERNAL_TOKEN_HEADER: presented}) as response:
        await assert_unauthorized(response)


async def test_the_internal_token_admits_the_request_as_an_internal_caller(
    client: aiohttp.ClientSession,
) -> None:
    async with client.get("/work", headers={INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}) as response:
        assert response.status == 200
        assert await response.json() == {"internal_caller": True, "user_id": None}


async def test_a_valid_bearer_token_alone_admits_the_request_for_its_user(
    client: aiohttp.ClientSession, signing_key: SigningKey, user_id: str
) -> None:
    token = signing_key.sign(claims_for(user_id, f"session-{uuid.uuid4().hex}"))

    async with client.get("/work", headers=bearer(token)) as response:
        assert response.status == 200
        assert await response.json() == {"internal_caller": False, "user_id": user_id}


async def test_a_forwarded_user_token_is_verified_alongside_the_internal_token(
    client: aiohttp.ClientSession, signing_key: SigningKey, user_id: str
) -> None:
    token = signing_key.sign(claims_for(user_id, f"session-{uuid.uuid4().hex}"))
    headers = {**bearer(token), INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}

    async with client.get("/work", headers=headers) as response:
        assert response.status == 200
        assert await response.json() == {"internal_caller": True, "user_id": user_id}


async def test_an_invalid_bearer_token_is_refused_even_with_the_internal_token(
    client: aiohttp.ClientSession, user_id: str
) -> None:
    forged = SigningKey.generate().sign(claims_for(user_id, f"session-{uuid.uuid4().hex}"))
    headers = {**bearer(forged), INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}

    async with client.get("/work", headers=headers) as response:
        body = await assert_unauthorized(response)

    assert body["detail"] == "token signed with an unknown key"


async def test_a_token_of_a_revoked_session_is_refused_with_the_reason(
    client: aiohttp.ClientSession, signing_key: SigningKey, redis: Redis, user_id: str
) -> None:
    session_id = f"session-{uuid.uuid4().hex}"
    token = signing_key.sign(claims_for(user_id, session_id))
    async with client.get("/work", headers=bearer(token)) as response:
        assert response.status == 200

    await mark_session_revoked(redis, user_id, session_id, ttl_seconds=600)

    async with client.get("/work", headers=bearer(token)) as response:
        body = await assert_unauthorized(response)
    assert body["detail"] == "session has been signed out or revoked"


@pytest.mark.parametrize("path", ["/health", "/health/db", "/metrics", "/.well-known/jwks.json"])
async def test_health_metrics_and_well_known_paths_stay_open(
    client: aiohttp.ClientSession, path: str
) -> None:
    async with client.get(path) as response:
        assert response.status == 200


async def test_a_route_that_only_begins_with_the_letters_of_an_open_path_still_needs_a_caller(
    client: aiohttp.ClientSession,
) -> None:
    async with client.get("/metrics-export") as response:
        await assert_unauthorized(response)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_a_user_token_is_answered_503_when_redis_cannot_say_whether_it_was_revoked(
    signing_key: SigningKey,
) -> None:
    unreachable = Redis.from_url(f"redis://127.0.0.1:{closed_port()}")
    verifier = TokenVerifier(
        JwksSource(PublishedKeys([signing_key]).fetch), unreachable, issuer=ISSUER, audience=AUDIENCE
    )
    server = await serve(verifier)
    token = signing_key.sign(claims_for(f"user-{uuid.uuid4().hex}", f"session-{uuid.uuid4().hex}"))
    try:
        async with (
            aiohttp.ClientSession(base_url=f"http://{server.host}:{server.port}") as session,
            session.get(
                "/work", headers={**bearer(token), INTERNAL_TOKEN_HEADER: INTERNAL_TOKEN}
            ) as response,
        ):
            assert response.status == 503
            assert response.content_type == "application/problem+json"
    finally:
        await server.close()
        await unreachable.aclose()
