"""What middlewares leave on a request for later middlewares and handlers, under typed keys.

Kept apart from `auth` so the HTTP plumbing (access log) can read the principal without importing the
token verification it sits below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from funmagic_kit.errors import PlatformError

__all__ = [
    "AUTH_ERROR_KEY",
    "INTERNAL_CALLER_KEY",
    "ISSUED_AT_PRECISE_CLAIM",
    "PRINCIPAL_KEY",
    "ROLE_RANK",
    "InvalidToken",
    "Principal",
    "Role",
]

Role = Literal["user", "admin", "super_admin"]
ROLE_RANK = {"user": 0, "admin": 1, "super_admin": 2}
# An access token's exact issue time (seconds, fractional), beside the whole-second `iat` that JWT
# libraries verify; revocation marks compare with it.
ISSUED_AT_PRECISE_CLAIM = "iat_precise"


class InvalidToken(PlatformError):
    """The token is not one we issued, or no longer valid; `reason` is safe to show to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """The signed-in user a request acts for, as stated by a verified access token."""

    user_id: str
    session_id: str
    role: Role
    email: str
    name: str
    email_verified: bool
    issued_at: float
    expires_at: float
    token: str

    def has_role(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    @classmethod
    def from_claims(cls, claims: dict[str, Any], token: str) -> Principal:
        role = claims.get("role")
        if role not in ROLE_RANK:
            raise InvalidToken("token has no valid role")
        return cls(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            role=role,
            email=str(claims.get("email", "")),
            name=str(claims.get("name", "")),
            email_verified=bool(claims.get("email_verified", False)),
            issued_at=_issued_at(claims),
            expires_at=float(claims["exp"]),
            token=token,
        )


def _issued_at(claims: dict[str, Any]) -> float:
    """When the token was issued, as exactly as it says (revocation marks are finer than a second)."""
    precise = claims.get(ISSUED_AT_PRECISE_CLAIM)
    if isinstance(precise, int | float) and not isinstance(precise, bool):
        return float(precise)
    return float(claims["iat"])


PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
# True when the caller presented the internal service credential.
INTERNAL_CALLER_KEY: web.RequestKey[bool] = web.RequestKey("internal_caller", bool)
# Why a presented token was refused, for the 401 of a route that needs a user.
AUTH_ERROR_KEY: web.RequestKey[str] = web.RequestKey("auth_error", str)
