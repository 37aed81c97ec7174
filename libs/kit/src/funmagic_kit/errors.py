"""The one error hierarchy of the platform runtime.

Services derive their own roots from `PlatformError` (`CreditsError(PlatformError)`); adapters translate
driver errors into `TransientError`/`ConcurrencyConflict` with `raise ... from e`; entrypoints map them
to HTTP statuses or to ack/retry/dead-letter decisions, and only there.
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyConflict",
    "ConfigError",
    "PermanentError",
    "PlatformError",
    "TransientError",
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
