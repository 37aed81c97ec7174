"""The values no request may carry, whatever its model: each named by where it is."""

from __future__ import annotations

import math

import pytest

from funmagic_kit.input_rules import INT64_MAX, INT64_MIN, unstorable_values


def test_ordinary_json_passes() -> None:
    document = {"name": "Zoë 🦊", "n": INT64_MAX, "m": INT64_MIN, "x": 1.5, "ok": True, "items": [None, {}]}

    assert unstorable_values(document) == []


@pytest.mark.parametrize(
    ("document", "loc", "error_type"),
    [
        ({"a": "x\x00y"}, ["a"], "string_nul"),
        ({"a": ["fine", {"b": "\ud83d"}]}, ["a", "1", "b"], "string_surrogate"),
        ({"n": INT64_MAX + 1}, ["n"], "int_out_of_range"),
        ({"n": INT64_MIN - 1}, ["n"], "int_out_of_range"),
        ({"x": math.inf}, ["x"], "number_not_finite"),
        ({"x": math.nan}, ["x"], "number_not_finite"),
        ({"bad\x00key": 1}, ["bad\x00key"], "string_nul"),
    ],
)
def test_each_unstorable_value_is_named_by_its_location(document: object, loc: list, error_type: str) -> None:
    (problem,) = unstorable_values(document)

    assert (problem["loc"], problem["type"]) == (loc, error_type)
    assert problem["msg"]


def test_every_problem_is_listed_in_document_order() -> None:
    problems = unstorable_values({"a": "\x00", "b": [2**64, "\x00"]})

    assert [p["loc"] for p in problems] == [["a"], ["b", "0"], ["b", "1"]]
