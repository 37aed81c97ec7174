"""The JSON Schemas this package publishes, rendered in memory (``export`` writes them to disk).

Layout: ``envelope.v1.json`` and ``<topic>/<EventType>.v<version>.json``, each the pydantic (validation-mode)
JSON Schema of the model, with ``$schema`` set to draft 2020-12.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import ENVELOPE_VERSION, Envelope
from funmagic_contracts.registry import EVENT_TYPES

__all__ = [
    "JSON_SCHEMA_DIALECT",
    "dump_json",
    "envelope_schema_path",
    "event_schema_path",
    "model_schema",
    "render_schemas",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of a model as published (validation mode, ``$defs`` for nested models)."""
    return {"$schema": JSON_SCHEMA_DIALECT, **model.model_json_schema(mode="validation")}


def event_schema_path(model: type[IntegrationEvent]) -> str:
    """Where an event's schema lives, relative to the schemas folder (always ``/``-separated)."""
    return f"{model.TOPIC}/{model.EVENT_TYPE}.v{model.EVENT_VERSION}.json"


def envelope_schema_path() -> str:
    return f"envelope.v{ENVELOPE_VERSION}.json"


def render_schemas() -> dict[str, dict[str, Any]]:
    """Every published schema by relative path: the envelope and every registered event version."""
    rendered = {envelope_schema_path(): model_schema(Envelope)}
    for key in sorted(EVENT_TYPES, key=lambda k: (EVENT_TYPES[k].TOPIC, k)):
        model = EVENT_TYPES[key]
        rendered[event_schema_path(model)] = model_schema(model)
    return rendered


def dump_json(document: Any) -> str:
    """The committed text form: 2-space indented JSON, keys in model order, trailing newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
