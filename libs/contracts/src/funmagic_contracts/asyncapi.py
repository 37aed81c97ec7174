"""The AsyncAPI 3.0 document of every topic, generated from the registry in pure Python.

Channels: one per topic (event topics and their dead-letter topics). Messages: one per event version,
whose payload is the envelope with ``type``/``version`` fixed and ``data`` the event's schema. Operations:
one ``send`` per producing service, plus one per dead-letter topic (sent by any consumer). Kafka bindings
give the topic retention and the message key (the envelope ``subject``).
"""

from __future__ import annotations

import copy
from typing import Any

from funmagic_contracts import __version__
from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.envelope import TRACEPARENT_HEADER, TYPE_HEADER, VERSION_HEADER, Envelope
from funmagic_contracts.examples import EXAMPLES, example_envelope
from funmagic_contracts.registry import EVENT_TYPES
from funmagic_contracts.topics import (
    DEAD_LETTER_TOPICS,
    DLQ_ATTEMPTS_HEADER,
    DLQ_CONSUMER_HEADER,
    DLQ_ERROR_HEADER,
    DLQ_ORIGINAL_OFFSET_HEADER,
    DLQ_ORIGINAL_PARTITION_HEADER,
    DLQ_ORIGINAL_TOPIC_HEADER,
    EVENT_TOPICS,
    TopicSpec,
)

__all__ = ["ASYNCAPI_VERSION", "build_asyncapi", "message_key"]

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
DEAD_LETTER_MESSAGE = "DeadLetter"


def message_key(model: type[IntegrationEvent]) -> str:
    """The id of an event version's message and data schema in the document, e.g. ``TaskRequested.v1``."""
    return f"{model.EVENT_TYPE}.v{model.EVENT_VERSION}"


def _ref_rewriter(mapping: dict[str, str]) -> Any:
    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/"):
                    out[k] = f"#/components/schemas/{mapping[v.removeprefix('#/$defs/')]}"
                else:
                    out[k] = rewrite(v)
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    return rewrite


def _add_schema(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """Add a model schema under ``name``, hoisting its ``$defs`` into the shared components."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})
    mapping = {}
    for def_name, def_schema in defs.items():
        target = def_name
        if target in components and components[target] != def_schema:
            target = f"{name}.{def_name}"
        mapping[def_name] = target
    rewrite = _ref_rewriter(mapping)
    for def_name, target in mapping.items():
        components[target] = rewrite(defs[def_name])
    components[name] = rewrite(schema)


def _topic_binding(topic: TopicSpec) -> dict[str, Any]:
    return {
        "kafka": {
            "topic": topic.name,
            "topicConfiguration": {"retention.ms": topic.retention_ms},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _event_message(model: type[IntegrationEvent], envelope_schema: dict[str, Any]) -> dict[str, Any]:
    key = message_key(model)
    payload = copy.deepcopy(envelope_schema)
    payload["title"] = f"{key} envelope"
    payload.pop("description", None)
    properties = payload["properties"]
    properties["type"] = {"const": model.EVENT_TYPE, "type": "string"}
    properties["version"] = {"const": model.EVENT_VERSION, "type": "integer"}
    properties["data"] = {"$ref": f"#/components/schemas/{key}"}
    headers = {
        "type": "object",
        "properties": {
            TYPE_HEADER: {"const": model.EVENT_TYPE, "type": "string"},
            VERSION_HEADER: {"const": str(model.EVENT_VERSION), "type": "string"},
            TRACEPARENT_HEADER: {
                "type": "string",
                "description": "W3C trace context, when the producer traces.",
            },
        },
        "required": [TYPE_HEADER, VERSION_HEADER],
    }
    message: dict[str, Any] = {
        "name": model.EVENT_TYPE,
        "title": f"{model.EVENT_TYPE} v{model.EVENT_VERSION}",
        "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else model.EVENT_TYPE,
        "contentType": "application/json",
        "headers": headers,
        "payload": payload,
        "correlationId": {"location": "$message.payload#/correlation_id"},
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The envelope subject: the event's {model.SUBJECT_FIELD}.",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    example = EXAMPLES.get((model.EVENT_TYPE, model.EVENT_VERSION))
    if example is not None:
        message["examples"] = [
            {
                "name": f"{model.EVENT_TYPE}Example",
                "headers": {TYPE_HEADER: model.EVENT_TYPE, VERSION_HEADER: str(model.EVENT_VERSION)},
                "payload": example_envelope(example).model_dump(mode="json"),
            }
        ]
    return message


def _dead_letter_message() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "Dead letter",
        "summary": "A message a consumer gave up on: the original key, value and headers, plus the error.",
        "headers": {
            "type": "object",
            "description": "The original message's headers, plus these.",
            "properties": {
                DLQ_ERROR_HEADER: {**text, "description": "Exception type and message."},
                DLQ_CONSUMER_HEADER: {**text, "description": "The consumer (group) that gave up."},
                DLQ_ORIGINAL_TOPIC_HEADER: text,
                DLQ_ORIGINAL_PARTITION_HEADER: {**text, "description": "Decimal integer."},
                DLQ_ORIGINAL_OFFSET_HEADER: {**text, "description": "Decimal integer."},
                DLQ_ATTEMPTS_HEADER: {**text, "description": "Decimal integer: how many times it was tried."},
            },
            "required": [DLQ_ERROR_HEADER, DLQ_CONSUMER_HEADER, DLQ_ORIGINAL_TOPIC_HEADER],
        },
        "payload": {
            "description": "The original message value, byte for byte: normally an Envelope, but anything "
            "when the value could not be decoded."
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message key."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def build_asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document for every topic and event version in the registry."""
    schemas: dict[str, Any] = {}
    envelope_schema = Envelope.model_json_schema(mode="validation")
    _add_schema(schemas, "Envelope", envelope_schema)
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    for topic in EVENT_TOPICS:
        models = sorted(
            (m for m in EVENT_TYPES.values() if topic.name == m.TOPIC),
            key=lambda m: (m.EVENT_TYPE, m.EVENT_VERSION),
        )
        channel_messages = {}
        for model in models:
            key = message_key(model)
            _add_schema(schemas, key, model.model_json_schema(mode="validation"))
            messages[key] = _event_message(model, schemas["Envelope"])
            channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        channels[topic.name] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Published by {topic.owner}; key = envelope subject.",
            "messages": channel_messages,
            "bindings": _topic_binding(topic),
        }
        operations[f"send_{topic.owner}_events"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "title": f"{topic.owner} publishes",
            "summary": f"The {topic.owner} service publishes its events (through its transactional outbox).",
            "messages": [{"$ref": f"#/channels/{topic.name}/messages/{key}"} for key in channel_messages],
        }

    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()
    for topic in DEAD_LETTER_TOPICS:
        channels[topic.name] = {
            "address": topic.name,
            "title": topic.name,
            "description": topic.description,
            "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
            "bindings": _topic_binding(topic),
        }
        operations[f"send_{topic.name.replace('.', '_')}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.name}"},
            "title": f"dead-letter {topic.name.removesuffix('.dlq')}",
            "summary": "Any consumer of the topic moves a message it gave up on here.",
            "messages": [{"$ref": f"#/channels/{topic.name}/messages/{DEAD_LETTER_MESSAGE}"}],
        }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "FunMagic events",
            "version": __version__,
            "description": "The integration events of the FunMagic platform on Kafka. Every message value is "
            "an Envelope (JSON); its `data` is the event named by `type` and `version`. Generated from "
            "libs/contracts (funmagic_contracts) — do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }
