"""Shared translation of plain-HTTP provider answers (fal, Tripo) into the step policy's errors, and of a
health check's answer into a `HealthReport`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp

from funmagic_providers.domain.errors import (
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from funmagic_providers.domain.steps import HealthReport

__all__ = ["error_for_status", "health_of_status", "retry_after_seconds", "transport_error", "unreachable"]


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms` (OpenAI style) or `Retry-After` in seconds; an HTTP date is ignored (backoff)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(float(value) * scale, 0.0)
            except ValueError:
                continue
    return None


def error_for_status(provider: str, status: int, headers: Mapping[str, str], detail: str) -> ProviderError:
    detail = detail.strip()[:300]
    if status == 429:
        return ProviderRateLimited(
            f"{provider} is rate limiting us (429): {detail}", retry_after=retry_after_seconds(headers)
        )
    if status in (401, 403):
        return ProviderRejected(
            f"{provider} refused the credentials ({status}): {detail}", code="provider_auth_failed"
        )
    if status in (408, 409) or status >= 500:
        return ProviderUnavailable(f"{provider} failed ({status}): {detail}")
    return ProviderRejected(f"{provider} refused the request ({status}): {detail}")


def transport_error(provider: str, error: BaseException) -> ProviderUnavailable:
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return ProviderUnavailable(f"{provider} did not answer in time")
    if isinstance(error, aiohttp.ClientError):
        return ProviderUnavailable(f"{provider} could not be reached: {type(error).__name__}")
    raise error


def health_of_status(status: int) -> HealthReport:
    """A health check's HTTP answer: a refused key or a failing server is unhealthy; anything else means
    the provider answered and took the key. Only the status is kept, never the body (it may echo the key)."""
    if status in (401, 403):
        return HealthReport(False, f"the API key was refused (HTTP {status})")
    if status >= 500:
        return HealthReport(False, f"the provider failed (HTTP {status})")
    return HealthReport(True)


def unreachable(error: BaseException) -> HealthReport:
    """A health check that got no answer at all."""
    if isinstance(error, TimeoutError):
        return HealthReport(False, "no answer within the check's time limit")
    return HealthReport(False, f"could not be reached ({type(error).__name__})")
