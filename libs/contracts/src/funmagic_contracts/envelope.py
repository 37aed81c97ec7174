"""The envelope every event travels in, and its (de)serialisation for Kafka.

Value: the envelope as compact UTF-8 JSON (``encode``/``decode``). Key: ``subject`` (``kafka_key``), the
aggregate id, so one aggregate's events stay in one partition, in order. Headers: ``type``, ``version``
and, when tracing, ``traceparent`` (``kafka_headers``), so a consumer can route or drop a message without
parsing it.

Producer::

    envelope = Envelope.wrap(TaskRequested(...), correlation_id=request_id)
    value, key, headers = encode(envelope), kafka_key(envelope), kafka_headers(envelope, traceparent)

Consumer::

    envelope = decode(message.value)      # ContractError: poison, dead-letter it
    event = parse_event(envelope)         # ContractError: unknown type/version or invalid data
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic_core import ErrorDetails

from funmagic_contracts.base import IntegrationEvent, UtcDatetime
from funmagic_contracts.errors import ContractError
from funmagic_contracts.ids import uuid7
from funmagic_contracts.registry import event_model
from funmagic_contracts.topics import topic_by_name

__all__ = [
    "ENVELOPE_VERSION",
    "TRACEPARENT_HEADER",
    "TYPE_HEADER",
    "VERSION_HEADER",
    "ContractError",
    "Envelope",
    "decode",
    "encode",
    "kafka_headers",
    "kafka_key",
    "parse_event",
]

ENVELOPE_VERSION = 1
"""The version of the envelope shape itself (``schemas/envelope.v1.json``)."""

TYPE_HEADER = "type"
VERSION_HEADER = "version"
TRACEPARENT_HEADER = "traceparent"

UUID7_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-7[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def _must_be_uuid7(value: UUID) -> UUID:
    if value.version != 7:
        raise ValueError("must be a UUIDv7 (RFC 9562)")
    return value


EventId = Annotated[
    UUID,
    AfterValidator(_must_be_uuid7),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID7_PATTERN}),
]


class Envelope(BaseModel):
    """The JSON value of every Kafka message on an ``<service>.events`` topic."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: EventId = Field(description="Unique event id, a UUIDv7 (time-ordered). Consumers dedupe on it.")
    type: str = Field(
        pattern=r"^[A-Z][A-Za-z0-9]*$", description="Past-tense event name, e.g. TaskRequested."
    )
    version: int = Field(ge=1, description="Version of the event's data schema.")
    source: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", description="The producing service, e.g. tasks.")
    subject: str = Field(min_length=1, description="The aggregate id; also the Kafka key.")
    time: UtcDatetime = Field(description="When the event happened (UTC).")
    correlation_id: str = Field(
        min_length=1, description="Id shared by every event of one flow; the first event's id by default."
    )
    causation_id: str | None = Field(
        default=None, description="Id of the event or request that caused this one."
    )
    data: dict[str, Any] = Field(description="The event itself; its schema is given by (type, version).")

    @classmethod
    def wrap(
        cls,
        event: IntegrationEvent,
        *,
        source: str | None = None,
        subject: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
        id: UUID | None = None,
        caused_by: Envelope | None = None,
    ) -> Envelope:
        """Put an event in a new envelope.

        ``source`` and ``subject`` default to the event's producing service and aggregate id and, when
        given, must equal them. ``caused_by`` (the envelope being handled) fills ``correlation_id`` and
        ``causation_id`` unless they are given. A new UUIDv7 and the current UTC time are used unless
        ``id`` and ``time`` are given. Raises ``ContractError``.
        """
        if not isinstance(event, IntegrationEvent) or not hasattr(event, "EVENT_TYPE"):
            raise ContractError(f"not an integration event: {event!r}")
        owner = topic_by_name(event.TOPIC).owner
        if source is not None and source != owner:
            raise ContractError(f"{event.EVENT_TYPE} is published by {owner!r}, not {source!r}")
        event_subject = event.get_subject()
        if subject is not None and subject != event_subject:
            raise ContractError(
                f"{event.EVENT_TYPE} subject must be its {event.SUBJECT_FIELD} {event_subject!r}, "
                f"not {subject!r}"
            )
        event_id = id if id is not None else uuid7()
        if caused_by is not None:
            correlation_id = correlation_id if correlation_id is not None else caused_by.correlation_id
            causation_id = causation_id if causation_id is not None else str(caused_by.id)
        try:
            return cls(
                id=event_id,
                type=event.EVENT_TYPE,
                version=event.EVENT_VERSION,
                source=owner,
                subject=event_subject,
                time=time if time is not None else datetime.now(UTC),
                correlation_id=correlation_id if correlation_id is not None else str(event_id),
                causation_id=causation_id,
                data=event.model_dump(mode="json"),
            )
        except ValidationError as e:
            raise ContractError(f"invalid envelope for {event.EVENT_TYPE}: {_describe(e)}") from e


def _describe(error: ValidationError) -> str:
    """The errors of a ValidationError without the offending values (they may be personal data)."""
    return "; ".join(_describe_one(d) for d in error.errors(include_input=False, include_url=False))


def _describe_one(detail: ErrorDetails) -> str:
    location = ".".join(str(part) for part in detail["loc"])
    return f"{location}: {detail['msg']}" if location else detail["msg"]


def encode(envelope: Envelope) -> bytes:
    """The Kafka message value: compact UTF-8 JSON."""
    return envelope.model_dump_json().encode()


def decode(raw: bytes) -> Envelope:
    """Parse a Kafka message value; ``ContractError`` if it is not valid JSON or not an envelope."""
    if not isinstance(raw, (bytes, bytearray, memoryview, str)):
        raise ContractError(f"cannot decode a message value of type {type(raw).__name__}")
    try:
        return Envelope.model_validate_json(bytes(raw) if isinstance(raw, memoryview) else raw)
    except ValidationError as e:
        kinds = {d["type"] for d in e.errors()}
        if "json_invalid" in kinds:
            raise ContractError(f"malformed JSON: {_describe(e)}") from e
        if "model_type" in kinds:
            raise ContractError("malformed envelope: the value is not a JSON object") from e
        raise ContractError(f"malformed envelope: {_describe(e)}") from e


def parse_event(envelope: Envelope) -> IntegrationEvent:
    """The typed event in an envelope, chosen by ``(type, version)`` from the registry.

    Raises ``ContractError`` for an unknown type or version, for data that does not match the event's
    schema, and for a ``subject`` that is not the event's aggregate id.
    """
    model = event_model(envelope.type, envelope.version)
    try:
        event = model.model_validate(envelope.data)
    except ValidationError as e:
        raise ContractError(f"invalid {envelope.type} v{envelope.version} data: {_describe(e)}") from e
    if event.get_subject() != envelope.subject:
        raise ContractError(
            f"{envelope.type} envelope subject {envelope.subject!r} is not its {model.SUBJECT_FIELD} "
            f"{event.get_subject()!r}"
        )
    return event


def kafka_key(envelope: Envelope) -> bytes:
    """The Kafka message key: the subject (aggregate id), so one aggregate's events keep their order."""
    return envelope.subject.encode()


def kafka_headers(envelope: Envelope, traceparent: str | None = None) -> list[tuple[str, bytes]]:
    """The Kafka message headers: ``type``, ``version`` and, if given, a W3C ``traceparent``."""
    headers = [(TYPE_HEADER, envelope.type.encode()), (VERSION_HEADER, str(envelope.version).encode())]
    if traceparent is not None:
        if not _TRACEPARENT.fullmatch(traceparent):
            raise ContractError(f"not a W3C traceparent: {traceparent!r}")
        headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return headers
