"""Rows to dataclasses and back by field name, with explicit conversions for what needs one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from funmagic_kit.rows import from_row, to_row


@dataclass(frozen=True)
class Key:
    key_id: str


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    key: Key | None
    is_active: bool = True


def test_a_row_becomes_the_dataclass_by_field_name_and_extra_columns_are_ignored() -> None:
    row = {"id": "p1", "name": "openai", "key_id": "k1", "deleted_at": None}

    provider = from_row(Provider, row, key=Key(row["key_id"]))

    assert provider == Provider(id="p1", name="openai", key=Key("k1"), is_active=True)


def test_a_converted_value_wins_over_the_column_of_the_same_name() -> None:
    assert from_row(Provider, {"id": "p1", "name": "x", "key": "raw"}, key=None).key is None


def test_a_field_without_a_column_or_a_default_fails_loudly() -> None:
    with pytest.raises(TypeError):
        from_row(Provider, {"id": "p1"}, key=None)


def test_a_dataclass_becomes_column_values_by_field_name() -> None:
    provider = Provider(id="p1", name="openai", key=Key("k1"))

    assert to_row(provider, key="k1") == {"id": "p1", "name": "openai", "key": "k1", "is_active": True}


def test_only_dataclasses_are_mapped() -> None:
    with pytest.raises(TypeError):
        from_row(dict, {})
    with pytest.raises(TypeError):
        to_row({"id": 1})
