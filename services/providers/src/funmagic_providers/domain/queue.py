"""The queue monitor's rules, pure: consumer lag, what a dead letter says, a page of dead letters newest
first, what a replay publishes again, and the state a step job shows in the monitor.

- Lag of a consumer group on a partition: the messages written after the group's committed offset. A group
  that committed nothing there (or whose offset fell behind the log's start) reads from the beginning, as
  our consumers do (`auto_offset_reset="earliest"`), so all the partition holds is its lag.
- A dead letter is the original message (key, value, headers) plus the `dlq-*` headers the consumer added
  (`funmagic_kit.consumer`). A replay sends the original back to its origin topic: the value byte for
  byte, the key, the headers without the `dlq-*` ones. It is keyed by the envelope's event id, so an event
  is replayed once, however many times (or by however many consumers) it was dead-lettered.
- A page of dead letters is newest first across partitions: each partition is read backwards from the
  cursor, and the pages merge the partitions by time; the cursor keeps, per partition, the offset below
  which nothing was shown yet.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from funmagic_contracts.topics import (
    DLQ_ATTEMPTS_HEADER,
    DLQ_CONSUMER_HEADER,
    DLQ_ERROR_HEADER,
    DLQ_ORIGINAL_OFFSET_HEADER,
    DLQ_ORIGINAL_PARTITION_HEADER,
    DLQ_ORIGINAL_TOPIC_HEADER,
    origin_topic,
)
from funmagic_kit.errors import NotFound, Refused

__all__ = [
    "DLQ_HEADER_PREFIX",
    "PREVIEW_BYTES",
    "QUEUE_STATES",
    "TREND_LENGTH",
    "ConsumerGroupOffsets",
    "DeadLetter",
    "DeadLetterRecord",
    "GroupLag",
    "InvalidDeadLetterCursor",
    "LagSample",
    "LimiterUsage",
    "NoSuchDeadLetterTopic",
    "NotReplayable",
    "PartitionLag",
    "PartitionOffsets",
    "QueueState",
    "Replay",
    "ReplayRecord",
    "StepJobCount",
    "decode_cursor",
    "encode_cursor",
    "group_lag",
    "newest_first",
    "next_cursor",
    "page_ranges",
    "partition_lag",
    "queue_state",
    "read_dead_letter",
    "replay_of",
    "value_preview",
]

DLQ_HEADER_PREFIX = "dlq-"
PREVIEW_BYTES = 4096
"""How much of a dead letter's value the monitor shows (events are small; a huge poison value is cut)."""
TREND_LENGTH = 60
"""Lag samples kept per group and topic (one every few seconds: the last few minutes)."""


class NoSuchDeadLetterTopic(NotFound, code="dead_letter_topic_not_found"):
    """The path names no dead-letter topic of the platform."""


class InvalidDeadLetterCursor(Refused, code="invalid_cursor"):
    def __init__(self) -> None:
        super().__init__("the cursor is invalid; start again without it", field="cursor")


# --- lag ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionOffsets:
    """Where a partition's log starts (`beginning`) and the offset its next message gets (`end`)."""

    partition: int
    beginning: int
    end: int

    @property
    def messages(self) -> int:
        return max(0, self.end - self.beginning)


@dataclass(frozen=True)
class PartitionLag:
    partition: int
    committed: int | None
    end: int
    lag: int


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    partitions: tuple[PartitionLag, ...]

    @property
    def lag(self) -> int:
        return sum(partition.lag for partition in self.partitions)


@dataclass(frozen=True)
class LagSample:
    at: datetime
    lag: int


@dataclass(frozen=True)
class ConsumerGroupOffsets:
    """A consumer group as Kafka's admin API tells it: its state, its members, and its committed offsets
    per topic and partition (only those it committed)."""

    group: str
    state: str | None
    members: int | None
    committed: Mapping[str, Mapping[int, int]]


def partition_lag(committed: int | None, offsets: PartitionOffsets) -> int:
    """Messages of the partition the group has not processed yet (never negative)."""
    # Without a commit, or behind the log's start (retention removed what it had not read), the group
    # starts at the beginning.
    start = offsets.beginning if committed is None else max(committed, offsets.beginning)
    return max(0, offsets.end - start)


def group_lag(
    group: str, topic: str, offsets: Sequence[PartitionOffsets], committed: Mapping[int, int]
) -> GroupLag:
    """A group's lag on every partition of `topic`; `committed` holds the partitions it committed on."""
    return GroupLag(
        group=group,
        topic=topic,
        partitions=tuple(
            PartitionLag(
                partition=p.partition,
                committed=committed.get(p.partition),
                end=p.end,
                lag=partition_lag(committed.get(p.partition), p),
            )
            for p in sorted(offsets, key=lambda p: p.partition)
        ),
    )


# --- dead letters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterRecord:
    """A message of a dead-letter topic as Kafka holds it."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class DeadLetter:
    """What a dead letter says: the `dlq-*` headers read, the original headers, the envelope's id and
    type (when the value is one), and a preview of the value."""

    record: DeadLetterRecord
    key: str | None
    event_id: str | None
    event_type: str | None
    error: str | None
    consumer: str | None
    origin_topic: str | None
    origin_partition: int | None
    origin_offset: int | None
    attempts: int | None
    headers: dict[str, str]
    value_preview: str
    value_size: int
    value_truncated: bool


def value_preview(value: bytes | None, limit: int = PREVIEW_BYTES) -> tuple[str, bool]:
    """The value as text, at most `limit` bytes of it, and whether it was cut. Bytes that are not UTF-8
    show as U+FFFD; a character the cut splits is left out rather than shown broken."""
    if not value:
        return "", False
    if len(value) <= limit:
        return value.decode("utf-8", errors="replace"), False
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # final=False: an incomplete sequence at the cut stays in the decoder instead of becoming U+FFFD.
    return decoder.decode(value[:limit], final=False), True


def read_dead_letter(record: DeadLetterRecord, *, preview_bytes: int = PREVIEW_BYTES) -> DeadLetter:
    dlq = {name: _text(value) for name, value in record.headers if name.startswith(DLQ_HEADER_PREFIX)}
    original = {
        name: _text(value) for name, value in record.headers if not name.startswith(DLQ_HEADER_PREFIX)
    }
    event_id, event_type = _envelope_id_and_type(record.value)
    preview, truncated = value_preview(record.value, preview_bytes)
    return DeadLetter(
        record=record,
        key=None if record.key is None else _text(record.key),
        event_id=None if event_id is None else str(event_id),
        event_type=event_type,
        error=dlq.get(DLQ_ERROR_HEADER),
        consumer=dlq.get(DLQ_CONSUMER_HEADER),
        origin_topic=dlq.get(DLQ_ORIGINAL_TOPIC_HEADER),
        origin_partition=_integer(dlq.get(DLQ_ORIGINAL_PARTITION_HEADER)),
        origin_offset=_integer(dlq.get(DLQ_ORIGINAL_OFFSET_HEADER)),
        attempts=_integer(dlq.get(DLQ_ATTEMPTS_HEADER)),
        headers=original,
        value_preview=preview,
        value_size=len(record.value or b""),
        value_truncated=truncated,
    )


@dataclass(frozen=True)
class Replay:
    """A dead letter to publish again: the original message, bound for its origin topic."""

    event_id: uuid.UUID
    dead_letter_topic: str
    partition: int
    offset: int
    origin_topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class NotReplayable:
    reason: str


@dataclass(frozen=True)
class ReplayRecord:
    """An event replayed before: from which dead letter, by whom, when."""

    event_id: str
    dead_letter_topic: str
    partition: int
    offset: int
    origin_topic: str
    replayed_by: str
    replayed_at: datetime


def replay_of(record: DeadLetterRecord) -> Replay | NotReplayable:
    """What replaying `record` publishes, or why it cannot be replayed.

    The origin is the dead-letter topic's own (`x.dlq` → `x`); a `dlq-original-topic` header naming another
    topic is refused, so no header can send a message to a topic of an admin's choosing. The event id (the
    replay's identity) comes from the envelope in the value; a value that is no envelope with an id, a
    message without a text key, or a header that is not text (the outbox keeps them as text) cannot be
    replayed exactly, so it is not replayed at all.
    """
    origin = origin_topic(record.topic)
    if origin == record.topic:
        return NotReplayable(f"{record.topic} is not a dead-letter topic")
    named = next((v for k, v in record.headers if k == DLQ_ORIGINAL_TOPIC_HEADER), None)
    if named is None:
        return NotReplayable("the message has no dlq-original-topic header")
    if named != origin.encode():
        return NotReplayable(f"the message names {_text(named)!r} as its origin, not {origin!r}")
    event_id, _ = _envelope_id_and_type(record.value)
    if event_id is None or record.value is None:
        return NotReplayable("the value is not an event envelope with an id")
    try:
        key = None if record.key is None else record.key.decode("utf-8")
        headers = tuple(
            (name, value.decode("utf-8"))
            for name, value in record.headers
            if not name.startswith(DLQ_HEADER_PREFIX)
        )
    except UnicodeDecodeError:
        return NotReplayable("the key or a header is not UTF-8 text")
    if key is None:
        return NotReplayable("the message has no key")
    return Replay(
        event_id=event_id,
        dead_letter_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        origin_topic=origin,
        key=key,
        value=record.value,
        headers=headers,
    )


def _envelope_id_and_type(value: bytes | None) -> tuple[uuid.UUID | None, str | None]:
    """The `id` and `type` of the envelope in a value, leniently: a value that fails its contract in some
    other way (the reason it was dead-lettered, maybe) still names its event."""
    if not value:
        return None, None
    try:
        document = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(document, dict):
        return None, None
    event_type = document.get("type") if isinstance(document.get("type"), str) else None
    try:
        event_id = uuid.UUID(document["id"]) if isinstance(document.get("id"), str) else None
    except ValueError:
        event_id = None
    return event_id, event_type


def _text(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


# --- a page of dead letters, newest first -----------------------------------------------------------------

Cursor = dict[int, int]
"""Per partition, the offset below which the next page continues (nothing at or above it is left)."""
_CURSOR = re.compile(r"^\d{1,4}:\d{1,19}(,\d{1,4}:\d{1,19})*$")


def page_ranges(
    partitions: Sequence[PartitionOffsets], cursor: Cursor | None, limit: int
) -> dict[int, tuple[int, int]]:
    """Per partition, the offsets `[start, stop)` to read for the next page: up to `limit` of the newest
    messages below the cursor (every partition could hold the whole page)."""
    ranges = {}
    for p in partitions:
        stop = p.end if cursor is None else min(cursor.get(p.partition, p.beginning), p.end)
        start = max(p.beginning, stop - limit)
        if start < stop:
            ranges[p.partition] = (start, stop)
    return ranges


def newest_first(records: Mapping[int, Sequence[DeadLetterRecord]], limit: int) -> list[DeadLetterRecord]:
    """The `limit` newest of the records, merging the partitions by time.

    Each partition is taken newest offset first, always from its head, so what a page shows of a partition
    is the run of offsets just below the cursor and the next page can continue below it — even when a
    partition's timestamps are not in offset order.
    """
    heads = {p: sorted(rs, key=lambda r: r.offset, reverse=True) for p, rs in records.items() if rs}
    taken: list[DeadLetterRecord] = []
    while heads and len(taken) < limit:
        partition = max(heads, key=lambda p: (_epoch(heads[p][0]), -p))
        taken.append(heads[partition].pop(0))
        if not heads[partition]:
            del heads[partition]
    return taken


def next_cursor(
    partitions: Sequence[PartitionOffsets],
    cursor: Cursor | None,
    taken: Sequence[DeadLetterRecord],
    *,
    empty: Mapping[int, int] | None = None,
) -> Cursor | None:
    """The cursor after a page that showed `taken`; None when nothing older is left in any partition.

    `empty`: partitions whose range held no message at all (offsets a log can skip), with the range's
    start, so the next page goes on below it instead of reading the same gap again."""
    following = {}
    for p in partitions:
        shown = [r.offset for r in taken if r.partition == p.partition]
        before = p.end if cursor is None else min(cursor.get(p.partition, p.beginning), p.end)
        if shown:
            following[p.partition] = min(shown)
        elif empty is not None and p.partition in empty:
            following[p.partition] = min(before, empty[p.partition])
        else:
            following[p.partition] = before
    left = any(following[p.partition] > p.beginning for p in partitions)
    return following if left else None


def encode_cursor(cursor: Cursor) -> str:
    text = ",".join(f"{partition}:{offset}" for partition, offset in sorted(cursor.items()))
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str) -> Cursor:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidDeadLetterCursor() from None
    if not _CURSOR.match(text):
        raise InvalidDeadLetterCursor()
    pairs = [item.split(":") for item in text.split(",")]
    return {int(partition): int(offset) for partition, offset in pairs}


def _epoch(record: DeadLetterRecord) -> float:
    return record.timestamp.timestamp() if record.timestamp is not None else 0.0


# --- the limiter and the circuits in the monitor -----------------------------------------------------------


@dataclass(frozen=True)
class LimiterUsage:
    """What a provider's limiter keys hold now (`adapters.rate_limiter`)."""

    in_flight: int  # unexpired leases
    used_per_minute: int
    minute_resets_in_seconds: float | None  # None: no minute window open
    used_per_day: int
    day: str  # the UTC day counted (YYYY-MM-DD)


# --- step jobs in the monitor ---------------------------------------------------------------------------

QueueState = Literal["queued", "delayed", "retrying", "running"]
QUEUE_STATES: tuple[QueueState, ...] = ("queued", "delayed", "retrying", "running")


@dataclass(frozen=True)
class DueLook:
    """What the step runner sees when it looks at the queue: the (scope, provider) pairs with a job due
    now, and the seconds until the next job falls due (≤ 0: one is due now; None: nothing queued or
    running)."""

    providers: list[tuple[str, str]]
    seconds_until_due: float | None


@dataclass(frozen=True)
class StepJobCount:
    """How many unfinished jobs of a provider are in a state, and how long ago the oldest was requested."""

    scope: str
    provider: str
    state: QueueState
    count: int
    oldest_age_seconds: float


def queue_state(status: str, *, retries: int, delays: int) -> QueueState | None:
    """How the monitor shows an unfinished step job (`domain.step_job`); None for a finished one.

    A queued job waits: `delayed` while the limiter or an open circuit holds it back (its `delays` count the
    current wait; no retry used), `retrying` when it waits for a retry after a provider error or 429, else
    `queued`. The store counts jobs by the same rule in SQL (`adapters.queue_records`).
    """
    if status == "running":
        return "running"
    if status != "queued":
        return None
    if delays > 0:
        return "delayed"
    if retries > 0:
        return "retrying"
    return "queued"
