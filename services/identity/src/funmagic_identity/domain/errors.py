"""The identity service's business refusals, each one of the kit's refusal kinds.

The kind decides the HTTP status at the edge (`funmagic_kit.http.problem_middleware`, once for every
service); the `code` is what clients branch on, so it never changes. Messages are safe to show.
"""

from __future__ import annotations

from funmagic_kit.errors import (
    Conflict,
    Forbidden,
    LimitReached,
    Malformed,
    NotFound,
    Refused,
    Unauthenticated,
)

__all__ = [
    "AccountDisabled",
    "EmailAlreadyRegistered",
    "InvalidCredentials",
    "InvalidInput",
    "InvalidVerificationToken",
    "LastSuperAdmin",
    "NotAllowed",
    "OAuthFailed",
    "SessionExpired",
    "TooManyAttempts",
    "UserNotFound",
    "WeakPassword",
]


class InvalidInput(Refused, ValueError):
    """A value that is not what it claims to be: an email that is not an address, an id that is not one.

    Also a `ValueError`, as it always was: it is the answer to a bad value, whoever checks it.
    """

    code = "invalid_input"


class EmailAlreadyRegistered(Conflict):
    code = "email_taken"


class WeakPassword(Refused):
    code = "weak_password"

    def __init__(self, problems: list[str]) -> None:
        # Every broken rule at once, as `problems` in the answer, so a form can list them all.
        super().__init__("; ".join(problems), details={"problems": list(problems)})
        self.problems = problems


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"


class TooManyAttempts(LimitReached):
    """Too many wrong passwords for one account: it is protected for a while, whatever the caller's IP."""

    code = "too_many_attempts"

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many failed sign-ins for this account; retry in {retry_after_seconds} s",
            retry_after_seconds=retry_after_seconds,
        )
        self.retry_after_seconds: int = retry_after_seconds


class AccountDisabled(Forbidden):
    code = "account_disabled"


class InvalidVerificationToken(Malformed):
    code = "invalid_token"


class SessionExpired(Unauthenticated):
    """The refresh token is unknown, expired, revoked, or was reused (which revokes its session)."""

    code = "session_expired"


class UserNotFound(NotFound):
    code = "user_not_found"


class NotAllowed(Forbidden):
    code = "not_allowed"


class LastSuperAdmin(Conflict):
    """Demoting the only super_admin would leave nobody able to grant roles."""

    code = "last_super_admin"


class OAuthFailed(Malformed):
    code = "oauth_failed"
