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
    """A provider call did not produce a result. A subclass declares its `code` and whether the same call
    may succeed later (`transient`) in its header."""

    code: str = "provider_error"
    transient: bool = False

    def __init_subclass__(cls, *, code: str | None = None, transient: bool | None = None) -> None:
        super().__init_subclass__()
        if code is not None:
            cls.code = code
        if transient is not None:
            cls.transient = transient

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ProviderRateLimited(ProviderError, code="provider_rate_limited", transient=True):
    """The provider answered 429; `retry_after` is its hint in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError, code="provider_unavailable", transient=True):
    """A timeout, a connection failure or a 5xx: the same call may succeed later."""


class ProviderRejected(ProviderError, code="provider_rejected"):
    """The provider refused the request for good (bad input, content policy, auth, no credit)."""


class BadProviderResponse(ProviderError, code="provider_bad_response"):
    """The provider answered success with something we cannot use."""


class InvalidStepInput(ProviderError, code="invalid_input"):
    """The step's input cannot be processed (an asset that is not an image, a missing prompt…)."""


class OutputRefused(ProviderError, code="output_refused"):
    """Storage refused the step's output for good (too large, a type it does not keep): calling the
    provider again would make the same output, and pay for it again."""


class UnsupportedStep(ProviderError, code="unsupported_step"):
    """The provider has no implementation of this step type."""
