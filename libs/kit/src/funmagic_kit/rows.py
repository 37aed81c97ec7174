"""Rows to domain objects and back, by name: a store selects its columns under the names of the
dataclass's fields (`SELECT id::text AS id, …`) and writes them from the same names, so the mapping is the
SQL itself and no adapter repeats `Thing(id=row["id"], name=row["name"], …)` field by field.

Columns that need converting (JSON documents, nested objects) are given explicitly as keyword arguments,
which win over the row's value of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

__all__ = ["from_row", "to_row"]

T = TypeVar("T")


def from_row(cls: type[T], row: Mapping[str, Any], **converted: Any) -> T:
    """`cls` (a dataclass) built from the row's columns named like its fields; `converted` values win.
    A field neither in the row nor converted takes its default (or fails loudly when it has none)."""
    if not is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    values = {
        f.name: row[f.name] for f in fields(cls) if f.init and f.name in row and f.name not in converted
    }
    return cls(**values, **converted)


def to_row(obj: object, **converted: Any) -> dict[str, Any]:
    """The dataclass `obj` as column values named like its fields (one level: nested objects are given in
    `converted`, which win)."""
    if not is_dataclass(obj) or isinstance(obj, type):
        raise TypeError(f"{obj!r} is not a dataclass instance")
    values = {f.name: getattr(obj, f.name) for f in fields(obj) if f.name not in converted}
    return {**values, **converted}
