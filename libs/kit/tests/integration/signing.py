"""Test helpers for access tokens: EC P-256 signing keys, an in-process JWKS, claims, and a manual clock.

Tokens are signed the way Identity signs them (ES256, `kid` header, sub-second `iat`), so the verifier is
exercised against the real format and not a simplified one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

ISSUER = "https://identity.funmagic.test"
AUDIENCE = "funmagic-tests"


@dataclass
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(kid or f"kid-{uuid.uuid4().hex[:8]}", ec.generate_private_key(ec.SECP256R1()))

    def public_jwk(self) -> dict[str, Any]:
        jwk = json.loads(ECAlgorithm.to_jwk(self.private_key.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": kid or self.kid})


def claims_for(
    user_id: str,
    session_id: str,
    *,
    issued_at: float | None = None,
    ttl_seconds: int = 300,
    **overrides: Any,
) -> dict[str, Any]:
    """Claims as Identity writes them; an override of None drops that claim."""
    issued_at = time.time() if issued_at is None else issued_at
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user_id,
        "sid": session_id,
        "role": "user",
        "email": f"{user_id}@example.test",
        "name": "Test User",
        "email_verified": True,
        "iat": int(issued_at),
        "iat_precise": issued_at,
        "nbf": int(issued_at) - 5,
        "exp": int(issued_at) + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    """`alg: none`: a token with no signature at all."""
    header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def hs256_token(claims: dict[str, Any], kid: str, secret: bytes) -> str:
    """The classic key-confusion attack: HMAC "signed" with the published public key as the secret."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """The same header and signature over a different payload."""
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


@dataclass
class PublishedKeys:
    """The JWKS Identity publishes, served in-process; counts how often it was fetched."""

    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0

    async def fetch(self) -> dict[str, Any]:
        self.fetches += 1
        return {"keys": [key.public_jwk() for key in self.keys]}


@dataclass
class ManualClock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
