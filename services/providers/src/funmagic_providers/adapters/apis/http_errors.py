"""Shared translation of plain-HTTP provider answers (fal, Tripo, Replicate…) into the step policy's errors,
and of a health check's answer into a `HealthReport`; `JsonApi`, the calls those adapters make with it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from funmagic_providers.domain.errors import (
    BadProviderResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from funmagic_providers.domain.steps import HealthReport

__all__ = [
    "JsonApi",
    "error_for_status",
    "health_of_status",
    "retry_after_seconds",
    "transport_error",
    "unreachable",
]


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


class JsonApi:
    """A third party's JSON-over-HTTP API as an adapter calls it, through the adapters' session: an answer
    outside `accept` becomes the step policy's error, a transport failure `ProviderUnavailable`, an answer
    that is not a JSON object `BadProviderResponse`."""

    def __init__(self, session: aiohttp.ClientSession, name: str) -> None:
        self._session = session
        self._name = name

    async def json(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        try:
            async with self._session.request(
                method, url, headers=dict(headers), json=json, params=params
            ) as response:
                if response.status not in accept:
                    raise error_for_status(
                        self._name, response.status, response.headers, await response.text()
                    )
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    raise BadProviderResponse(
                        f"{self._name} answered with something that is not JSON"
                    ) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(self._name, error) from None
        if not isinstance(payload, dict):
            raise BadProviderResponse(f"{self._name} answered with an unexpected JSON shape")
        return payload

    async def download(self, url: str) -> bytes:
        """A result file the API points at (its own host or a CDN: no credentials sent)."""
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise error_for_status(
                        self._name, response.status, response.headers, "downloading the result"
                    )
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise transport_error(self._name, error) from None

    async def cancel(self, method: str, url: str, headers: Mapping[str, str]) -> None:
        """Best effort: a job that cannot be cancelled is simply never fetched."""
        try:
            async with self._session.request(
                method, url, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=5)
            ):
                pass
        except (aiohttp.ClientError, TimeoutError):
            pass

    async def health(self, url: str, headers: Mapping[str, str]) -> HealthReport:
        """A cheap authenticated GET: its status says whether the key works (`health_of_status`)."""
        try:
            async with self._session.get(
                url, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                return health_of_status(response.status)
        except (aiohttp.ClientError, TimeoutError) as error:
            return unreachable(error)
