"""Run the outbox relay alone: `python -m funmagic_kit.relay` (DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS).

Services run their relay inside the service process; this entrypoint lets an operator run relays as
separate processes (and lets tests kill one at a chosen point).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from funmagic_kit.db import create_pool
from funmagic_kit.errors import ConfigError
from funmagic_kit.failpoints import Failpoints
from funmagic_kit.kafka import KafkaNames, create_producer
from funmagic_kit.logs import configure_logging
from funmagic_kit.metrics import Metrics
from funmagic_kit.outbox import OutboxRelay
from funmagic_kit.settings import load_settings

log = logging.getLogger(__name__)


class RelaySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    kafka_bootstrap_servers: str = Field(validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    relay_name: str = Field("relay", validation_alias="RELAY_NAME")
    kafka_topic_prefix: str = Field(
        "", validation_alias="KAFKA_TOPIC_PREFIX", pattern=r"^[A-Za-z0-9._-]{0,64}$"
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")


async def run_relay(settings: RelaySettings) -> None:
    dsn = settings.database_url.get_secret_value()
    pool = await create_pool(dsn, min_size=1, max_size=2, name=settings.relay_name)
    producer = await create_producer(settings.kafka_bootstrap_servers, client_id=settings.relay_name)
    relay = OutboxRelay(
        dsn=dsn,
        pool=pool,
        producer=producer,
        metrics=Metrics(settings.relay_name),
        failpoints=Failpoints.from_environment(),
        names=KafkaNames(settings.kafka_topic_prefix),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, relay.stop)
    try:
        log.info("relay started")
        await relay.run()
    finally:
        await producer.stop()
        await pool.close()
    log.info("relay stopped")


def main() -> None:
    try:
        settings = load_settings(RelaySettings)
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    configure_logging(settings.relay_name, settings.log_level)
    asyncio.run(run_relay(settings))


if __name__ == "__main__":
    main()
