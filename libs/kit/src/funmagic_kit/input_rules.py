"""What no request may carry, whatever its model says: values that Postgres or JSON cannot hold.

One rule for every service and the gateway (`funmagic_kit.api.read_body` / `read_query` apply it before a
model sees the input), so a body that passes the edge cannot fail deeper down as a 500:

- a NUL character (`\\u0000`): Postgres text cannot store it;
- a lone UTF-16 surrogate (`\\ud800` alone): not a character, not encodable as UTF-8;
- an integer outside 64 bits: no `bigint` (nor most JSON readers) holds it;
- a number that is not finite (`NaN`, `Infinity`, which Python's JSON reader accepts): not JSON at all.

Pure: it walks parsed JSON (or a query's strings) and names each offending value by its location, the way
validation errors do (`["items", 2, "name"]`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

__all__ = ["INT64_MAX", "INT64_MIN", "unstorable_values"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def unstorable_values(data: Any) -> list[dict[str, Any]]:
    """Each value of `data` no request may carry, as `{"loc", "msg", "type"}` (the shape of a validation
    error), in document order."""
    return list(_walk(data, []))


def _walk(value: Any, loc: list[str | int]) -> Iterator[dict[str, Any]]:
    if isinstance(value, str):
        if "\x00" in value:
            yield _problem(loc, "must not contain the NUL character (\\u0000)", "string_nul")
        elif any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            yield _problem(loc, "must not contain a lone surrogate (not a character)", "string_surrogate")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            yield _problem(loc, "must fit in 64 bits", "int_out_of_range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            yield _problem(loc, "must be a finite number", "number_not_finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield from _walk(key, [*loc, key])
            yield from _walk(item, [*loc, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, [*loc, index])


def _problem(loc: list[str | int], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": [str(part) for part in loc], "msg": msg, "type": type_}
