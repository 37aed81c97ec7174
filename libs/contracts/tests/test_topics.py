import pytest

from funmagic_contracts import topics
from funmagic_contracts.errors import ContractError


def test_every_event_topic_has_a_dead_letter_topic():
    dead_letters = {t.name for t in topics.DEAD_LETTER_TOPICS}

    assert dead_letters == {f"{t.name}.dlq" for t in topics.EVENT_TOPICS}
    assert {t.name for t in topics.ALL_TOPICS} == dead_letters | {t.name for t in topics.EVENT_TOPICS}


def test_a_dead_letter_topic_names_its_origin_and_other_topics_are_their_own():
    assert [topics.origin_topic(t.name) for t in topics.DEAD_LETTER_TOPICS] == [
        t.name for t in topics.EVENT_TOPICS
    ]
    assert topics.origin_topic("identity.events") == "identity.events"


def test_topics_keep_events_forever_by_default():
    assert all(t.kafka_config()["retention.ms"] == "-1" for t in topics.ALL_TOPICS)


def test_each_service_publishes_to_its_own_topic():
    assert topics.topic_for_source("tasks") is topics.TASKS_EVENTS
    assert topics.topic_for_source("credits").name == "credits.events"


def test_an_unknown_source_or_topic_is_a_contract_error():
    with pytest.raises(ContractError, match="gateway"):
        topics.topic_for_source("gateway")
    with pytest.raises(ContractError, match=r"nope\.events"):
        topics.topic_by_name("nope.events")


def test_a_topic_is_found_by_its_kafka_name():
    assert topics.topic_by_name("storage.events.dlq").owner == "consumers"
