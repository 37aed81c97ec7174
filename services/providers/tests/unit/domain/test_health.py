"""What a provider's health history keeps of one check: no error when it passed, always a reason when it
failed, never the key."""

from datetime import UTC, datetime

from funmagic_providers.domain.health import MAX_ERROR_LENGTH, health_check
from funmagic_providers.domain.steps import HealthReport

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEY = "sk-live-abcdefghijklmnop"


def check(report: HealthReport, *, latency_ms: int = 12, api_key: str | None = KEY):
    return health_check(
        report,
        check_id="c1",
        provider_id="p1",
        checked_at=AT,
        latency_ms=latency_ms,
        trigger="manual",
        api_key=api_key,
    )


def test_a_passed_check_has_no_error_even_when_the_adapter_said_something() -> None:
    record = check(HealthReport(True, "ignored"))
    assert (record.healthy, record.error, record.latency_ms) == (True, None, 12)


def test_a_failed_check_always_says_why() -> None:
    assert check(HealthReport(False)).error == "the provider did not pass the check"
    assert check(HealthReport(False, "  timed out ")).error == "timed out"


def test_the_key_never_reaches_the_history_and_a_long_reason_is_cut() -> None:
    record = check(HealthReport(False, f"refused {KEY} " + "x" * 1000))
    assert record.error is not None
    assert KEY not in record.error
    assert record.error.startswith("refused •••• x")
    assert len(record.error) == MAX_ERROR_LENGTH


def test_a_latency_is_never_negative() -> None:
    assert check(HealthReport(True), latency_ms=-3).latency_ms == 0
