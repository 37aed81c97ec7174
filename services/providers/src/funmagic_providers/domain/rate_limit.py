"""Per-provider rate limits: the `config.rateLimit` of a provider row, and the backoff after a 429.

Pure rules, no I/O: the Redis side lives in `adapters/rate_limiter.py`. The original read
`baseBackoffMs` in the admin UI and then ignored it (ORIGINAL.md, provider layer); here it is the base
of the exponential backoff.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from funmagic_providers.domain.documents import JsonObject

__all__ = ["InvalidRateLimitConfig", "RateLimitConfig", "backoff_seconds"]

# camelCase key in the provider's config JSON → field name. Same spelling as the seed and the admin UI.
_JSON_FIELDS = {
    "maxConcurrency": "max_concurrency",
    "maxPerMinute": "max_per_minute",
    "maxPerDay": "max_per_day",
    "retryOn429": "retry_on_429",
    "maxRetries": "max_retries",
    "baseBackoffMs": "base_backoff_ms",
}
_LIMITS = ("max_concurrency", "max_per_minute", "max_per_day")


class InvalidRateLimitConfig(ValueError):
    """A provider's `config.rateLimit` cannot be used as written."""


@dataclass(frozen=True)
class RateLimitConfig:
    """The limits of one provider in one scope. A limit of None means "not limited"."""

    max_concurrency: int | None = None
    max_per_minute: int | None = None
    max_per_day: int | None = None
    retry_on_429: bool = True
    max_retries: int = 3
    base_backoff_ms: int = 1000

    def __post_init__(self) -> None:
        # Limits must be ≥ 1: 0 would silently mean "unlimited" (the original's truthiness check) to some
        # readers and "blocked forever" to others; omitting the field (or null) is the way to say no limit.
        for name in _LIMITS:
            value = getattr(self, name)
            if value is not None:
                _require_int(name, value, minimum=1)
        if not isinstance(self.retry_on_429, bool):
            raise InvalidRateLimitConfig(
                f"rateLimit.retryOn429 must be true or false, got {self.retry_on_429!r}"
            )
        _require_int("max_retries", self.max_retries, minimum=0)
        _require_int("base_backoff_ms", self.base_backoff_ms, minimum=1)

    @classmethod
    def from_provider_config(cls, config: JsonObject | None) -> RateLimitConfig:
        """Read `config["rateLimit"]`; no config, no `rateLimit` or null means no limits.

        Every field is optional; a null field takes its default. Keys this version does not know are
        ignored, so a newer admin UI storing more fields does not stop the workers.
        """
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise InvalidRateLimitConfig(
                f"provider config must be a JSON object, got {type(config).__name__}"
            )
        section = config.get("rateLimit")
        if section is None:
            return cls()
        if not isinstance(section, Mapping):
            raise InvalidRateLimitConfig(f"rateLimit must be a JSON object, got {type(section).__name__}")
        values = {field: section[key] for key, field in _JSON_FIELDS.items() if section.get(key) is not None}
        return cls(**values)

    @property
    def limits_admission(self) -> bool:
        """Whether any of the three admission limits is set (otherwise every call is admitted)."""
        return any(getattr(self, name) is not None for name in _LIMITS)

    def to_json(self) -> dict[str, int | bool]:
        """The `rateLimit` object as stored (camelCase); unset limits are left out."""
        return {
            key: getattr(self, field)
            for key, field in _JSON_FIELDS.items()
            if getattr(self, field) is not None
        }


def _require_int(name: str, value: object, *, minimum: int) -> None:
    json_name = next(key for key, field in _JSON_FIELDS.items() if field == name)
    # bool is an int in Python, but `true` is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRateLimitConfig(f"rateLimit.{json_name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidRateLimitConfig(f"rateLimit.{json_name} must be at least {minimum}, got {value}")


def backoff_seconds(
    retry_number: int,
    *,
    base_backoff_ms: int = 1000,
    retry_after: float | None = None,
    cap_seconds: float = 60.0,
) -> float:
    """How long to wait before retry `retry_number` (1, 2, 3 …) after a provider's 429.

    base × 2^(n−1): with the default base 1 s, 2 s, 4 s … capped at `cap_seconds`. A Retry-After the
    provider sent (in seconds) wins, since the provider knows when it will take calls again; it is still
    capped (a provider asking for an hour must not park a job that long) and never negative.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number counts from 1, got {retry_number}")
    if retry_after is not None and not math.isnan(retry_after):
        return min(max(retry_after, 0.0), cap_seconds)
    # Past 2^63 the product only overflows a float; the cap has long been reached.
    if retry_number > 64:
        return cap_seconds
    return min(max(base_backoff_ms, 0) * 2 ** (retry_number - 1) / 1000, cap_seconds)
