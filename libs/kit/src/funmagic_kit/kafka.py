"""Kafka clients with the platform's settings: idempotent producer, low-latency consumers."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

__all__ = ["KafkaNames", "create_producer", "create_topics", "delete_topics", "kafka_is_reachable"]


@dataclass(frozen=True)
class KafkaNames:
    """Where one deployment's topics and consumer groups live on a Kafka cluster it may share.

    Code everywhere speaks the registry's logical names (`tasks.events`, group `credits`); only the Kafka
    clients translate, with `KAFKA_TOPIC_PREFIX` in front of both (`blue.tasks.events`, `blue.credits`),
    so two platforms with different prefixes on one cluster never take each other's events. The empty
    prefix (the default) leaves every name as it is.
    """

    prefix: str = ""

    def topic(self, logical: str) -> str:
        return self.prefix + logical

    def logical_topic(self, physical: str) -> str:
        """The registry name of a topic of this deployment (a name without the prefix comes back as is)."""
        return physical.removeprefix(self.prefix)

    def group(self, name: str) -> str:
        return self.prefix + name

    def logical_group(self, physical: str) -> str:
        return physical.removeprefix(self.prefix)


async def create_producer(bootstrap_servers: str, *, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer (acks=all): a retried send never duplicates or reorders within a partition.

    linger_ms=0 sends at once: on a local broker the round trip, not batching, decides latency; the
    outbox relay still gets batches by sending a whole page of rows before awaiting the acks.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        request_timeout_ms=30_000,
    )
    await producer.start()
    return producer


async def kafka_is_reachable(producer: AIOKafkaProducer) -> None:
    """A real metadata request to the cluster; raises when no broker answers."""
    await producer.client.fetch_all_metadata()


async def create_topics(
    bootstrap_servers: str, names: list[str], *, partitions: int = 6, config: dict[str, str] | None = None
) -> None:
    """Create topics that do not exist yet (replication 1, as on the local single-node broker)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=config or {})
            for name in names
            if name not in existing
        ]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another process created it meanwhile
                await admin.create_topics(missing)
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, names: list[str]) -> None:
    """Delete those of `names` that exist (tests remove the private topics they made: a broker's idle work
    grows with its partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        present = [name for name in names if name in existing]
        if present:
            await admin.delete_topics(present)
    finally:
        await admin.close()
