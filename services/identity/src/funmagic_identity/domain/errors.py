"""The identity service's business refusals; entrypoints map each to one HTTP status."""

from __future__ import annotations

__all__ = [
    "AccountDisabled",
    "EmailAlreadyRegistered",
    "IdentityError",
    "InvalidCredentials",
    "InvalidVerificationToken",
    "LastSuperAdmin",
    "NotAllowed",
    "OAuthFailed",
    "SessionExpired",
    "TooManyAttempts",
    "UserNotFound",
    "WeakPassword",
]


class IdentityError(Exception):
    """Root of identity's refusals. `code` is stable for clients; the message is safe to show."""

    code = "identity_error"


class EmailAlreadyRegistered(IdentityError):
    code = "email_taken"


class WeakPassword(IdentityError):
    code = "weak_password"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class InvalidCredentials(IdentityError):
    code = "invalid_credentials"


class TooManyAttempts(IdentityError):
    """Too many wrong passwords for one account: it is protected for a while, whatever the caller's IP."""

    code = "too_many_attempts"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed sign-ins for this account; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class AccountDisabled(IdentityError):
    code = "account_disabled"


class InvalidVerificationToken(IdentityError):
    code = "invalid_token"


class SessionExpired(IdentityError):
    """The refresh token is unknown, expired, revoked, or was reused (which revokes its session)."""

    code = "session_expired"


class UserNotFound(IdentityError):
    code = "user_not_found"


class NotAllowed(IdentityError):
    code = "not_allowed"


class LastSuperAdmin(NotAllowed):
    code = "last_super_admin"


class OAuthFailed(IdentityError):
    code = "oauth_failed"
