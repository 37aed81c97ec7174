"""JSON documents the service passes through without owning their shape: a provider's `config`, a step's
`options` and a result's `metadata`. Named, so a reader sees "free-form JSON" instead of `Any`."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

__all__ = ["JsonObject", "JsonValue"]

JsonObject = Mapping[str, JsonValue]
"""A JSON object, read-only where it is passed around."""
