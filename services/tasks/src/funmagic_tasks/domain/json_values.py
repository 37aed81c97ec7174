"""JSON documents as the catalog stores them and the API shows them (tool configs, translations, provider
options, step metadata): named types instead of `Any`, so a reader sees what shape a value has."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["JsonObject", "JsonValue"]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"
