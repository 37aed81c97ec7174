"""The topic registry: every Kafka topic the platform publishes to, with its settings.

Services publish only to their own `<service>.events` topic; each consuming service has a
dead-letter topic per topic it reads, named `<topic>.dlq`. Topics keep events forever
(retention -1) so a new consumer can rebuild from offset 0.

A dead-lettered message keeps the original key, value and headers and adds the ``DLQ_*_HEADER`` headers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from funmagic_contracts.errors import ContractError

__all__ = [
    "ALL_TOPICS",
    "CREDITS_EVENTS",
    "DEAD_LETTER_TOPICS",
    "DLQ_ATTEMPTS_HEADER",
    "DLQ_CONSUMER_HEADER",
    "DLQ_ERROR_HEADER",
    "DLQ_ORIGINAL_OFFSET_HEADER",
    "DLQ_ORIGINAL_PARTITION_HEADER",
    "DLQ_ORIGINAL_TOPIC_HEADER",
    "EVENT_TOPICS",
    "IDENTITY_EVENTS",
    "PROVIDERS_EVENTS",
    "RETAIN_FOREVER",
    "STORAGE_EVENTS",
    "TASKS_EVENTS",
    "TopicSpec",
    "dead_letter_topic",
    "origin_topic",
    "topic_by_name",
    "topic_for_source",
]

RETAIN_FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    name: str
    owner: str
    description: str
    retention_ms: int = RETAIN_FOREVER
    config: dict[str, str] = field(default_factory=dict)

    def kafka_config(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), **self.config}


IDENTITY_EVENTS = TopicSpec("identity.events", "identity", "Accounts: registration, verification, roles.")
TASKS_EVENTS = TopicSpec("tasks.events", "tasks", "Task lifecycle and step requests.")
CREDITS_EVENTS = TopicSpec("credits.events", "credits", "The credits ledger: every balance change.")
STORAGE_EVENTS = TopicSpec("storage.events", "storage", "Assets created, published, deleted.")
PROVIDERS_EVENTS = TopicSpec("providers.events", "providers", "Step execution progress and provider health.")

EVENT_TOPICS: tuple[TopicSpec, ...] = (
    IDENTITY_EVENTS,
    TASKS_EVENTS,
    CREDITS_EVENTS,
    STORAGE_EVENTS,
    PROVIDERS_EVENTS,
)


def dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def origin_topic(dead_letter: str) -> str:
    """The topic whose failed messages a dead-letter topic holds: `identity.events.dlq` → `identity.events`
    (a topic that is no dead-letter topic comes back as it is)."""
    return dead_letter.removesuffix(dead_letter_topic(""))


DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(dead_letter_topic(t.name), "consumers", f"Messages of {t.name} that kept failing.")
    for t in EVENT_TOPICS
)

ALL_TOPICS: tuple[TopicSpec, ...] = EVENT_TOPICS + DEAD_LETTER_TOPICS

# Headers a consumer adds when it moves a message to `<topic>.dlq` (values are UTF-8 text).
DLQ_ERROR_HEADER = "dlq-error"
DLQ_CONSUMER_HEADER = "dlq-consumer"
DLQ_ORIGINAL_TOPIC_HEADER = "dlq-original-topic"
DLQ_ORIGINAL_PARTITION_HEADER = "dlq-original-partition"
DLQ_ORIGINAL_OFFSET_HEADER = "dlq-original-offset"
DLQ_ATTEMPTS_HEADER = "dlq-attempts"

_BY_SOURCE = {t.owner: t for t in EVENT_TOPICS}
_BY_NAME = {t.name: t for t in ALL_TOPICS}


def topic_for_source(source: str) -> TopicSpec:
    """The topic a service publishes its events to."""
    try:
        return _BY_SOURCE[source]
    except KeyError:
        raise ContractError(f"unknown source service {source!r}; known: {sorted(_BY_SOURCE)}") from None


def topic_by_name(name: str) -> TopicSpec:
    """The spec of a topic (event or dead-letter topic) by its Kafka name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ContractError(f"unknown topic {name!r}") from None
