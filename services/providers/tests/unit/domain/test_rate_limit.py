"""`config.rateLimit` parsing and the backoff after a provider's 429 (pure rules, no Redis)."""

from __future__ import annotations

from typing import Any

import pytest

from funmagic_providers.domain.rate_limit import InvalidRateLimitConfig, RateLimitConfig, backoff_seconds

# --- RateLimitConfig.from_provider_config ---------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [None, {}, {"rateLimit": None}, {"rateLimit": {}}, {"model": "x", "apiBase": "https://example.com"}],
)
def test_no_rate_limit_means_no_limits_and_the_defaults(config: dict[str, Any] | None) -> None:
    parsed = RateLimitConfig.from_provider_config(config)

    assert parsed == RateLimitConfig()
    assert parsed.max_concurrency is None
    assert parsed.max_per_minute is None
    assert parsed.max_per_day is None
    assert parsed.retry_on_429 is True
    assert parsed.max_retries == 3
    assert parsed.base_backoff_ms == 1000
    assert not parsed.limits_admission


def test_reads_every_field_in_camel_case() -> None:
    config = {
        "rateLimit": {
            "maxConcurrency": 5,
            "maxPerMinute": 100,
            "maxPerDay": 10000,
            "retryOn429": False,
            "maxRetries": 0,
            "baseBackoffMs": 250,
        }
    }

    assert RateLimitConfig.from_provider_config(config) == RateLimitConfig(
        max_concurrency=5,
        max_per_minute=100,
        max_per_day=10000,
        retry_on_429=False,
        max_retries=0,
        base_backoff_ms=250,
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"maxConcurrency": 2}, RateLimitConfig(max_concurrency=2)),
        ({"maxPerMinute": 30}, RateLimitConfig(max_per_minute=30)),
        ({"maxPerDay": 1}, RateLimitConfig(max_per_day=1)),
        ({"retryOn429": False}, RateLimitConfig(retry_on_429=False)),
        # null is "not set": the default applies.
        ({"maxConcurrency": None, "maxRetries": None, "retryOn429": None}, RateLimitConfig()),
        # Keys this version does not know do not stop the workers.
        ({"maxPerDay": 7, "windowSeconds": 60}, RateLimitConfig(max_per_day=7)),
    ],
)
def test_every_field_is_optional(section: dict[str, Any], expected: RateLimitConfig) -> None:
    assert RateLimitConfig.from_provider_config({"rateLimit": section}) == expected


@pytest.mark.parametrize(
    ("section", "limits"),
    [
        ({"maxConcurrency": 1}, True),
        ({"maxPerMinute": 1}, True),
        ({"maxPerDay": 1}, True),
        ({"retryOn429": False, "maxRetries": 9, "baseBackoffMs": 5}, False),
    ],
)
def test_limits_admission_only_with_an_admission_limit(section: dict[str, Any], limits: bool) -> None:
    assert RateLimitConfig.from_provider_config({"rateLimit": section}).limits_admission is limits


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"maxConcurrency": -1}, "rateLimit.maxConcurrency must be at least 1, got -1"),
        ({"maxConcurrency": 0}, "rateLimit.maxConcurrency must be at least 1, got 0"),
        ({"maxPerMinute": "30"}, "rateLimit.maxPerMinute must be an integer, got '30'"),
        ({"maxPerDay": 1.5}, "rateLimit.maxPerDay must be an integer, got 1.5"),
        ({"maxPerDay": True}, "rateLimit.maxPerDay must be an integer, got True"),
        ({"retryOn429": "yes"}, "rateLimit.retryOn429 must be true or false, got 'yes'"),
        ({"retryOn429": 1}, "rateLimit.retryOn429 must be true or false, got 1"),
        ({"maxRetries": -1}, "rateLimit.maxRetries must be at least 0, got -1"),
        ({"baseBackoffMs": 0}, "rateLimit.baseBackoffMs must be at least 1, got 0"),
        ({"baseBackoffMs": [1000]}, "rateLimit.baseBackoffMs must be an integer, got [1000]"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(section: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRateLimitConfig) as raised:
        RateLimitConfig.from_provider_config({"rateLimit": section})

    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rateLimit": [5]}, "rateLimit must be a JSON object, got list"),
        ({"rateLimit": "5/min"}, "rateLimit must be a JSON object, got str"),
        ([("rateLimit", {})], "provider config must be a JSON object, got list"),
    ],
)
def test_a_malformed_section_is_refused(config: Any, message: str) -> None:
    with pytest.raises(InvalidRateLimitConfig, match=message):
        RateLimitConfig.from_provider_config(config)


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(InvalidRateLimitConfig, match="maxPerMinute must be at least 1"):
        RateLimitConfig(max_per_minute=0)


def test_to_json_is_the_stored_camel_case_shape_and_round_trips() -> None:
    config = RateLimitConfig(max_concurrency=5, max_per_day=10000, base_backoff_ms=500)

    assert config.to_json() == {
        "maxConcurrency": 5,
        "maxPerDay": 10000,
        "retryOn429": True,
        "maxRetries": 3,
        "baseBackoffMs": 500,
    }
    assert RateLimitConfig.from_provider_config({"rateLimit": config.to_json()}) == config
    assert (
        RateLimitConfig.from_provider_config({"rateLimit": RateLimitConfig().to_json()}) == RateLimitConfig()
    )


# --- backoff_seconds --------------------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_and_stops_at_sixty() -> None:
    assert [backoff_seconds(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_backoff_uses_the_providers_base() -> None:
    assert [backoff_seconds(n, base_backoff_ms=250) for n in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]
    assert backoff_seconds(3, base_backoff_ms=5000) == 20.0
    assert backoff_seconds(5, base_backoff_ms=5000) == 60.0


def test_backoff_honours_a_custom_cap_and_huge_retry_numbers() -> None:
    assert backoff_seconds(4, cap_seconds=5.0) == 5.0
    assert backoff_seconds(10_000) == 60.0


def test_retry_after_from_the_provider_wins() -> None:
    assert backoff_seconds(1, retry_after=7.5) == 7.5
    assert backoff_seconds(6, retry_after=3.0) == 3.0  # even when shorter than the backoff
    assert backoff_seconds(1, retry_after=0.0) == 0.0


def test_retry_after_is_capped_and_never_negative() -> None:
    assert backoff_seconds(1, retry_after=3600.0) == 60.0
    assert backoff_seconds(1, retry_after=float("inf")) == 60.0
    assert backoff_seconds(1, retry_after=90.0, cap_seconds=30.0) == 30.0
    assert backoff_seconds(1, retry_after=-5.0) == 0.0


def test_a_nan_retry_after_falls_back_to_the_backoff() -> None:
    assert backoff_seconds(2, retry_after=float("nan")) == 2.0


@pytest.mark.parametrize("retry_number", [0, -1])
def test_retry_numbers_count_from_one(retry_number: int) -> None:
    with pytest.raises(ValueError, match="counts from 1"):
        backoff_seconds(retry_number)
