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
    "PasswordNotSet",
    "RefreshSuperseded",
    "SessionExpired",
    "TooManyAttempts",
    "UserNotFound",
    "WeakPassword",
    "WrongPassword",
]


class InvalidInput(Refused, ValueError, code="invalid_input"):
    """A value that is not what it claims to be: an email that is not an address, an id that is not one.

    Also a `ValueError`, as it always was: it is the answer to a bad value, whoever checks it.
    """


class EmailAlreadyRegistered(Conflict, code="email_taken"):
    """Signing up with an email another account already has (also when two sign-ups race)."""


class WeakPassword(Refused, code="weak_password"):
    """A new password breaks the password policy; `problems` lists every rule it breaks."""

    def __init__(self, problems: list[str]) -> None:
        # Every broken rule at once, as `problems` in the answer, so a form can list them all.
        super().__init__("; ".join(problems), details={"problems": list(problems)})
        self.problems = problems


class InvalidCredentials(Unauthenticated, code="invalid_credentials"):
    """A wrong email or password (never saying which), or a password missing where one is needed."""


class TooManyAttempts(LimitReached, code="too_many_attempts"):
    """Too many wrong passwords for one account: it is protected for a while, whatever the caller's IP."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many failed sign-ins for this account; retry in {retry_after_seconds} s",
            retry_after_seconds=retry_after_seconds,
        )
        self.retry_after_seconds: int = retry_after_seconds


class AccountDisabled(Forbidden, code="account_disabled"):
    """A disabled account tries to sign in, by password or through a provider."""


class InvalidVerificationToken(Malformed, code="invalid_token"):
    """An email-verification or password-reset link that is unknown, used or expired."""


class SessionExpired(Unauthenticated, code="session_expired"):
    """The refresh token is unknown, expired, revoked, or was reused (which revokes its session)."""


class RefreshSuperseded(Conflict, code="refresh_superseded"):
    """Another refresh of the session (another tab's, with the same cookie) rotated this refresh token an
    instant before; the session lives on with the token that refresh issued."""

    def __init__(self) -> None:
        super().__init__("this refresh token was just rotated by another refresh; use the newest one")


class UserNotFound(NotFound, code="user_not_found"):
    """No such user for this caller (nor such a session of theirs, nor such a sign-in provider)."""


class NotAllowed(Forbidden, code="not_allowed"):
    """The caller's role or the target's state does not allow this change to an account."""


class LastSuperAdmin(Conflict, code="last_super_admin"):
    """Demoting the only super_admin would leave nobody able to grant roles."""


class OAuthFailed(Malformed, code="oauth_failed"):
    """A provider sign-in that cannot complete: an unknown attempt, a refusal, an unusable profile."""


class WrongPassword(Forbidden, code="wrong_password"):
    """A signed-in user's confirmation with their current password failed (changing the password).

    403, not 401: the session is fine, so a client must not take it for an expired one and sign out.
    """


class PasswordNotSet(Conflict, code="password_not_set"):
    """Changing a password the account does not have (OAuth only): the reset link sets the first one."""
