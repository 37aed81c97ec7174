"""A provider's health history: one record per check, whether an admin asked for it or the periodic round
ran it, so an admin can see when a provider went bad and why.

What a record says of a failure is the adapter's `HealthReport.error` (words our code chose, never a
provider's answer body), cut short and scrubbed of the provider's key in case an adapter ever let it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from funmagic_providers.domain.steps import HealthReport

__all__ = ["HEALTH_TRIGGERS", "MAX_ERROR_LENGTH", "HealthCheck", "HealthTrigger", "health_check"]

HealthTrigger = Literal["manual", "periodic"]
HEALTH_TRIGGERS: tuple[HealthTrigger, ...] = get_args(HealthTrigger)
MAX_ERROR_LENGTH = 300
_REDACTED = "••••"


@dataclass(frozen=True)
class HealthCheck:
    """One health check of one provider."""

    id: str
    provider_id: str
    checked_at: datetime
    healthy: bool
    latency_ms: int
    error: str | None
    trigger: HealthTrigger


def health_check(
    report: HealthReport,
    *,
    check_id: str,
    provider_id: str,
    checked_at: datetime,
    latency_ms: int,
    trigger: HealthTrigger,
    api_key: str | None,
) -> HealthCheck:
    """The record of a check that found `report`. A healthy provider has no error; an unhealthy one always
    has one, so the history never shows a bare "unhealthy"."""
    error = None
    if not report.healthy:
        error = (report.error or "the provider did not pass the check").strip()
        if api_key:
            error = error.replace(api_key, _REDACTED)
        error = error[:MAX_ERROR_LENGTH]
    return HealthCheck(
        id=check_id,
        provider_id=provider_id,
        checked_at=checked_at,
        healthy=report.healthy,
        latency_ms=max(0, latency_ms),
        error=error,
        trigger=trigger,
    )
