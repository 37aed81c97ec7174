"""SigningKeyRing and JwtAccessTokenIssuer on a fresh database: one key for all replicas, rotation, JWKS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet
from psycopg_pool import AsyncConnectionPool

from funmagic_identity.adapters.signing_keys import JwtAccessTokenIssuer, SigningKeyRing
from funmagic_identity.domain.users import User
from funmagic_kit.crypto import SecretBox, generate_secret_key
from funmagic_kit.db import create_pool

ISSUER, AUDIENCE = "https://identity.funmagic.test", "funmagic-api"
GRACE = timedelta(hours=1)


def a_user() -> User:
    now = datetime.now(UTC)
    return User(
        id="0b6f1f7e-6a3c-4a51-9d8e-0d7a2f1f0c11",
        email="alice@example.com",
        name="Alice",
        role="admin",
        email_verified=True,
        created_at=now,
        updated_at=now,
    )


def issue(ring: SigningKeyRing, now: datetime | None = None) -> str:
    issuer = JwtAccessTokenIssuer(ring, issuer=ISSUER, audience=AUDIENCE, ttl_seconds=300)
    return issuer.issue(a_user(), "session-1", now or datetime.now(UTC))


def verify(token: str, published: list[dict[str, Any]]) -> dict[str, Any]:
    """What a gateway does: pick the published JWK named by the token's kid, check signature and claims."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next((k for k in published if k["kid"] == kid), None)
    if jwk is None:
        raise LookupError(f"kid {kid} is not published")
    return jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER)


async def key_rows(pool: AsyncConnectionPool) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT kid, retired_at FROM signing_keys ORDER BY created_at")
        return await cursor.fetchall()


@pytest.fixture
async def replica_pools(database_url: str) -> AsyncIterator[list[AsyncConnectionPool]]:
    """Five pools on one database, as five replicas of the service would have."""
    pools = [await create_pool(database_url, min_size=1, max_size=2, name=f"replica-{i}") for i in range(5)]
    yield pools
    for pool in pools:
        await pool.close()


async def test_replicas_starting_together_create_exactly_one_key(
    replica_pools: list[AsyncConnectionPool], secret_box: SecretBox
) -> None:
    rings = [SigningKeyRing(pool, secret_box) for pool in replica_pools]
    now = datetime.now(UTC)

    await asyncio.gather(*(ring.ensure_key(now) for ring in rings))

    rows = await key_rows(replica_pools[0])
    assert len(rows) == 1
    assert rows[0]["retired_at"] is None
    assert {ring.current.kid for ring in rings} == {rows[0]["kid"]}


async def test_ensure_key_keeps_an_existing_usable_key(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    now = datetime.now(UTC)
    first = SigningKeyRing(pool, secret_box)
    await first.ensure_key(now)
    second = SigningKeyRing(pool, secret_box)
    await second.ensure_key(now + timedelta(minutes=1))
    assert second.current.kid == first.current.kid
    assert len(await key_rows(pool)) == 1


async def test_a_ring_that_has_not_loaded_refuses_to_sign(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    with pytest.raises(RuntimeError, match="not loaded"):
        issue(SigningKeyRing(pool, secret_box))


async def test_an_issued_token_verifies_against_the_published_jwk(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    ring = SigningKeyRing(pool, secret_box)
    await ring.ensure_key(datetime.now(UTC))

    token = issue(ring)

    (jwk,) = ring.published_keys()
    assert (jwk["kid"], jwk["alg"], jwk["use"], jwk["kty"], jwk["crv"]) == (
        ring.current.kid,
        "ES256",
        "sig",
        "EC",
        "P-256",
    )
    assert "d" not in jwk, "the private part must never be published"
    claims = verify(token, ring.published_keys())
    assert claims["sub"] == a_user().id
    assert claims["sid"] == "session-1"
    assert (claims["role"], claims["email"], claims["email_verified"]) == ("admin", "alice@example.com", True)
    assert claims["exp"] - int(claims["iat"]) == 300


async def test_a_fresh_token_passes_a_second_independent_jwt_library_at_once(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    """Other teams verify our tokens with other libraries; strict ones compare `iat` with whole seconds and
    refuse a fractional one issued within the second as "issued in the future"."""
    ring = SigningKeyRing(pool, secret_box)
    await ring.ensure_key(datetime.now(UTC))
    now = datetime.now(UTC).replace(microsecond=999_000)  # the end of a second: the worst case

    token = issue(ring, now)

    keys = KeySet.import_key_set({"keys": ring.published_keys()})
    verified = joserfc_jwt.decode(token, keys, algorithms=["ES256"])
    claims = verified.claims
    assert all(type(claims[name]) is int for name in ("iat", "nbf", "exp")), claims
    # No leeway, the clock at the very moment of issue.
    joserfc_jwt.JWTClaimsRegistry(
        now=int(now.timestamp()),
        leeway=0,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True, "value": a_user().id},
        sid={"essential": True, "value": "session-1"},
        role={"essential": True, "value": "admin"},
        email={"essential": True, "value": "alice@example.com"},
        exp={"essential": True},
        iat={"essential": True},
        nbf={"essential": True},
    ).validate(claims)
    # Our own verifiers still know the issue time to the microsecond (revocation marks are that fine).
    assert claims["iat_precise"] == now.timestamp()


async def test_a_token_whose_claims_were_swapped_does_not_verify(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    ring = SigningKeyRing(pool, secret_box)
    await ring.ensure_key(datetime.now(UTC))
    token = issue(ring)
    header, payload, _ = token.split(".")
    other = issue(ring).split(".")[2]  # a valid signature, of other claims
    with pytest.raises(jwt.InvalidSignatureError):
        verify(f"{header}.{payload}.{other}", ring.published_keys())


async def test_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    now = datetime.now(UTC)
    ring = SigningKeyRing(pool, secret_box, retired_grace=GRACE)
    await ring.ensure_key(now)
    old_kid = ring.current.kid
    before_rotation = issue(ring)

    new_kid = await ring.rotate(now)

    assert new_kid != old_kid
    assert ring.current.kid == new_kid
    assert {k["kid"] for k in ring.published_keys()} == {old_kid, new_kid}
    after_rotation = issue(ring)
    assert jwt.get_unverified_header(after_rotation)["kid"] == new_kid
    verify(before_rotation, ring.published_keys())
    verify(after_rotation, ring.published_keys())
    rows = {row["kid"]: row["retired_at"] for row in await key_rows(pool)}
    assert rows == {old_kid: now, new_kid: None}


async def test_a_retired_key_is_unpublished_after_the_grace_period(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    now = datetime.now(UTC)
    ring = SigningKeyRing(pool, secret_box, retired_grace=GRACE)
    await ring.ensure_key(now)
    old_kid = ring.current.kid
    new_kid = await ring.rotate(now)

    await ring.load(now + GRACE - timedelta(seconds=1))
    assert {k["kid"] for k in ring.published_keys()} == {old_kid, new_kid}
    await ring.load(now + GRACE + timedelta(seconds=1))
    assert [k["kid"] for k in ring.published_keys()] == [new_kid]


async def test_another_replica_picks_up_a_rotation_when_it_reloads(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    now = datetime.now(UTC)
    rotating, other = SigningKeyRing(pool, secret_box), SigningKeyRing(pool, secret_box)
    await rotating.ensure_key(now)
    await other.ensure_key(now)

    new_kid = await rotating.rotate(now)
    assert other.current.kid != new_kid  # not before it reloads
    await other.load(now)

    assert other.current.kid == new_kid
    verify(issue(other), rotating.published_keys())


async def test_a_ring_with_another_secret_key_cannot_read_the_keys(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    now = datetime.now(UTC)
    await SigningKeyRing(pool, secret_box).ensure_key(now)

    stranger = SigningKeyRing(pool, SecretBox.from_base64(generate_secret_key()))
    await stranger.load(now)

    with pytest.raises(RuntimeError, match="not loaded"):
        _ = stranger.current


async def test_ensure_key_with_a_new_secret_key_retires_the_unreadable_key_and_creates_a_usable_one(
    pool: AsyncConnectionPool, secret_box: SecretBox
) -> None:
    now = datetime.now(UTC)
    original = SigningKeyRing(pool, secret_box)
    await original.ensure_key(now)
    unreadable_kid = original.current.kid
    old_token = issue(original)
    later = now + timedelta(minutes=1)

    replaced = SigningKeyRing(pool, SecretBox.from_base64(generate_secret_key()), retired_grace=GRACE)
    await replaced.ensure_key(later)

    assert replaced.current.kid != unreadable_kid
    rows = {row["kid"]: row["retired_at"] for row in await key_rows(pool)}
    assert rows == {unreadable_kid: later, replaced.current.kid: None}
    token = issue(replaced)
    assert jwt.get_unverified_header(token)["kid"] == replaced.current.kid
    verify(token, replaced.published_keys())
    verify(old_token, replaced.published_keys())  # still published during the grace period
