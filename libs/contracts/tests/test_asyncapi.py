import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from funmagic_contracts.asyncapi import build_asyncapi, message_key
from funmagic_contracts.envelope import decode, parse_event
from funmagic_contracts.registry import EVENT_TYPES
from funmagic_contracts.topics import ALL_TOPICS, DEAD_LETTER_TOPICS, EVENT_TOPICS

CONTRACTS_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_ASYNCAPI = CONTRACTS_ROOT / "asyncapi.json"


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(COMMITTED_ASYNCAPI.read_text(encoding="utf-8"))


def resolve(doc: dict, ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert part in node, f"unresolvable {ref}"
        node = node[part]
    return node


def all_refs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in all_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in all_refs(v)]
    return []


def test_the_committed_document_is_what_the_registry_generates(doc):
    assert doc == build_asyncapi()


def test_it_is_an_asyncapi_3_document_with_info(doc):
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"]
    assert isinstance(doc["info"]["version"], str)


def test_there_is_a_channel_for_every_topic_including_dead_letters(doc):
    assert set(doc["channels"]) == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        channel = doc["channels"][topic.name]
        assert channel["address"] == topic.name
        assert channel["bindings"]["kafka"]["topic"] == topic.name
        assert channel["bindings"]["kafka"]["topicConfiguration"]["retention.ms"] == topic.retention_ms


def test_every_reference_in_the_document_resolves(doc):
    refs = all_refs(doc)

    assert refs
    for ref in refs:
        resolve(doc, ref)


def test_every_channel_message_is_a_reference_to_a_component_message(doc):
    for channel in doc["channels"].values():
        assert channel["messages"]
        for message in channel["messages"].values():
            assert set(message) == {"$ref"}
            assert message["$ref"].startswith("#/components/messages/")
            assert "payload" in resolve(doc, message["$ref"])


@pytest.mark.parametrize("model", sorted(EVENT_TYPES.values(), key=message_key), ids=message_key)
def test_every_event_is_a_message_of_its_topic_keyed_by_subject(doc, model):
    key = message_key(model)
    message = resolve(doc, doc["channels"][model.TOPIC]["messages"][key]["$ref"])

    assert message["name"] == model.EVENT_TYPE
    assert message["payload"]["properties"]["type"]["const"] == model.EVENT_TYPE
    assert message["payload"]["properties"]["version"]["const"] == model.EVENT_VERSION
    assert resolve(doc, message["payload"]["properties"]["data"]["$ref"])["title"] == model.EVENT_TYPE
    assert model.SUBJECT_FIELD in message["bindings"]["kafka"]["key"]["description"]


@pytest.mark.parametrize("model", sorted(EVENT_TYPES.values(), key=message_key), ids=message_key)
def test_every_message_example_validates_against_its_payload_and_parses(doc, model):
    key = message_key(model)
    validator = Draft202012Validator(
        {"$ref": f"#/components/messages/{key}/payload", "components": doc["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    example = doc["components"]["messages"][key]["examples"][0]["payload"]

    validator.validate(example)
    assert not validator.is_valid(example | {"type": "SomethingElse"})
    assert not validator.is_valid(example | {"data": {}})
    assert type(parse_event(decode(json.dumps(example).encode()))) is model


def test_each_producing_service_has_one_send_operation_over_its_topic(doc):
    sends = {
        op["channel"]["$ref"]: op
        for op in doc["operations"].values()
        if op["action"] == "send" and op["channel"]["$ref"].endswith(".events")
    }

    assert set(sends) == {f"#/channels/{t.name}" for t in EVENT_TOPICS}
    assert all(op["action"] == "send" for op in doc["operations"].values())
    for ref, op in sends.items():
        channel_messages = resolve(doc, ref)["messages"]
        assert len(op["messages"]) == len(channel_messages)
        for message in op["messages"]:
            assert message["$ref"].startswith(f"{ref}/messages/")
            resolve(doc, message["$ref"])


def test_dead_letter_channels_carry_the_original_message_and_the_error(doc):
    for topic in DEAD_LETTER_TOPICS:
        (message_ref,) = doc["channels"][topic.name]["messages"].values()
        message = resolve(doc, message_ref["$ref"])
        assert "dlq-error" in message["headers"]["properties"]


def test_no_json_schema_local_definitions_leak_into_the_document(doc):
    assert not [r for r in all_refs(doc) if r.startswith("#/$defs/")]
