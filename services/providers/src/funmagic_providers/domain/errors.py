"""What can go wrong with a provider call, in terms the step policy decides on.

Adapters translate each API's failures (SDK exceptions, HTTP statuses, error bodies) into these; the
policy in `step_policy` then retries, delays or fails the step. Messages are written for the user who
reads `StepFailed.error_message`: they never carry keys, URLs with signatures or raw payloads.
"""

from __future__ import annotations

__all__ = [
    "BadProviderResponse",
    "InvalidStepInput",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderRejected",
    "ProviderUnavailable",
    "ProvidersError",
    "UnsupportedStep",
]


class ProvidersError(Exception):
    """Root of the providers service's own errors."""


class ProviderError(ProvidersError):
    """A provider call did not produce a result."""

    code: str = "provider_error"
    transient: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ProviderRateLimited(ProviderError):
    """The provider answered 429; `retry_after` is its hint in seconds, when it gave one."""

    code = "provider_rate_limited"
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """A timeout, a connection failure or a 5xx: the same call may succeed later."""

    code = "provider_unavailable"
    transient = True


class ProviderRejected(ProviderError):
    """The provider refused the request for good (bad input, content policy, auth, no credit)."""

    code = "provider_rejected"


class BadProviderResponse(ProviderError):
    """The provider answered success with something we cannot use."""

    code = "provider_bad_response"


class InvalidStepInput(ProviderError):
    """The step's input cannot be processed (an asset that is not an image, a missing prompt…)."""

    code = "invalid_input"


class UnsupportedStep(ProviderError):
    """The provider has no implementation of this step type."""

    code = "unsupported_step"
