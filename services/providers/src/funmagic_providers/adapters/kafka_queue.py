"""Kafka as the queue monitor reads it (the `KafkaQueue` port), with aiokafka.

- Topics and their partitions: the admin client's metadata (`describe_topics`; the broker creates no
  topic on a metadata request, `auto.create.topics.enable=false`).
- Beginning and end offsets: a group-less consumer's `beginning_offsets` / `end_offsets` (ListOffsets).
- Consumer groups: the admin client's `list_consumer_groups`, `list_consumer_group_offsets` (OffsetFetch,
  one per group, a few at a time) and `describe_consumer_groups` (state, members) for the groups that read
  our topics. Groups that read nothing of ours (tests, other applications) are left out. Each group's
  coordinator is looked up once and remembered (forgotten when a round fails), so a round costs one
  OffsetFetch per group and one DescribeGroups per group that reads our topics.
- Messages of a partition: the same consumer, assigned the partition and sought to the start; one read at
  a time (a lock), since assignment and position are the consumer's state.

Callers speak the registry's topic and group names; with a deployment prefix (`KafkaNames`) this adapter
puts it on what it asks Kafka and takes it off what it reports, and leaves out groups of other prefixes.

The clients start on first use, so building the service needs no broker; `close` stops them. Kafka
errors become `TransientError` (503 at the edge: the monitor is only as available as the broker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from funmagic_kit.errors import TransientError
from funmagic_kit.kafka import KafkaNames
from funmagic_providers.domain.queue import ConsumerGroupOffsets, DeadLetterRecord, PartitionOffsets

__all__ = ["KafkaQueueReader"]

# OffsetFetch requests in flight at once (one per consumer group).
_GROUPS_AT_ONCE = 16


class KafkaQueueReader:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        request_timeout_ms: int = 10_000,
        read_timeout_seconds: float = 5.0,
        names: KafkaNames | None = None,
    ) -> None:
        self._names = names or KafkaNames()
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._read_timeout_seconds = read_timeout_seconds
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._starting = asyncio.Lock()
        self._reading = asyncio.Lock()
        self._coordinators: dict[str, int] = {}  # consumer group → the broker coordinating it

    async def close(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()

    async def offsets(self, topics: Sequence[str]) -> dict[str, list[PartitionOffsets] | None]:
        physical = await self._physical_offsets([self._names.topic(t) for t in topics])
        return {self._names.logical_topic(topic): offsets for topic, offsets in physical.items()}

    async def _physical_offsets(self, topics: Sequence[str]) -> dict[str, list[PartitionOffsets] | None]:
        admin, consumer = await self._clients()
        with _unavailable("read the topics' offsets"):
            described = await admin.describe_topics(list(topics))
            partitions: dict[str, list[int] | None] = {topic: None for topic in topics}
            for topic in described:
                if topic["error_code"] == 0 and topic["topic"] in partitions:
                    partitions[topic["topic"]] = sorted(p["partition"] for p in topic["partitions"])
            wanted = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps or ()]
            beginning = await consumer.beginning_offsets(wanted) if wanted else {}
            end = await consumer.end_offsets(wanted) if wanted else {}
        return {
            topic: None
            if numbers is None
            else [
                PartitionOffsets(p, beginning[TopicPartition(topic, p)], end[TopicPartition(topic, p)])
                for p in numbers
            ]
            for topic, numbers in partitions.items()
        }

    async def consumer_groups(self, topics: Sequence[str]) -> list[ConsumerGroupOffsets]:
        admin, _ = await self._clients()
        ours = {self._names.topic(t) for t in topics}
        limit = asyncio.Semaphore(_GROUPS_AT_ONCE)

        async def committed(group: str) -> dict[str, dict[int, int]]:
            async with limit:
                offsets = await admin.list_consumer_group_offsets(
                    group, group_coordinator_id=await self._coordinator(admin, group)
                )
            by_topic: dict[str, dict[int, int]] = {}
            for tp, meta in offsets.items():
                if tp.topic in ours and meta.offset >= 0:  # -1: nothing committed there
                    topic = self._names.logical_topic(tp.topic)
                    by_topic.setdefault(topic, {})[tp.partition] = meta.offset
            return by_topic

        async def described_group(group: str) -> Any:
            # One group per request: aiokafka 0.14 fails to decode a DescribeGroups answer about several
            # groups (a "buffer underrun", and the connection is dropped).
            async with limit:
                node = await self._coordinator(admin, group)
                return (await admin.describe_consumer_groups([group], group_coordinator_id=node))[0]

        with _unavailable("read the consumer groups"), self._forgetting_coordinators():
            listed = sorted({group[0] for group in await admin.list_consumer_groups()})
            commits = dict(zip(listed, await asyncio.gather(*(committed(g) for g in listed)), strict=True))
            reading = [group for group in listed if commits[group]]
            described = await asyncio.gather(*(described_group(g) for g in reading))
        states: dict[str, tuple[str | None, int | None]] = {}
        for response in described:
            for group in response.to_object()["groups"]:
                states[group["group"]] = (group["state"] or None, len(group["members"]))
        return [
            ConsumerGroupOffsets(
                group=self._names.logical_group(group),
                state=states.get(group, (None, None))[0],
                members=states.get(group, (None, None))[1],
                committed=commits[group],
            )
            for group in reading
        ]

    async def read(self, topic: str, partition: int, start: int, stop: int) -> list[DeadLetterRecord]:
        if start >= stop:
            return []
        _, consumer = await self._clients()
        tp = TopicPartition(self._names.topic(topic), partition)
        records: list[DeadLetterRecord] = []
        loop = asyncio.get_running_loop()
        async with self._reading:
            with _unavailable(f"read {topic}"):
                consumer.assign([tp])
                consumer.seek(tp, start)
                deadline = loop.time() + self._read_timeout_seconds
                # The position passes every offset read, gaps included (a log may skip offsets), so it,
                # not the count of records, says when the range has been read.
                while await consumer.position(tp) < stop and loop.time() < deadline:
                    remaining_ms = max(1, int((deadline - loop.time()) * 1000))
                    batch = await consumer.getmany(
                        tp, timeout_ms=min(remaining_ms, 500), max_records=stop - start
                    )
                    for record in batch.get(tp, ()):
                        if start <= record.offset < stop:
                            records.append(_record(record, topic))
        return records

    async def _coordinator(self, admin: AIOKafkaAdminClient, group: str) -> int:
        node = self._coordinators.get(group)
        if node is None:
            node = self._coordinators[group] = await admin.find_coordinator(group)
        return node

    @contextlib.contextmanager
    def _forgetting_coordinators(self) -> Iterator[None]:
        """A failed round may be a coordinator that moved: the next round looks them up again."""
        try:
            yield
        except BaseException:
            self._coordinators.clear()
            raise

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        async with self._starting:
            if self._admin is None or self._consumer is None:
                with _unavailable("connect to Kafka"):
                    admin = AIOKafkaAdminClient(
                        bootstrap_servers=self._bootstrap_servers,
                        client_id=f"{self._client_id}-queue-monitor",
                        request_timeout_ms=self._request_timeout_ms,
                    )
                    await admin.start()
                    consumer = AIOKafkaConsumer(
                        bootstrap_servers=self._bootstrap_servers,
                        client_id=f"{self._client_id}-queue-monitor",
                        group_id=None,  # reads only: no group, no commits, nobody's lag changes
                        enable_auto_commit=False,
                        auto_offset_reset="earliest",
                        request_timeout_ms=self._request_timeout_ms,
                    )
                    try:
                        await consumer.start()
                    except BaseException:
                        await admin.close()
                        raise
                self._admin, self._consumer = admin, consumer
            return self._admin, self._consumer


def _record(record: Any, topic: str) -> DeadLetterRecord:
    timestamp = (
        datetime.fromtimestamp(record.timestamp / 1000, UTC)
        if record.timestamp and record.timestamp > 0
        else None
    )
    return DeadLetterRecord(
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=timestamp,
        key=record.key,
        value=record.value,
        headers=tuple((name, bytes(value or b"")) for name, value in record.headers or ()),
    )


@contextlib.contextmanager
def _unavailable(action: str) -> Iterator[None]:
    try:
        yield
    except (KafkaError, OSError, TimeoutError) as error:
        raise TransientError(f"cannot {action}: {error!r}") from error
