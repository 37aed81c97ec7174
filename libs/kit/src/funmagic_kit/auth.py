"""Who is calling: access-token verification, session revocation keys, and the caller check of services.

Identity signs short-lived access tokens (ES256 JWTs with a `kid`) and publishes its public keys as a JWKS.
Every other process verifies them here, the same way:

- only the algorithms in `ALLOWED_ALGORITHMS` are accepted, whatever the token header says, so `alg: none`
  and an HS256 token "signed" with the public key are refused;
- the key is chosen by `kid` from the JWKS; an unknown `kid` refetches the JWKS (a rotation) at most once
  per `refetch_interval`, and is refused if still unknown;
- issuer, audience and expiry are checked;
- Redis says whether the session was revoked or the user's tokens were invalidated after this one was
  issued (sign-out, role change, disable): one MGET per request, or the gateway's local view of it kept
  current by announcements (`funmagic_kit.revocations`), so a revocation is seen by every replica within a
  second, not when the token expires.

Services behind the gateway also require a caller: the internal service credential (`X-Internal-Token`)
or a valid user token. A request that reaches a service directly with neither is refused.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from redis.asyncio import Redis

from funmagic_kit.audit import bind_actor
from funmagic_kit.errors import TransientError
from funmagic_kit.http import problem
from funmagic_kit.request_keys import INTERNAL_CALLER_KEY, PRINCIPAL_KEY, InvalidToken, Principal
from funmagic_kit.revocations import (
    REVOCATIONS_CHANNEL,
    RedisRevocations,
    RevocationCheck,
    revocation_keys,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "INTERNAL_TOKEN_HEADER",
    "PRINCIPAL_KEY",
    "InvalidToken",
    "JwksSource",
    "Principal",
    "TokenVerifier",
    "bearer_token",
    "caller_middleware",
    "mark_session_revoked",
    "mark_tokens_invalid_before",
    "revocation_keys",
]

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("ES256",)
CLOCK_SKEW_SECONDS = 5
INTERNAL_TOKEN_HEADER = "X-Internal-Token"


async def mark_session_revoked(redis: Redis, user_id: str, session_id: str, ttl_seconds: int) -> None:
    """Refuse this session's access tokens from now on (they expire within `ttl_seconds` anyway)."""
    revoked_key, _ = revocation_keys(user_id, session_id)
    await _set_and_announce(redis, user_id, revoked_key, "1", ttl_seconds)


async def mark_tokens_invalid_before(redis: Redis, user_id: str, moment: float, ttl_seconds: int) -> None:
    """Refuse every access token of this user issued before `moment` (role change, disable, reset)."""
    _, valid_after_key = revocation_keys(user_id, "-")
    await _set_and_announce(redis, user_id, valid_after_key, repr(moment), ttl_seconds)


async def _set_and_announce(redis: Redis, user_id: str, key: str, value: str, ttl_seconds: int) -> None:
    # One MULTI: the key is set before local views hear of it (they then read the new value).
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, value, ex=ttl_seconds)
        pipe.publish(REVOCATIONS_CHANNEL, user_id)
        await pipe.execute()


JwksFetcher = Callable[[], Awaitable[dict[str, Any]]]


class JwksSource:
    """Public keys by `kid`, cached; refetched when an unknown `kid` shows up (key rotation)."""

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        refetch_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> JwksSource:
        async def fetch() -> dict[str, Any]:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
                response.raise_for_status()
                return await response.json()

        return cls(fetch, **kwargs)

    async def key_for(self, kid: str) -> Any:
        if kid in self._keys:
            return self._keys[kid]
        async with self._lock:
            now = self._clock()
            recently = self._fetched_at is not None and now - self._fetched_at < self._refetch_interval
            if kid not in self._keys and not recently:
                await self._refresh(now)
        if kid not in self._keys:
            raise InvalidToken("token signed with an unknown key")
        return self._keys[kid]

    async def _refresh(self, now: float) -> None:
        try:
            document = await self._fetch()
        except Exception as error:
            raise TransientError(f"cannot fetch the signing keys: {type(error).__name__}") from error
        self._fetched_at = now
        self._keys = {
            jwk["kid"]: jwt.PyJWK.from_dict(jwk).key
            for jwk in document.get("keys", [])
            if jwk.get("kid") and jwk.get("alg") in ALLOWED_ALGORITHMS
        }


class TokenVerifier:
    def __init__(
        self,
        jwks: JwksSource,
        redis: Redis,
        *,
        issuer: str,
        audience: str,
        cache_size: int = 10_000,
        revocations: RevocationCheck | None = None,
    ) -> None:
        self._jwks = jwks
        self._revocations = revocations or RedisRevocations(redis)
        self._issuer = issuer
        self._audience = audience
        # Signature checks of tokens seen recently (a client sends the same token for minutes). Only the
        # signature and claims are cached; expiry and revocation are checked on every request.
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_size = cache_size
        # The principal each cached token names (immutable, read from the claims): built once per token.
        self._principals: dict[str, Principal] = {}

    async def verify(self, token: str) -> Principal:
        claims = await self.verify_signature(token)
        principal = self._principals.get(token)
        if principal is None:
            principal = Principal.from_claims(claims, token)
            if token in self._verified:
                self._principals[token] = principal
        state = await self._revocations.session(principal.user_id, principal.session_id)
        if state.revoked:
            raise InvalidToken("session has been signed out or revoked")
        if state.valid_after is not None and principal.issued_at < state.valid_after:
            raise InvalidToken("token was issued before the account changed; refresh it")
        return principal

    async def verify_signature(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is not None:
            if claims["exp"] <= time.time():
                del self._verified[token]
                self._principals.pop(token, None)
                raise InvalidToken("token has expired")
            self._verified.move_to_end(token)
            return claims
        claims = await self._decode(token)
        self._verified[token] = claims
        if len(self._verified) > self._cache_size:
            oldest, _ = self._verified.popitem(last=False)
            self._principals.pop(oldest, None)
        return claims

    async def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise InvalidToken("token algorithm not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token has no key id")
        key = await self._jwks.key_for(kid)
        try:
            return jwt.decode(
                token,
                key,
                algorithms=list(ALLOWED_ALGORITHMS),
                audience=self._audience,
                issuer=self._issuer,
                # Clocks of the issuing and the verifying hosts differ a little: a token issued "now" on a
                # host a second ahead must not look issued in the future.
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "sub", "sid", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token has expired") from None
        except jwt.PyJWTError:
            raise InvalidToken("token signature or claims are invalid") from None


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def caller_middleware(
    verifier: TokenVerifier,
    internal_tokens: Iterable[str],
    *,
    open_paths: tuple[str, ...] = ("/health", "/metrics", "/.well-known"),
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Services: every request needs the internal credential or a valid user token (health stays open).

    A forwarded user token, when present, is always verified and becomes `request[PRINCIPAL_KEY]`, so a
    handler acting for a user knows who it is even when the gateway called.
    """
    accepted = tuple(t.encode() for t in internal_tokens if t)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_open(request.path, open_paths):
            return await handler(request)
        presented = request.headers.get(INTERNAL_TOKEN_HEADER, "").encode()
        is_internal = bool(presented) and any(hmac.compare_digest(presented, t) for t in accepted)
        request[INTERNAL_CALLER_KEY] = is_internal
        token = bearer_token(request)
        if token is not None:
            try:
                principal = await verifier.verify(token)
            except InvalidToken as error:
                return problem(401, "Unauthorized", error.reason)
            except TransientError as error:
                return problem(503, "Service Unavailable", str(error))
            request[PRINCIPAL_KEY] = principal
            # Admin actions the handler records (funmagic_kit.audit) are this caller's.
            with bind_actor(principal.user_id):
                return await handler(request)
        if not is_internal:
            return problem(401, "Unauthorized", "this service needs a service credential or a user token")
        return await handler(request)

    return middleware


def _is_open(path: str, open_paths: tuple[str, ...]) -> bool:
    """`/health` and `/health/db` are open; `/healthy-things` is not (whole path segments only)."""
    return any(path == p or path.startswith(p + "/") for p in open_paths)
