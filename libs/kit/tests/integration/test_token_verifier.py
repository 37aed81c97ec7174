"""Access-token verification against a real Redis: signatures, claims, key rotation, revocation."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from funmagic_kit.auth import (
    InvalidToken,
    JwksSource,
    Principal,
    TokenVerifier,
    mark_session_revoked,
    mark_tokens_invalid_before,
    revocation_keys,
)
from funmagic_kit.errors import TransientError
from funmagic_kit.testing import wait_until

from .signing import (
    AUDIENCE,
    ISSUER,
    ManualClock,
    PublishedKeys,
    SigningKey,
    claims_for,
    hs256_token,
    unsigned_token,
    with_payload,
)

REFETCH_INTERVAL = 10.0


@pytest.fixture
async def redis(stack) -> AsyncIterator[Redis]:
    client = Redis.from_url(stack.redis_url)
    await client.ping()
    yield client
    await client.aclose()


@pytest.fixture
async def new_user(redis: Redis) -> AsyncIterator[Callable[[], str]]:
    """Unique user ids; every auth key written for them is deleted after the test."""
    created: list[str] = []

    def make() -> str:
        user_id = f"user-{uuid.uuid4().hex}"
        created.append(user_id)
        return user_id

    yield make
    for user_id in created:
        keys = [key async for key in redis.scan_iter(match=f"auth:{{{user_id}}}:*")]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def published(signing_key: SigningKey) -> PublishedKeys:
    return PublishedKeys([signing_key])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def verifier(published: PublishedKeys, clock: ManualClock, redis: Redis) -> TokenVerifier:
    jwks = JwksSource(published.fetch, refetch_interval=REFETCH_INTERVAL, clock=clock)
    return TokenVerifier(jwks, redis, issuer=ISSUER, audience=AUDIENCE)


def new_session() -> str:
    return f"session-{uuid.uuid4().hex}"


async def test_a_token_signed_by_a_published_key_verifies_to_the_principal_it_names(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    user_id, session_id = new_user(), new_session()
    claims = claims_for(user_id, session_id, role="admin", name="Ada", email_verified=False)
    token = signing_key.sign(claims)

    principal = await verifier.verify(token)

    assert principal == Principal(
        user_id=user_id,
        session_id=session_id,
        role="admin",
        email=f"{user_id}@example.test",
        name="Ada",
        email_verified=False,
        issued_at=claims["iat_precise"],
        expires_at=float(claims["exp"]),
        token=token,
    )
    assert principal.has_role("user")
    assert not principal.has_role("super_admin")


async def test_a_token_with_alg_none_is_refused(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    token = unsigned_token(claims_for(new_user(), new_session()), kid=signing_key.kid)

    with pytest.raises(InvalidToken, match="algorithm not accepted"):
        await verifier.verify(token)


async def test_an_hs256_token_keyed_with_the_public_pem_is_refused(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    token = hs256_token(claims_for(new_user(), new_session()), signing_key.kid, signing_key.public_pem())

    with pytest.raises(InvalidToken, match="algorithm not accepted"):
        await verifier.verify(token)


async def test_a_token_whose_payload_was_altered_after_signing_is_refused(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    claims = claims_for(new_user(), new_session())
    token = signing_key.sign(claims)

    with pytest.raises(InvalidToken, match="signature or claims are invalid"):
        await verifier.verify(with_payload(token, {**claims, "role": "super_admin"}))


async def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    forged = SigningKey.generate().sign(claims_for(new_user(), new_session()), kid=signing_key.kid)

    with pytest.raises(InvalidToken, match="signature or claims are invalid"):
        await verifier.verify(forged)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        pytest.param({"aud": "another-audience"}, "signature or claims are invalid", id="wrong audience"),
        pytest.param({"iss": "https://evil.test"}, "signature or claims are invalid", id="wrong issuer"),
        pytest.param({"sid": None}, "signature or claims are invalid", id="missing sid"),
        pytest.param({"role": None}, "no valid role", id="missing role"),
        pytest.param({"role": "root"}, "no valid role", id="unknown role"),
    ],
)
async def test_a_token_with_wrong_or_missing_claims_is_refused(
    verifier: TokenVerifier, signing_key: SigningKey, new_user, overrides: dict, reason: str
) -> None:
    token = signing_key.sign(claims_for(new_user(), new_session(), **overrides))

    with pytest.raises(InvalidToken, match=reason):
        await verifier.verify(token)


async def test_an_expired_token_is_refused(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    token = signing_key.sign(
        claims_for(new_user(), new_session(), issued_at=time.time() - 600, ttl_seconds=300)
    )

    with pytest.raises(InvalidToken, match="token has expired"):
        await verifier.verify(token)


async def test_a_malformed_token_is_refused(verifier: TokenVerifier) -> None:
    with pytest.raises(InvalidToken, match="malformed token"):
        await verifier.verify("not-a-jwt")


async def test_an_unknown_kid_refetches_the_keys_once_per_interval(
    verifier: TokenVerifier, published: PublishedKeys, signing_key: SigningKey, clock: ManualClock, new_user
) -> None:
    user_id = new_user()
    await verifier.verify(signing_key.sign(claims_for(user_id, new_session())))
    assert published.fetches == 1

    clock.advance(REFETCH_INTERVAL + 1)
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(SigningKey.generate().sign(claims_for(user_id, new_session())))
    assert published.fetches == 2

    clock.advance(REFETCH_INTERVAL / 2)
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(SigningKey.generate().sign(claims_for(user_id, new_session())))
    assert published.fetches == 2, "a second unknown kid within the interval must not refetch"

    clock.advance(REFETCH_INTERVAL)
    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(SigningKey.generate().sign(claims_for(user_id, new_session())))
    assert published.fetches == 3


async def test_known_kids_are_served_from_the_cache_without_refetching(
    verifier: TokenVerifier, published: PublishedKeys, signing_key: SigningKey, clock: ManualClock, new_user
) -> None:
    user_id = new_user()
    for _ in range(3):
        clock.advance(REFETCH_INTERVAL * 2)
        await verifier.verify(signing_key.sign(claims_for(user_id, new_session())))

    assert published.fetches == 1


async def test_a_rotated_key_is_picked_up_the_first_time_a_token_uses_it(
    verifier: TokenVerifier, published: PublishedKeys, signing_key: SigningKey, clock: ManualClock, new_user
) -> None:
    user_id = new_user()
    await verifier.verify(signing_key.sign(claims_for(user_id, new_session())))
    rotated = SigningKey.generate()
    published.keys.append(rotated)
    clock.advance(REFETCH_INTERVAL + 1)

    principal = await verifier.verify(rotated.sign(claims_for(user_id, new_session())))

    assert principal.user_id == user_id
    assert published.fetches == 2
    # The previous key is still published, so its tokens keep verifying.
    await verifier.verify(signing_key.sign(claims_for(user_id, new_session())))
    assert published.fetches == 2


async def test_keys_whose_algorithm_is_not_accepted_are_not_used(
    redis: Redis, signing_key: SigningKey, clock: ManualClock, new_user
) -> None:
    async def fetch() -> dict:
        return {"keys": [{**signing_key.public_jwk(), "alg": "ES384"}]}

    verifier = TokenVerifier(JwksSource(fetch, clock=clock), redis, issuer=ISSUER, audience=AUDIENCE)

    with pytest.raises(InvalidToken, match="unknown key"):
        await verifier.verify(signing_key.sign(claims_for(new_user(), new_session())))


async def test_keys_that_cannot_be_fetched_fail_closed_with_a_transient_error(
    redis: Redis, signing_key: SigningKey, new_user
) -> None:
    async def unreachable() -> dict:
        raise ConnectionRefusedError("identity is down")

    verifier = TokenVerifier(JwksSource(unreachable), redis, issuer=ISSUER, audience=AUDIENCE)

    with pytest.raises(TransientError, match="cannot fetch the signing keys"):
        await verifier.verify(signing_key.sign(claims_for(new_user(), new_session())))


async def test_a_revoked_session_is_refused_and_another_session_of_the_user_still_passes(
    verifier: TokenVerifier, signing_key: SigningKey, redis: Redis, new_user
) -> None:
    user_id, revoked_session, other_session = new_user(), new_session(), new_session()
    revoked_token = signing_key.sign(claims_for(user_id, revoked_session))
    other_token = signing_key.sign(claims_for(user_id, other_session))
    await verifier.verify(revoked_token)  # verified once: its signature is now cached

    await mark_session_revoked(redis, user_id, revoked_session, ttl_seconds=600)

    with pytest.raises(InvalidToken, match="signed out or revoked"):
        await verifier.verify(revoked_token)
    assert (await verifier.verify(other_token)).session_id == other_session
    revoked_key, _ = revocation_keys(user_id, revoked_session)
    assert 0 < await redis.ttl(revoked_key) <= 600


async def test_a_revoked_session_of_one_user_does_not_refuse_the_same_session_id_of_another(
    verifier: TokenVerifier, signing_key: SigningKey, redis: Redis, new_user
) -> None:
    session_id, revoked_user, other_user = new_session(), new_user(), new_user()

    await mark_session_revoked(redis, revoked_user, session_id, ttl_seconds=600)

    with pytest.raises(InvalidToken):
        await verifier.verify(signing_key.sign(claims_for(revoked_user, session_id)))
    assert (await verifier.verify(signing_key.sign(claims_for(other_user, session_id)))).user_id == other_user


async def test_tokens_issued_before_the_invalidation_moment_are_refused_and_later_ones_pass(
    verifier: TokenVerifier, signing_key: SigningKey, redis: Redis, new_user
) -> None:
    user_id, session_id = new_user(), new_session()
    moment = time.time()
    before = signing_key.sign(claims_for(user_id, session_id, issued_at=moment - 0.25))
    at_the_moment = signing_key.sign(claims_for(user_id, session_id, issued_at=moment))
    after = signing_key.sign(claims_for(user_id, session_id, issued_at=moment + 0.25))
    await verifier.verify(before)

    await mark_tokens_invalid_before(redis, user_id, moment, ttl_seconds=600)

    with pytest.raises(InvalidToken, match="issued before the account changed"):
        await verifier.verify(before)
    assert (await verifier.verify(at_the_moment)).issued_at == moment
    assert (await verifier.verify(after)).issued_at == moment + 0.25
    _, valid_after_key = revocation_keys(user_id, session_id)
    assert 0 < await redis.ttl(valid_after_key) <= 600


async def test_the_signature_cache_does_not_let_a_token_through_after_it_expires(
    verifier: TokenVerifier, signing_key: SigningKey, new_user
) -> None:
    now = time.time()
    expires_at = int(now) + 2  # between 1 and 2 seconds ahead
    token = signing_key.sign(claims_for(new_user(), new_session(), issued_at=now, exp=expires_at))
    await verifier.verify(token)  # passes, and its signature check is cached

    async def past_the_expiry() -> bool:
        return time.time() > expires_at

    await wait_until(past_the_expiry, timeout=5, what="the clock to pass the token's expiry", interval=0.05)

    with pytest.raises(InvalidToken, match="token has expired"):
        await verifier.verify(token)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_an_unreachable_redis_fails_closed_with_a_transient_error(
    published: PublishedKeys, signing_key: SigningKey
) -> None:
    # Configured like the services' client (create_redis), minus the ping that would fail at start.
    unreachable = Redis.from_url(f"redis://127.0.0.1:{closed_port()}", health_check_interval=30)
    verifier = TokenVerifier(JwksSource(published.fetch), unreachable, issuer=ISSUER, audience=AUDIENCE)
    try:
        with pytest.raises(TransientError, match="revocation"):
            await verifier.verify(signing_key.sign(claims_for(f"user-{uuid.uuid4().hex}", new_session())))
    finally:
        await unreachable.aclose()
