"""Poison messages go to the dead-letter topic with their error, and the consumer goes on."""

import psycopg

from funmagic_contracts.envelope import encode
from funmagic_contracts.topics import dead_letter_topic

from .conftest import (
    consumed,
    make_envelope,
    read_all,
    running_consumer,
    scalar,
    typed_subscription,
    wait_until_consumed,
)


async def record(event, envelope, uow) -> None:
    await uow.conn.execute("INSERT INTO orders (id) VALUES (%s)", (envelope.subject,))


async def explode(event, envelope, uow) -> None:
    raise RuntimeError(f"cannot handle {envelope.subject}")


async def test_malformed_and_always_failing_messages_are_dead_lettered_and_the_next_is_handled(
    stack, pool, producer, topic
) -> None:
    # One key, so all three land in one partition in this order: the good one must wait behind both.
    await producer.send_and_wait(topic, b"{not json", key=b"k")
    await producer.send_and_wait(topic, encode(make_envelope("OrderExploded", "order-1")), key=b"k")
    await producer.send_and_wait(topic, encode(make_envelope("OrderPlaced", "order-2")), key=b"k")
    subscription = typed_subscription(topic, {"OrderPlaced": record, "OrderExploded": explode})

    async with running_consumer(
        stack, pool, producer, subscription, max_attempts=3, retry_backoff_ms=5
    ) as consumer:
        await wait_until_consumed(consumer, 1, what="the good message after the poison ones")

    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id = 'order-2'") == 1
    assert consumed(consumer, "dead_lettered") == 2
    assert consumed(consumer, "retried") == 2  # attempts 1 and 2 retried, attempt 3 dead-lettered

    dead = await read_all(stack, dead_letter_topic(topic), expected=2)
    assert len(dead) == 2
    malformed, failing = sorted(dead, key=lambda r: int(dict(r.headers)["dlq-original-offset"]))
    assert malformed.value == b"{not json"
    assert dict(malformed.headers)["dlq-error"].startswith(b"ContractError")
    assert dict(malformed.headers)["dlq-attempts"] == b"1"
    assert dict(failing.headers)["dlq-error"] == b"RuntimeError: cannot handle order-1"
    assert dict(failing.headers)["dlq-attempts"] == b"3"
    assert dict(failing.headers)["dlq-original-topic"] == topic.encode()
    assert dict(failing.headers)["dlq-consumer"] == consumer.name.encode()


async def test_a_message_whose_type_header_names_an_event_not_handled_here_is_passed_over_unread(
    stack, pool, producer, topic
) -> None:
    """The `type` header decides before the body is parsed: a body this consumer could not read, of an event
    it does not react to, is skipped (another service's business), not dead-lettered."""
    await producer.send_and_wait(topic, b"{not json", key=b"k", headers=[("type", b"OrderShipped")])
    await producer.send_and_wait(topic, encode(make_envelope("OrderPlaced", "order-5")), key=b"k")
    subscription = typed_subscription(topic, {"OrderPlaced": record})

    async with running_consumer(stack, pool, producer, subscription) as consumer:
        await wait_until_consumed(consumer, 1, what="the handled message after the skipped one")

    assert consumed(consumer, "skipped") == 1
    assert consumed(consumer, "dead_lettered") == 0
    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id = 'order-5'") == 1


async def test_a_dependency_that_stays_down_is_waited_for_and_never_dead_lettered(
    stack, pool, producer, topic
) -> None:
    # The handler's dependency is down for more tries than max_attempts allows a failing handler.
    outage_tries = 5
    tries: list[int] = []

    async def needs_the_database(event, envelope, uow) -> None:
        tries.append(1)
        if len(tries) <= outage_tries:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        await record(event, envelope, uow)

    await producer.send_and_wait(topic, encode(make_envelope("OrderPlaced", "order-3")), key=b"k")
    subscription = typed_subscription(topic, {"OrderPlaced": needs_the_database})

    async with running_consumer(
        stack, pool, producer, subscription, max_attempts=2, retry_backoff_ms=5
    ) as consumer:
        await wait_until_consumed(consumer, 1, what="the message once its dependency is back")

    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id = 'order-3'") == 1
    assert consumed(consumer, "retried") == outage_tries
    assert consumed(consumer, "dead_lettered") == 0
