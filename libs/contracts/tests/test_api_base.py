"""A moment a caller sends (`IsoDatetime`): ISO 8601 text with its offset, in bodies (strict JSON) and in
queries alike; never a number of seconds, never a naive time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from funmagic_contracts.api.base import IsoDatetime, Request


class Window(Request):
    starts_at: IsoDatetime | None = None


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-31T09:30:00Z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31T09:30Z", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31T10:30:00.250+01:00", datetime(2026, 1, 31, 9, 30, 0, 250_000, tzinfo=UTC)),
        ("2026-01-31t09:30:00-02:00", datetime(2026, 1, 31, 9, 30, tzinfo=timezone(timedelta(hours=-2)))),
    ],
)
def test_iso_8601_text_with_an_offset_is_read_from_a_strict_body_and_from_a_query(
    text: str, moment: datetime
) -> None:
    from_body = Window.model_validate_json(json.dumps({"starts_at": text}), strict=True)
    from_query = Window.model_validate({"starts_at": text})
    assert from_body.starts_at == from_query.starts_at == moment


@pytest.mark.parametrize(
    ("sent", "error_type"),
    [
        ("0.5", "datetime_format"),  # pydantic alone reads it as half a second after 1970
        ("1700000000", "datetime_format"),
        ("2026-01-31", "datetime_format"),
        ("2026-01-31 09:30:00Z", "datetime_format"),  # RFC 3339's `date-time` wants the T
        ("2026-13-01T09:30:00Z", "datetime_format"),
        ("2026-01-31T09:30:00", "timezone_aware"),
        (1700000000, "datetime_format"),
    ],
)
def test_numbers_dates_and_naive_times_are_refused(sent: object, error_type: str) -> None:
    for validate in (
        lambda: Window.model_validate_json(json.dumps({"starts_at": sent}), strict=True),
        lambda: Window.model_validate({"starts_at": sent}),
    ):
        with pytest.raises(ValidationError) as refused:
            validate()
        assert [error["type"] for error in refused.value.errors()] == [error_type]


def test_a_datetime_built_in_code_is_taken_as_it_is() -> None:
    class Built(BaseModel):
        at: IsoDatetime

    moment = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert Built(at=moment).at == moment
