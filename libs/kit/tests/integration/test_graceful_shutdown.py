"""SIGTERM stops consuming, lets the in-flight handler finish, flushes the outbox, then exits."""

import asyncio
import os
import signal
import socket
import uuid

from funmagic_contracts.envelope import encode
from funmagic_kit.consumer import Subscription
from funmagic_kit.outbox import add_to_outbox
from funmagic_kit.runtime import ServiceParts, ServiceSpec, serve
from funmagic_kit.settings import DatabaseSettings, ServiceSettings, load_settings

from .conftest import make_envelope, message_count, scalar, typed_subscription


class ExampleSettings(ServiceSettings, DatabaseSettings):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_sigterm_during_a_handler_finishes_it_and_publishes_its_event(
    stack, database_url, pool, producer, topic, scratch_topics
) -> None:
    announced = f"test.{uuid.uuid4().hex[:12]}"
    await scratch_topics.create([announced], partitions=1)
    handler_started = asyncio.Event()

    async def place_order_slowly(event, envelope, uow) -> None:
        handler_started.set()
        await asyncio.sleep(0.5)  # simulated slow work; SIGTERM arrives meanwhile
        await uow.conn.execute("INSERT INTO orders (id) VALUES (%s)", (envelope.subject,))
        await add_to_outbox(uow.conn, [(announced, make_envelope("OrderPlaced", envelope.subject))])

    spec = ServiceSpec(
        name=f"shutdown-{uuid.uuid4().hex[:8]}",
        settings_class=ExampleSettings,
        build=lambda runtime: _parts(typed_subscription(topic, {"PlaceOrder": place_order_slowly})),
    )
    settings = load_settings(
        ExampleSettings,
        env={
            "HTTP_PORT": str(free_port()),
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka,
            "REDIS_URL": stack.redis_url,
            "DATABASE_URL": database_url,
            "INTERNAL_API_TOKEN": "graceful-shutdown-test-internal-token",
            "AUTH_JWKS_URL": "http://127.0.0.1:1/.well-known/jwks.json",
        },
    )
    ready = asyncio.Event()
    service = asyncio.create_task(serve(spec, settings, ready=ready))
    await asyncio.wait_for(ready.wait(), timeout=30)

    await producer.send_and_wait(topic, encode(make_envelope("PlaceOrder", "order-7")), key=b"order-7")
    await asyncio.wait_for(handler_started.wait(), timeout=30)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(service, timeout=30)

    assert await scalar(pool, "SELECT count(*) FROM orders WHERE id = 'order-7'") == 1
    assert await scalar(pool, "SELECT count(*) FROM processed_events") == 1
    assert await scalar(pool, "SELECT count(*) FROM outbox") == 0
    assert await message_count(stack, announced) == 1


async def _parts(*subscriptions: Subscription) -> ServiceParts:
    return ServiceParts(subscriptions=subscriptions)
