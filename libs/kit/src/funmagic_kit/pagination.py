"""Keyset pagination, one way for every list: opaque cursors and the cut of one page.

A list query orders by a unique key (e.g. `(created_at, id)`), asks for `limit + 1` rows after the
cursor's key, and `page_of` keeps `limit` of them with the cursor of the next page (None at the end).
Cursors are URL-safe base64 of a JSON array; `decode_cursor` checks every value against its expected
type, so a forged or truncated cursor is an `InvalidCursor` (422 at the edge), never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from funmagic_kit.errors import Refused

__all__ = ["InvalidCursor", "decode_cursor", "encode_cursor", "page_of"]

RowT = TypeVar("RowT")
_MAX_TEXT = 200


class InvalidCursor(Refused):
    code = "invalid_cursor"

    def __init__(self) -> None:
        super().__init__("the cursor is invalid; start again without it", field="cursor")


def encode_cursor(*values: object) -> str:
    """A cursor of the key values (datetimes as ISO 8601, UUIDs as text)."""
    plain = [
        v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, uuid.UUID) else v
        for v in values
    ]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode()


_BIGINT_MIN, _BIGINT_MAX = -(2**63), 2**63 - 1


def decode_cursor(cursor: str, *types: type) -> tuple[Any, ...]:
    """The key values of `cursor`, as `types` (`datetime`, `uuid.UUID` → canonical text, `str`, `int`)."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor() from None
    if not isinstance(values, list) or len(values) != len(types):
        raise InvalidCursor()
    return tuple(_as(value, expected) for value, expected in zip(values, types, strict=True))


def _as(value: object, expected: type) -> Any:
    if isinstance(value, str) and (len(value) > _MAX_TEXT or "\x00" in value):
        raise InvalidCursor()
    try:
        if expected is datetime and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise InvalidCursor()
            return parsed
        if expected is uuid.UUID and isinstance(value, str):
            return str(uuid.UUID(value))
    except ValueError:
        raise InvalidCursor() from None
    if expected is int and type(value) is int and not _BIGINT_MIN <= value <= _BIGINT_MAX:
        raise InvalidCursor()  # no column holds it; Postgres would refuse to cast it (a 500, not a 422)
    if expected in (str, int) and type(value) is expected:  # bool is not int here
        return value
    raise InvalidCursor()


def page_of(
    rows: Sequence[RowT], limit: int, key: Callable[[RowT], tuple[object, ...]]
) -> tuple[list[RowT], str | None]:
    """The first `limit` of `rows` (fetched with `limit + 1`) and the cursor after the last of them."""
    items = list(rows[:limit])
    next_cursor = encode_cursor(*key(items[-1])) if len(rows) > limit and items else None
    return items, next_cursor
