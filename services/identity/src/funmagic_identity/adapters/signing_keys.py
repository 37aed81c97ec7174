"""Access-token signing keys: ES256, stored encrypted in Postgres, rotated by command, published as JWKS.

Every replica signs with the newest key and reloads the key set every `reload_seconds`, so a rotation made
by one process reaches all within that time. Retired keys stay in the JWKS for `retired_grace` (longer
than any access token lives), so tokens signed just before a rotation still verify.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg_pool import AsyncConnectionPool

from funmagic_identity.domain.users import User
from funmagic_kit.crypto import DecryptionFailed, SecretBox
from funmagic_kit.request_keys import ISSUED_AT_PRECISE_CLAIM

__all__ = ["JwtAccessTokenIssuer", "SigningKeyRing"]

log = logging.getLogger(__name__)

_PURPOSE = "signing-key"
_LOCK_KEY = 0x66_6D_6B_65  # serialises key creation between replicas


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey
    public_jwk: dict[str, Any]
    created_at: datetime


def _new_key(now: datetime) -> tuple[SigningKey, bytes]:
    private_key = ec.generate_private_key(ec.SECP256R1())
    kid = f"{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    public_jwk.update({"kid": kid, "alg": "ES256", "use": "sig"})
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(kid, private_key, public_jwk, now), pem


class SigningKeyRing:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        secrets: SecretBox,
        *,
        retired_grace: timedelta = timedelta(hours=1),
        reload_seconds: float = 30.0,
    ) -> None:
        self._pool = pool
        self._secrets = secrets
        self._retired_grace = retired_grace
        self._reload_seconds = reload_seconds
        self._signing: SigningKey | None = None
        self._published: list[dict[str, Any]] = []
        self._loaded_at = 0.0

    @property
    def current(self) -> SigningKey:
        if self._signing is None:
            raise RuntimeError("signing keys are not loaded")
        return self._signing

    def published_keys(self) -> list[dict[str, Any]]:
        return list(self._published)

    def needs_reload(self) -> bool:
        return time.monotonic() - self._loaded_at > self._reload_seconds

    async def ensure_key(self, now: datetime) -> None:
        """At start: make sure a usable signing key exists (one replica creates it), then load."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            if not await self._usable_key_exists(conn):
                await self._insert_new_key(conn, now)
        await self.load(now)

    async def rotate(self, now: datetime) -> str:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute("UPDATE signing_keys SET retired_at = %s WHERE retired_at IS NULL", (now,))
            kid = await self._insert_new_key(conn, now)
        await self.load(now)
        return kid

    async def load(self, now: datetime) -> None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT kid, private_key, public_jwk, created_at, retired_at FROM signing_keys "
                "WHERE retired_at IS NULL OR retired_at > %s ORDER BY created_at DESC",
                (now - self._retired_grace,),
            )
            rows = await cursor.fetchall()
        signing = None
        for row in rows:
            if row["retired_at"] is None and signing is None:
                signing = self._decrypt(row)
        if signing is not None:
            self._signing = signing
        self._published = [row["public_jwk"] for row in rows]
        self._loaded_at = time.monotonic()

    async def _usable_key_exists(self, conn: Any) -> bool:
        cursor = await conn.execute(
            "SELECT kid, private_key, public_jwk, created_at FROM signing_keys WHERE retired_at IS NULL "
            "ORDER BY created_at DESC LIMIT 1"
        )
        row = await cursor.fetchone()
        return row is not None and self._decrypt(row) is not None

    async def _insert_new_key(self, conn: Any, now: datetime) -> str:
        # Keys this SECRET_KEY cannot read (the secret was replaced) are retired, not kept as "current".
        await conn.execute("UPDATE signing_keys SET retired_at = %s WHERE retired_at IS NULL", (now,))
        key, pem = _new_key(now)
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_key, public_jwk, created_at) VALUES (%s, %s, %s, %s)",
            (key.kid, self._secrets.encrypt(pem, purpose=_PURPOSE), json.dumps(key.public_jwk), now),
        )
        log.info("created a signing key", extra={"kid": key.kid})
        return key.kid

    def _decrypt(self, row: dict[str, Any]) -> SigningKey | None:
        try:
            pem = self._secrets.decrypt(bytes(row["private_key"]), purpose=_PURPOSE)
        except DecryptionFailed:
            log.warning("a signing key cannot be decrypted with this SECRET_KEY", extra={"kid": row["kid"]})
            return None
        private_key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        return SigningKey(row["kid"], private_key, row["public_jwk"], row["created_at"])


class JwtAccessTokenIssuer:
    def __init__(self, keys: SigningKeyRing, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, user: User, session_id: str, now: datetime) -> str:
        key = self._keys.current
        issued_at = now.timestamp()
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user.id,
            "sid": session_id,
            "role": user.role,
            "email": user.email,
            "name": user.name,
            "email_verified": user.email_verified,
            # Whole seconds (RFC 7519 NumericDate as other libraries verify it: a fractional `iat` reads as
            # "issued in the future" to strict ones), and the exact issue time beside it: a token issued
            # right after a revocation mark must not look older than it.
            "iat": int(issued_at),
            ISSUED_AT_PRECISE_CLAIM: issued_at,
            "nbf": int(issued_at) - 5,
            "exp": int(issued_at) + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})
