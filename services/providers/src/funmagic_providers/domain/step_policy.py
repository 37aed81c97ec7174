"""What happens to a step job after a failed or refused call: pure decisions, no I/O.

- A provider 429 retries with exponential backoff (1 s, 2 s, 4 s … capped at 60 s, the provider's
  Retry-After when it gave one), up to `maxRetries`, and only when `retryOn429` is on.
- Other transient failures (timeouts, connection errors, 5xx) retry with the same policy.
- Permanent failures fail at once.
- Nothing retries past the step's deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from funmagic_providers.domain.errors import ProviderError, ProviderRateLimited
from funmagic_providers.domain.rate_limit import RateLimitConfig, backoff_seconds

__all__ = ["FailStep", "RetryStep", "decide_after_error"]


@dataclass(frozen=True)
class RetryStep:
    retry_at: datetime
    reason: Literal["provider_429", "provider_error"]  # as StepDelayed says it
    retry_number: int


@dataclass(frozen=True)
class FailStep:
    error_code: str
    error_message: str
    retryable: bool


def decide_after_error(
    error: ProviderError,
    *,
    retries_used: int,
    config: RateLimitConfig,
    now: datetime,
    deadline_at: datetime,
) -> RetryStep | FailStep:
    if not error.transient:
        return FailStep(error.code, str(error), retryable=False)
    rate_limited = isinstance(error, ProviderRateLimited)
    if rate_limited and not config.retry_on_429:
        return FailStep(error.code, f"{error} (retrying on 429 is turned off)", retryable=True)
    if retries_used >= config.max_retries:
        return FailStep(error.code, f"{error} (gave up after {retries_used} retries)", retryable=True)
    retry_number = retries_used + 1
    delay = backoff_seconds(
        retry_number,
        base_backoff_ms=config.base_backoff_ms,
        retry_after=error.retry_after if rate_limited else None,
    )
    retry_at = now + timedelta(seconds=delay)
    if retry_at >= deadline_at:
        return FailStep(error.code, f"{error} (no time left before the step's deadline)", retryable=True)
    return RetryStep(retry_at, "provider_429" if rate_limited else "provider_error", retry_number)
