"""A consumer in a process of its own, for tests that SIGKILL it: it records every `Numbered` event of TOPIC
in `handled` (key, seq, transaction id) under consumer group GROUP, with FUNMAGIC_FAILPOINTS honoured; with
BATCHED=1 through a batch handler (one statement per run of events) instead of one statement per event.

Run as `python consumer_process.py`; DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, TOPIC and GROUP come from the
environment. It stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence

from funmagic_contracts.envelope import Envelope
from funmagic_kit.consumer import EventConsumer, Subscription
from funmagic_kit.db import PostgresUnitOfWork, create_pool
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.kafka import create_producer
from funmagic_kit.metrics import Metrics
from funmagic_kit.testing import adhoc_event_class


async def record_numbered(event: object, envelope: Envelope, uow: PostgresUnitOfWork) -> None:
    await uow.conn.execute(
        "INSERT INTO handled (key, seq, txid) VALUES (%s, %s, txid_current())",
        (envelope.subject, envelope.data["seq"]),
    )


async def record_numbered_runs(
    deliveries: Sequence[tuple[object, Envelope]], uow: PostgresUnitOfWork
) -> None:
    await uow.conn.execute(
        "INSERT INTO handled (key, seq, txid) SELECT key, seq, txid_current()"
        " FROM unnest(%s::text[], %s::integer[]) WITH ORDINALITY AS run(key, seq, n) ORDER BY n",
        (
            [envelope.subject for _, envelope in deliveries],
            [envelope.data["seq"] for _, envelope in deliveries],
        ),
    )


async def main() -> None:
    topic, kafka = os.environ["TOPIC"], os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    pool = await create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=2)
    producer = await create_producer(kafka, client_id="consumer-process")
    consumer = EventConsumer(
        name=os.environ["GROUP"],
        bootstrap_servers=kafka,
        producer=producer,
        metrics=Metrics("consumer-process"),
        unit_of_work=lambda: PostgresUnitOfWork(pool),
        failpoints=Failpoints.from_environment(),
    )
    numbered = adhoc_event_class("Numbered", topic)
    if os.environ.get("BATCHED") == "1":
        consumer.subscribe(Subscription(topic).on_batch(numbered, record_numbered_runs))
    else:
        consumer.subscribe(Subscription(topic).on(numbered, record_numbered))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    try:
        await stop.wait()
    finally:
        await consumer.stop()
        await producer.stop()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
