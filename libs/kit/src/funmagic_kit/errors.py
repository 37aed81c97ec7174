"""The one error hierarchy of the platform.

Two families:
- **Refusals** (`Refused` and its kinds): a business "no" that the caller can act on — not found, a
  conflict, a limit reached, a rule broken. Domains raise their own subclasses (`TaskRefused(Refused)`)
  with a stable `code` and a message safe to show; they never name an HTTP status. The HTTP edge
  (`funmagic_kit.http.problem_middleware`) maps each kind to a status, in one place.
- **Runtime failures**: `TransientError` (retry later: a dependency is down — 503 at the edge, a retry
  in a consumer), `ConcurrencyConflict`, `PermanentError` (retrying cannot help — dead-lettered at once),
  `ConfigError` (the process cannot start).

Pure: no I/O imports, so every layer (domain included) may use it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "ConcurrencyConflict",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "IdempotencyKeyReused",
    "LimitReached",
    "Malformed",
    "NotFound",
    "PermanentError",
    "PlatformError",
    "Refused",
    "TooLarge",
    "TransientError",
    "Unauthenticated",
    "UpstreamRefused",
]


class PlatformError(Exception):
    """Root of every error raised on purpose by FunMagic code."""


class ConfigError(PlatformError, ValueError):
    """The process cannot start: a setting is missing or invalid."""


class TransientError(PlatformError):
    """Worth retrying: a dependency was unavailable or a timeout hit."""


class ConcurrencyConflict(TransientError):
    """Another writer changed the same aggregate first; reload and retry."""


class PermanentError(PlatformError):
    """Retrying cannot help: the message or request itself is wrong."""


class Refused(PlatformError):
    """A request the domain refuses: invalid for a business rule (the plain kind).

    `code` is stable for clients: a subclass declares its default in its header
    (`class EmailTaken(Conflict, code="email_taken")`) and a raise may override it; `field` names the input
    at fault; `details` are extra members of the answer (e.g. the list of password problems).
    """

    code: str = "refused"

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.field = field
        self.details = dict(details or {})


class Malformed(Refused):
    """The request cannot be understood at all (a token that is not one, a forged signature)."""

    code = "malformed"


class TooLarge(Refused):
    """The thing sent is larger than allowed."""

    code = "too_large"


class UpstreamRefused(Refused):
    """A third party we called for this request refused it (a payment provider, say)."""

    code = "upstream_refused"


class NotFound(Refused):
    """No such thing for this caller (another user's thing looks exactly like a missing one)."""

    code = "not_found"


class Conflict(Refused):
    """The request contradicts the current state (a duplicate, a key reused for another request)."""

    code = "conflict"


class IdempotencyKeyReused(Conflict):
    """The caller sent this Idempotency-Key before, with a different request (another body or change)."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used for a different request", field="Idempotency-Key")


class Forbidden(Refused):
    """The caller is known but may not do this."""

    code = "forbidden"


class Unauthenticated(Refused):
    """The caller's credentials were refused (wrong password, expired session)."""

    code = "unauthenticated"


class LimitReached(Refused):
    """Too much at once or too often; `retry_after_seconds` says when trying again makes sense."""

    code = "limit_reached"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: Mapping[str, object] | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message, code=code, field=field, details=details)
        self.retry_after_seconds = retry_after_seconds
