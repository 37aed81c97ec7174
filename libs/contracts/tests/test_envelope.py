import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from funmagic_contracts.envelope import (
    Envelope,
    decode,
    encode,
    kafka_headers,
    kafka_key,
    parse_event,
)
from funmagic_contracts.errors import ContractError
from funmagic_contracts.examples import EXAMPLES
from funmagic_contracts.ids import uuid7
from funmagic_contracts.registry import EVENT_TYPES
from funmagic_contracts.tasks.events import TaskRequested

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def a_task_requested(**overrides) -> TaskRequested:
    fields = dict(
        task_id="task-1",
        user_id="user-1",
        tool_id="tool-1",
        tool_slug="figme",
        step_ids=("image-gen",),
        price=20,
    )
    return TaskRequested(**(fields | overrides))


def an_envelope_dict(**overrides) -> dict:
    envelope = Envelope.wrap(a_task_requested()).model_dump(mode="json")
    return envelope | overrides


def test_an_envelope_survives_encode_and_decode_unchanged():
    envelope = Envelope.wrap(a_task_requested(), correlation_id="req-42", causation_id="cmd-1")

    assert decode(encode(envelope)) == envelope


def test_wrap_fills_the_envelope_from_the_event():
    event = a_task_requested()

    envelope = Envelope.wrap(event)

    assert envelope.type == "TaskRequested"
    assert envelope.version == 1
    assert envelope.source == "tasks"
    assert envelope.subject == "task-1"
    assert envelope.id.version == 7
    assert envelope.correlation_id == str(envelope.id)
    assert envelope.causation_id is None
    assert envelope.time.tzinfo is not None
    assert envelope.data == event.model_dump(mode="json")


def test_wrap_keeps_the_given_id_time_and_correlation():
    event_id, at = uuid7(), datetime(2025, 1, 1, tzinfo=UTC)

    envelope = Envelope.wrap(
        a_task_requested(), source="tasks", subject="task-1", id=event_id, time=at, correlation_id="req-1"
    )

    assert (envelope.id, envelope.time, envelope.correlation_id) == (event_id, at, "req-1")


def test_an_event_caused_by_another_inherits_its_correlation_and_names_it_as_cause():
    cause = Envelope.wrap(a_task_requested(), correlation_id="flow-7")

    effect = Envelope.wrap(a_task_requested(task_id="task-2"), caused_by=cause)

    assert effect.correlation_id == "flow-7"
    assert effect.causation_id == str(cause.id)


def test_wrap_refuses_a_source_that_does_not_own_the_event():
    with pytest.raises(ContractError, match="published by 'tasks', not 'credits'"):
        Envelope.wrap(a_task_requested(), source="credits", subject="task-1")


def test_wrap_refuses_a_subject_that_is_not_the_events_aggregate_id():
    with pytest.raises(ContractError, match="task_id"):
        Envelope.wrap(a_task_requested(), subject="user-1")


def test_wrap_refuses_something_that_is_not_an_integration_event():
    with pytest.raises(ContractError, match="not an integration event"):
        Envelope.wrap({"task_id": "t"})  # type: ignore[arg-type]


def test_a_naive_time_is_rejected():
    with pytest.raises(ContractError, match="time"):
        Envelope.wrap(a_task_requested(), time=datetime(2025, 1, 1, 12, 0))
    with pytest.raises(ContractError, match="time"):
        decode(json.dumps(an_envelope_dict(time="2025-01-01T12:00:00")).encode())


def test_a_time_in_another_zone_is_normalised_to_utc():
    at = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    envelope = Envelope.wrap(a_task_requested(), time=at)

    assert envelope.time == at
    assert envelope.time.utcoffset() == timedelta(0)
    assert b'"time":"2025-01-01T12:00:00Z"' in encode(envelope)


def test_encoding_is_compact_json():
    raw = encode(Envelope.wrap(a_task_requested()))

    assert b": " not in raw
    assert b", " not in raw
    assert b"\n" not in raw
    assert json.loads(raw)["type"] == "TaskRequested"


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe", b"[1, 2]", b'"a string"', b"null", b"{}"],
    ids=["empty", "truncated", "text", "binary", "array", "string", "null", "empty-object"],
)
def test_decoding_garbage_raises_a_contract_error(raw):
    with pytest.raises(ContractError, match="malformed"):
        decode(raw)


def test_decoding_something_that_is_not_bytes_raises_a_contract_error():
    with pytest.raises(ContractError):
        decode(12)  # type: ignore[arg-type]


def test_contract_errors_are_value_errors():
    assert issubclass(ContractError, ValueError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", str(uuid4())),
        ("id", "not-a-uuid"),
        ("version", 0),
        ("type", "task_requested"),
        ("source", "Tasks"),
        ("subject", ""),
        ("correlation_id", ""),
        ("data", [1, 2]),
    ],
)
def test_an_envelope_with_a_bad_field_is_rejected_naming_the_field(field, value):
    raw = json.dumps(an_envelope_dict(**{field: value})).encode()

    with pytest.raises(ContractError, match=field):
        decode(raw)


def test_a_missing_field_is_rejected_naming_the_field():
    envelope = an_envelope_dict()
    del envelope["subject"]

    with pytest.raises(ContractError, match="subject"):
        decode(json.dumps(envelope).encode())


def test_decoding_ignores_envelope_fields_it_does_not_know():
    raw = json.dumps(an_envelope_dict(tenant="acme")).encode()

    assert decode(raw).type == "TaskRequested"


def test_error_messages_do_not_repeat_the_offending_values():
    raw = json.dumps(an_envelope_dict(time="secret@example.com")).encode()

    with pytest.raises(ContractError) as caught:
        decode(raw)

    assert "secret@example.com" not in str(caught.value)


@pytest.mark.parametrize("key", sorted(EVENT_TYPES), ids=lambda k: f"{k[0]}.v{k[1]}")
def test_every_registered_event_parses_back_from_its_encoded_envelope(key):
    event = EXAMPLES[key]

    parsed = parse_event(decode(encode(Envelope.wrap(event))))

    assert type(parsed) is EVENT_TYPES[key]
    assert parsed == event


def test_parsing_an_unknown_event_type_is_a_contract_error():
    envelope = Envelope.model_validate(an_envelope_dict(type="TaskTeleported"))

    with pytest.raises(ContractError, match="unknown event 'TaskTeleported'"):
        parse_event(envelope)


def test_parsing_an_unknown_version_is_a_contract_error_listing_the_known_ones():
    envelope = Envelope.model_validate(an_envelope_dict(version=9))

    with pytest.raises(ContractError, match=r"version 9; known versions: \[1\]"):
        parse_event(envelope)


def test_parsing_invalid_event_data_is_a_contract_error_naming_the_field():
    data = Envelope.wrap(a_task_requested()).data | {"price": -5}
    envelope = Envelope.model_validate(an_envelope_dict(data=data))

    with pytest.raises(ContractError, match="price"):
        parse_event(envelope)


def test_parsing_ignores_data_fields_from_a_newer_producer():
    data = Envelope.wrap(a_task_requested()).data | {"priority": "high"}
    envelope = Envelope.model_validate(an_envelope_dict(data=data))

    assert parse_event(envelope) == a_task_requested()


def test_parsing_refuses_an_envelope_whose_subject_is_not_the_aggregate_id():
    envelope = Envelope.model_validate(an_envelope_dict(subject="someone-else"))

    with pytest.raises(ContractError, match="subject"):
        parse_event(envelope)


def test_the_kafka_key_is_the_subject():
    assert kafka_key(Envelope.wrap(a_task_requested(task_id="task-9"))) == b"task-9"


def test_kafka_headers_carry_type_version_and_traceparent():
    envelope = Envelope.wrap(a_task_requested())

    assert kafka_headers(envelope) == [("type", b"TaskRequested"), ("version", b"1")]
    assert kafka_headers(envelope, TRACEPARENT)[-1] == ("traceparent", TRACEPARENT.encode())


def test_a_malformed_traceparent_is_refused():
    with pytest.raises(ContractError, match="traceparent"):
        kafka_headers(Envelope.wrap(a_task_requested()), "00-xyz")


def test_envelopes_are_immutable():
    envelope = Envelope.wrap(a_task_requested())

    with pytest.raises(ValueError, match="frozen"):
        envelope.subject = "other"  # type: ignore[misc]


def test_the_envelope_id_is_a_uuid():
    assert isinstance(Envelope.wrap(a_task_requested()).id, UUID)
