"""The relay sends a page as record batches it builds itself: what Kafka holds is what `send` would give."""

from funmagic_contracts.envelope import encode
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.outbox import add_to_outbox

from .conftest import make_envelope, read_all, running_relay

PAD = "x" * 2_000  # ~2 KB a row: a key's hundred rows fill a dozen record batches of 16 KB


async def test_a_page_of_many_record_batches_keeps_each_keys_order_and_headers(
    stack, database_url, pool, producer, topic
):
    keys = [f"aggregate-{n}" for n in range(3)]
    written = [
        make_envelope("Sequenced", key, {"seq": seq, "pad": PAD}) for seq in range(100) for key in keys
    ]
    async with PostgresUnitOfWork(pool) as uow:  # one transaction, so one page of 300 rows
        await add_to_outbox(uow.conn, [(topic, envelope) for envelope in written])

    async with running_relay(database_url, pool, producer, page_size=500):
        records = await read_all(stack, topic, expected=len(written))

    assert len(records) == len(written)
    by_key: dict[str, list[tuple[int, int, int]]] = {}
    for record in records:
        by_key.setdefault(record.key.decode(), []).append((record.partition, record.offset, record.value))
    for key in keys:
        arrivals = sorted(by_key[key])
        assert len({partition for partition, _, _ in arrivals}) == 1, f"{key} was split over partitions"
        sent = [envelope for envelope in written if envelope.subject == key]
        assert [value for _, _, value in arrivals] == [encode(envelope) for envelope in sent]
    first = next(record for record in records if record.key == written[0].subject.encode())
    assert dict(first.headers)["type"] == b"Sequenced"


async def test_a_key_goes_to_the_partition_the_producers_own_send_picks(
    stack, database_url, pool, producer, topic
):
    # Dead letters and replays reach the same topics by `producer.send`: a key must land in one partition
    # whichever way it was sent, or its events could be read out of order.
    keys = [f"subject-{n}" for n in range(24)]
    for key in keys:
        await producer.send_and_wait(topic, b"sent directly", key=key.encode())
    async with PostgresUnitOfWork(pool) as uow:
        await add_to_outbox(uow.conn, [(topic, make_envelope("Sequenced", key, {"seq": 0})) for key in keys])

    async with running_relay(database_url, pool, producer):
        records = await read_all(stack, topic, expected=2 * len(keys))

    partitions: dict[str, set[int]] = {}
    for record in records:
        partitions.setdefault(record.key.decode(), set()).add(record.partition)
    assert sorted(partitions) == sorted(keys)
    assert all(len(used) == 1 for used in partitions.values()), partitions
    assert len({next(iter(used)) for used in partitions.values()}) > 1, "the keys should spread"
