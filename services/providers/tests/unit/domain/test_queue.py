"""The queue monitor's rules: lag arithmetic, what a dead letter says, its preview, what a replay publishes
(and refuses), paging dead letters newest first, and the state a step job shows."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from funmagic_providers.domain import queue
from funmagic_providers.domain.queue import (
    DeadLetterRecord,
    InvalidDeadLetterCursor,
    NotReplayable,
    PartitionOffsets,
    Replay,
)

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DLQ = "identity.events.dlq"
EVENT_ID = uuid.UUID("0193a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b")
VALUE = json.dumps({"id": str(EVENT_ID), "type": "UserRegistered", "data": {"user_id": "u-1"}}).encode()


def dead_letter(
    *,
    topic: str = DLQ,
    partition: int = 0,
    offset: int = 0,
    at: datetime = T0,
    key: bytes | None = b"u-1",
    value: bytes | None = VALUE,
    origin: bytes | None = b"identity.events",
    extra_headers: tuple[tuple[str, bytes], ...] = (),
) -> DeadLetterRecord:
    headers = [("type", b"UserRegistered"), ("version", b"1"), *extra_headers]
    if origin is not None:
        headers.append(("dlq-original-topic", origin))
    headers += [
        ("dlq-error", b"PermanentError: poisoned by a test hook"),
        ("dlq-consumer", b"credits"),
        ("dlq-original-partition", b"3"),
        ("dlq-original-offset", b"41"),
        ("dlq-attempts", b"1"),
    ]
    return DeadLetterRecord(topic, partition, offset, at, key, value, tuple(headers))


# --- lag ------------------------------------------------------------------------------------------------


def test_lag_is_what_was_written_after_the_committed_offset() -> None:
    assert queue.partition_lag(7, PartitionOffsets(0, beginning=0, end=10)) == 3
    assert queue.partition_lag(10, PartitionOffsets(0, beginning=0, end=10)) == 0


def test_a_group_without_a_commit_or_behind_the_log_start_reads_from_the_beginning() -> None:
    assert queue.partition_lag(None, PartitionOffsets(0, beginning=4, end=10)) == 6
    assert queue.partition_lag(2, PartitionOffsets(0, beginning=4, end=10)) == 6


def test_lag_is_never_negative() -> None:
    assert queue.partition_lag(12, PartitionOffsets(0, beginning=0, end=10)) == 0


def test_a_groups_lag_covers_every_partition_of_the_topic_and_sums_them() -> None:
    offsets = [PartitionOffsets(1, 0, 5), PartitionOffsets(0, 0, 10), PartitionOffsets(2, 3, 3)]

    lag = queue.group_lag("credits", "identity.events", offsets, {0: 8, 1: 5})

    assert [(p.partition, p.committed, p.end, p.lag) for p in lag.partitions] == [
        (0, 8, 10, 2),
        (1, 5, 5, 0),
        (2, None, 3, 0),
    ]
    assert lag.lag == 2


# --- what a dead letter says ----------------------------------------------------------------------------


def test_a_dead_letter_reads_its_dlq_headers_apart_from_the_original_ones() -> None:
    letter = queue.read_dead_letter(dead_letter())

    assert (letter.event_id, letter.event_type, letter.key) == (str(EVENT_ID), "UserRegistered", "u-1")
    assert letter.error == "PermanentError: poisoned by a test hook"
    assert (letter.consumer, letter.origin_topic) == ("credits", "identity.events")
    assert (letter.origin_partition, letter.origin_offset, letter.attempts) == (3, 41, 1)
    assert letter.headers == {"type": "UserRegistered", "version": "1"}
    assert (letter.value_preview, letter.value_size, letter.value_truncated) == (
        VALUE.decode(),
        len(VALUE),
        False,
    )


def test_a_value_that_is_no_envelope_still_shows_without_an_event() -> None:
    letter = queue.read_dead_letter(dead_letter(value=b"{not json", key=None))

    assert (letter.event_id, letter.event_type, letter.key) == (None, None, None)
    assert letter.value_preview == "{not json"


def test_the_preview_is_cut_at_the_cap_without_breaking_a_character() -> None:
    value = ("a" * 9 + "é" * 10).encode()  # "é" is two bytes: the cap at 10 falls inside the first one

    preview, truncated = queue.value_preview(value, limit=10)

    assert (preview, truncated) == ("a" * 9, True)
    assert queue.value_preview(b"x" * 10, limit=10) == ("x" * 10, False)
    assert queue.value_preview(b"\xff\xfe ok", limit=10) == ("\ufffd\ufffd ok", False)
    assert queue.value_preview(None) == ("", False)


# --- what a replay publishes ----------------------------------------------------------------------------


def test_a_replay_is_the_original_message_for_its_origin_topic() -> None:
    replay = queue.replay_of(dead_letter(partition=2, offset=9, extra_headers=(("traceparent", b"00-ab"),)))

    assert replay == Replay(
        event_id=EVENT_ID,
        dead_letter_topic=DLQ,
        partition=2,
        offset=9,
        origin_topic="identity.events",
        key="u-1",
        value=VALUE,
        headers=(("type", "UserRegistered"), ("version", "1"), ("traceparent", "00-ab")),
    )


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (dead_letter(origin=None), "no dlq-original-topic header"),
        (dead_letter(origin=b"tasks.events"), "names 'tasks.events' as its origin"),
        (dead_letter(topic="identity.events"), "is not a dead-letter topic"),
        (dead_letter(value=b"{not json"), "not an event envelope"),
        (dead_letter(value=json.dumps({"id": "not-a-uuid"}).encode()), "not an event envelope"),
        (dead_letter(key=None), "has no key"),
        (dead_letter(key=b"\xff"), "not UTF-8"),
        (dead_letter(extra_headers=(("traceparent", b"\xff"),)), "not UTF-8"),
    ],
)
def test_a_message_that_cannot_be_replayed_exactly_is_not_replayed(
    record: DeadLetterRecord, reason: str
) -> None:
    decision = queue.replay_of(record)

    assert isinstance(decision, NotReplayable)
    assert reason in decision.reason


# --- paging newest first --------------------------------------------------------------------------------


def walk(partitions: list[PartitionOffsets], records: dict[int, list[DeadLetterRecord]], limit: int):
    """Every page the rules give, read from `records` as Kafka would."""
    pages, cursor = [], None
    while True:
        ranges = queue.page_ranges(partitions, cursor, limit)
        read = {p: [r for r in records[p] if start <= r.offset < stop] for p, (start, stop) in ranges.items()}
        taken = queue.newest_first(read, limit)
        empty = {p: start for p, (start, _) in ranges.items() if not read[p]}
        pages.append([(r.partition, r.offset) for r in taken])
        following = queue.next_cursor(partitions, cursor, taken, empty=empty)
        if following is None:
            return pages
        cursor = queue.decode_cursor(queue.encode_cursor(following))
        assert len(pages) < 50, "paging does not end"


def test_pages_go_newest_first_across_partitions_and_show_each_message_once() -> None:
    # Partition 0 holds offsets 0..4 at minutes 0, 2, 4, 6, 8; partition 1 offsets 0..2 at 1, 3, 5.
    records = {
        0: [dead_letter(partition=0, offset=o, at=T0 + timedelta(minutes=2 * o)) for o in range(5)],
        1: [dead_letter(partition=1, offset=o, at=T0 + timedelta(minutes=2 * o + 1)) for o in range(3)],
    }
    partitions = [PartitionOffsets(0, 0, 5), PartitionOffsets(1, 0, 3)]

    pages = walk(partitions, records, limit=3)

    assert pages == [[(0, 4), (0, 3), (1, 2)], [(0, 2), (1, 1), (0, 1)], [(1, 0), (0, 0)]]


def test_a_partition_whose_times_go_back_is_still_paged_from_its_newest_offset_down() -> None:
    # Offset 1 carries an older time than offset 0: a page must not skip it and lose it.
    records = {0: [dead_letter(offset=0, at=T0 + timedelta(minutes=5)), dead_letter(offset=1, at=T0)]}
    records[1] = [dead_letter(partition=1, offset=0, at=T0 + timedelta(minutes=3))]
    partitions = [PartitionOffsets(0, 0, 2), PartitionOffsets(1, 0, 1)]

    pages = walk(partitions, records, limit=1)

    assert sorted(item for page in pages for item in page) == [(0, 0), (0, 1), (1, 0)]
    assert all(len(page) == 1 for page in pages)


def test_offsets_missing_from_a_log_end_the_paging_instead_of_looping() -> None:
    records = {0: [dead_letter(offset=5, at=T0)]}  # offsets 0..4 are gone (no such messages)
    partitions = [PartitionOffsets(0, 0, 6)]

    pages = walk(partitions, records, limit=2)

    assert pages[0] == [(0, 5)]
    assert not any(pages[1:])


def test_an_empty_topic_has_one_empty_page() -> None:
    assert walk([PartitionOffsets(0, 3, 3)], {0: []}, limit=10) == [[]]


def test_a_cursor_goes_through_its_text_form_unchanged() -> None:
    assert queue.decode_cursor(queue.encode_cursor({0: 1, 5: 12_000})) == {0: 1, 5: 12_000}


@pytest.mark.parametrize("cursor", ["", "not base64!", "YQ==", "MDoxLA==", "LTE6MQ=="])
def test_a_forged_cursor_is_refused(cursor: str) -> None:
    # "YQ==" is "a", "MDoxLA==" is "0:1," and "LTE6MQ==" is "-1:1": none is a cursor.
    with pytest.raises(InvalidDeadLetterCursor):
        queue.decode_cursor(cursor)


# --- step jobs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retries", "delays", "state"),
    [
        ("queued", 0, 0, "queued"),
        ("queued", 0, 2, "delayed"),
        ("queued", 1, 0, "retrying"),
        ("queued", 1, 1, "delayed"),
        ("running", 3, 0, "running"),
        ("completed", 0, 0, None),
        ("failed", 1, 0, None),
        ("cancelled", 0, 0, None),
    ],
)
def test_a_step_job_shows_as_queued_delayed_retrying_or_running(
    status: str, retries: int, delays: int, state: str | None
) -> None:
    assert queue.queue_state(status, retries=retries, delays=delays) == state
