"""`/api/admin/queue/*` (admins): the queue monitor — consumer lag read from Kafka, the dead-letter topics, a
replay of dead letters to their origin topic, the step jobs, the rate limiter and the circuit breakers.

Every route is forwarded to providers (which owns the step jobs and the limiter, and keeps the replays):

    GET  /api/admin/queue/lag                             /v1/admin/queue/lag          QueueLag
    GET  /api/admin/queue/dead-letters                    /v1/admin/queue/dead-letters DeadLetterTopicList
    GET  /api/admin/queue/dead-letters/{topic}/messages   …/{topic}/messages           DeadLetterPage
         (query `DeadLetterQuery`)
    POST /api/admin/queue/dead-letters/{topic}/replay     …/{topic}/replay             ReplayResult
         (body `ReplayRequest`)
    GET  /api/admin/queue/step-jobs                       /v1/admin/queue/step-jobs    StepJobStats
    GET  /api/admin/queue/limiter                         /v1/admin/queue/limiter      LimiterStates
    GET  /api/admin/queue/circuits                        /v1/admin/queue/circuits     CircuitStates

`{topic}` is a dead-letter topic's `key`: its Kafka name with each `.` written `-`
(`identity.events.dlq` → `identity-events-dlq`), since a path segment the gateway forwards holds letters,
digits, `-` and `_` only. Pure: pydantic and the topic registry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from funmagic_contracts.api.base import Reply, Request
from funmagic_contracts.topics import DEAD_LETTER_TOPICS

__all__ = [
    "DEAD_LETTER_KEYS",
    "MAX_REPLAY",
    "CircuitState",
    "CircuitStates",
    "ConsumerGroupLag",
    "DeadLetterMessage",
    "DeadLetterPage",
    "DeadLetterPartition",
    "DeadLetterPosition",
    "DeadLetterQuery",
    "DeadLetterTopic",
    "DeadLetterTopicList",
    "LagSample",
    "LimiterState",
    "LimiterStates",
    "PartitionLag",
    "QueueLag",
    "ReplayOutcome",
    "ReplayRequest",
    "ReplayResult",
    "StepJobCount",
    "StepJobStats",
    "TopicOffsets",
    "dead_letter_key",
]

MAX_REPLAY = 100
"""The most dead letters one replay request names."""


def dead_letter_key(topic: str) -> str:
    """The path segment naming a dead-letter topic: its Kafka name with `.` written `-`."""
    return topic.replace(".", "-")


DEAD_LETTER_KEYS: dict[str, str] = {dead_letter_key(t.name): t.name for t in DEAD_LETTER_TOPICS}
"""Path key → Kafka name of every dead-letter topic (`identity-events-dlq` → `identity.events.dlq`)."""

# --- lag ------------------------------------------------------------------------------------------------


class PartitionLag(Reply):
    partition: int
    committed_offset: int | None = Field(
        description="The group's committed offset (the next message it will read); null: it has committed "
        "nothing on this partition and starts at the beginning."
    )
    end_offset: int = Field(description="The offset the next message written to the partition gets.")
    lag: int = Field(description="Messages written and not yet processed by the group.")


class LagSample(Reply):
    at: datetime
    lag: int


class ConsumerGroupLag(Reply):
    group: str = Field(description="The consumer group (a service's consumers share its name).")
    topic: str
    state: str | None = Field(
        None, description="Kafka's state of the group (`Stable`, `Empty` when no consumer runs…)."
    )
    members: int | None = Field(None, description="Consumers in the group right now.")
    lag: int = Field(description="The sum over the partitions.")
    partitions: list[PartitionLag]
    trend: list[LagSample] = Field(
        description="Recent samples of `lag`, oldest first (one every few seconds, the last 60 kept)."
    )


class TopicOffsets(Reply):
    topic: str
    kind: Literal["events", "dead_letters"]
    exists: bool = Field(description="False when the topic has not been created on the broker.")
    partitions: int
    messages: int = Field(description="Messages the topic holds (end minus beginning offsets).")
    consumer_groups: list[str] = Field(
        description="Groups with committed offsets on the topic; none for dead-letter topics, whose "
        "messages wait for an admin (browse, replay)."
    )


class QueueLag(Reply):
    sampled_at: datetime
    total_lag: int = Field(description="The sum of every group's lag.")
    groups: list[ConsumerGroupLag] = Field(description="Per consumer group and topic it reads.")
    topics: list[TopicOffsets] = Field(description="Every topic of the platform, dead-letter topics too.")


# --- dead letters ---------------------------------------------------------------------------------------


class DeadLetterPartition(Reply):
    partition: int
    beginning_offset: int
    end_offset: int
    messages: int


class DeadLetterTopic(Reply):
    topic: str = Field(examples=["identity.events.dlq"])
    key: str = Field(description="The topic in the API's paths.", examples=["identity-events-dlq"])
    origin_topic: str = Field(examples=["identity.events"])
    exists: bool
    messages: int = Field(description="Messages the topic holds (end minus beginning offsets).")
    partitions: list[DeadLetterPartition]


class DeadLetterTopicList(Reply):
    items: list[DeadLetterTopic]
    total: int = Field(description="Dead letters over every topic.")


class DeadLetterQuery(Request):
    limit: int = Field(20, ge=1, le=100)
    partition: int | None = Field(None, ge=0, le=9999, description="Only this partition's messages.")
    # base64url of `partition:offset,…`: room for some 60 partitions.
    cursor: str | None = Field(
        None, max_length=1000, pattern=r"^[A-Za-z0-9_=-]*$", description="`next_cursor` of the previous page."
    )


class DeadLetterMessage(Reply):
    partition: int
    offset: int
    timestamp: datetime | None = Field(None, description="When the message was dead-lettered.")
    key: str | None = None
    event_id: str | None = Field(None, description="The envelope's `id` (null: the value is no envelope).")
    event_type: str | None = None
    error: str | None = Field(None, description="Why the consumer gave up (`dlq-error`).")
    consumer: str | None = Field(None, description="The consumer group that gave up (`dlq-consumer`).")
    origin_topic: str | None = None
    origin_partition: int | None = None
    origin_offset: int | None = None
    attempts: int | None = Field(None, description="How many times the handler ran (`dlq-attempts`).")
    headers: dict[str, str] = Field(description="The original message's headers (the dlq-* ones apart).")
    value_preview: str = Field(description="The value as text, cut after a few kilobytes.")
    value_size: int = Field(description="The value's size in bytes.")
    value_truncated: bool
    replayed: bool = Field(description="Whether this event was replayed to its origin topic already.")
    replayed_at: datetime | None = None
    replayed_by: str | None = Field(None, description="The admin's user id.")


class DeadLetterPage(Reply):
    topic: str
    items: list[DeadLetterMessage] = Field(description="Newest first (by time, across partitions).")
    next_cursor: str | None = None


class DeadLetterPosition(Request):
    partition: int = Field(ge=0, le=9999)
    offset: int = Field(ge=0)


class ReplayRequest(Request):
    messages: list[DeadLetterPosition] = Field(min_length=1, max_length=MAX_REPLAY)
    reason: str | None = Field(None, max_length=500, description="Kept in the audit log.")


class ReplayOutcome(Reply):
    partition: int
    offset: int
    status: Literal["replayed", "already_replayed", "not_found", "not_replayable"] = Field(
        description="`replayed`: published again to its origin topic (once the outbox relays it); "
        "`already_replayed`: this event was replayed before and is not published again; `not_found`: no "
        "such message; `not_replayable`: the message is no event envelope, or misses its origin."
    )
    event_id: str | None = None
    origin_topic: str | None = None
    detail: str | None = Field(None, description="Why a message is not replayable.")


class ReplayResult(Reply):
    topic: str
    items: list[ReplayOutcome] = Field(description="One per message asked for, in the order given.")


# --- step jobs, limiter, circuits -------------------------------------------------------------------------


class StepJobCount(Reply):
    scope: Literal["web", "admin"]
    provider: str
    state: Literal["queued", "delayed", "retrying", "running"] = Field(
        description="`queued`: waiting for a runner; `delayed`: held back by the rate limiter or an open "
        "circuit (no retry used); `retrying`: waiting to retry after a provider error or 429; `running`: "
        "claimed by a runner."
    )
    count: int
    oldest_age_seconds: float = Field(description="How long ago the oldest of them was requested.")


class StepJobStats(Reply):
    items: list[StepJobCount]
    totals: dict[str, int] = Field(description="Jobs per state over every provider (all four states).")


class LimiterState(Reply):
    scope: Literal["web", "admin"]
    provider: str
    in_flight: int = Field(description="Calls holding a slot now (unexpired leases).")
    max_concurrency: int | None = Field(None, description="Null: not limited.")
    used_per_minute: int = Field(description="Calls admitted in the current minute window.")
    max_per_minute: int | None = None
    minute_resets_in_seconds: float | None = Field(
        None, description="When the minute window ends (null: no window open)."
    )
    used_per_day: int = Field(description="Calls admitted today (UTC).")
    max_per_day: int | None = None
    day: str = Field(description="The UTC day the daily count is of (YYYY-MM-DD).")


class LimiterStates(Reply):
    items: list[LimiterState]


class CircuitState(Reply):
    scope: Literal["web", "admin"]
    provider: str
    state: Literal["closed", "open", "half_open"]
    consecutive_failures: int
    failure_threshold: int
    opened_at: datetime | None = None
    retry_at: datetime | None = Field(None, description="When an open circuit lets a probe call through.")


class CircuitStates(Reply):
    replica: str = Field(
        description="The providers replica that answered: each runs its own breakers, so with several "
        "replicas this is one replica's view."
    )
    items: list[CircuitState]
