"""Keyset cursors: what `encode_cursor` writes, `decode_cursor` reads back typed; anything forged is an
`InvalidCursor` refusal (422 `invalid_cursor` at the edge), never a database error."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from funmagic_kit.errors import Refused
from funmagic_kit.pagination import InvalidCursor, decode_cursor, encode_cursor, page_of

WHEN = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
ID = str(uuid.uuid4())


def forge(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


def test_a_cursor_round_trips_its_typed_values() -> None:
    cursor = encode_cursor(WHEN, uuid.UUID(ID), "name", 7)

    assert decode_cursor(cursor, datetime, uuid.UUID, str, int) == (WHEN, ID, "name", 7)


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        forge({"a": 1}),
        forge([WHEN.isoformat()]),  # too few values
        forge([WHEN.isoformat(), ID, "extra"]),  # too many
        forge(["yesterday", ID]),
        forge(["2026-05-01T12:30:15", ID]),  # a naive time
        forge([WHEN.isoformat(), "not-a-uuid"]),
        forge([WHEN.isoformat(), 12]),
        forge([WHEN.isoformat(), "x" * 500]),
        forge([WHEN.isoformat(), "a\x00b"]),
    ],
)
def test_a_forged_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as refused:
        decode_cursor(cursor, datetime, uuid.UUID)
    assert isinstance(refused.value, Refused)
    assert refused.value.field == "cursor"


def test_a_boolean_is_not_taken_for_a_number() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(forge([True]), int)


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**20])
def test_a_number_no_bigint_column_could_hold_is_refused(number: int) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(forge([number]), int)


def test_the_bigint_range_itself_is_accepted() -> None:
    assert decode_cursor(forge([2**63 - 1, -(2**63)]), int, int) == (2**63 - 1, -(2**63))


def test_a_page_keeps_limit_rows_and_points_after_the_last_one() -> None:
    rows = [(3, "c"), (2, "b"), (1, "a")]  # fetched with limit + 1

    items, next_cursor = page_of(rows, 2, key=lambda row: row)

    assert items == [(3, "c"), (2, "b")]
    assert next_cursor is not None
    assert decode_cursor(next_cursor, int, str) == (2, "b")


def test_the_last_page_has_no_next_cursor() -> None:
    assert page_of([(1, "a")], 2, key=lambda row: row) == ([(1, "a")], None)
    assert page_of([], 2, key=lambda row: row) == ([], None)
