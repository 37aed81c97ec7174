"""The test stack in containers: Postgres, Redis, Kafka and S3 started through testcontainers from the
images `make images` builds (deploy/images), for a machine with Docker and no native stack.

A pytest plugin (the repository's conftest.py loads it). With FUNMAGIC_TEST_STACK=containers it starts the
four containers before the session, publishes each on a free port of 127.0.0.1 only, prepares them as
deploy/local/stack.sh prepares the native stack (databases, topics, buckets), and puts the same variables
into the environment as the native stack's env file — so every integration and e2e fixture, which reads
those variables, runs unchanged. The containers are removed when the session ends. Without the variable
the plugin does nothing: the suites use the native stack, as `make test` starts it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

IMAGE_TAG = os.environ.get("FUNMAGIC_VERSION", "dev")
DATABASES = ("identity", "tasks", "credits", "storage", "providers")
BUCKETS = {
    "S3_BUCKET_PUBLIC": "funmagic-public",
    "S3_BUCKET_PRIVATE": "funmagic-private",
    "S3_BUCKET_ADMIN": "funmagic-admin",
}
START_TIMEOUT_SECONDS = 120.0
# The native broker's settings (deploy/local/kafka/server.properties.template) that tests rely on.
KAFKA_SETTINGS = {
    "KAFKA_NODE_ID": "1",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    "KAFKA_NUM_PARTITIONS": "6",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
    "KAFKA_MIN_INSYNC_REPLICAS": "1",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "KAFKA_GROUP_COORDINATOR_APPEND_LINGER_MS": "0",
    "KAFKA_HEAP_OPTS": "-Xms256m -Xmx768m",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kafka_cluster_id() -> str:
    """Kafka's Uuid format: 16 random bytes, URL-safe base64 without padding, never starting with '-'."""
    while True:
        candidate = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def wait_for(check: Callable[[], Any], what: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Call `check` until it stops raising; fail naming `what` and the last error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except Exception as error:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout:.0f} s: {error!r}") from error
            time.sleep(0.5)


@dataclass
class ContainerStack:
    """The four containers and the environment that points the suites at them."""

    containers: list[Any] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    def run(self, image: str, container_port: int, env: dict[str, str], host_port: int | None = None) -> int:
        from testcontainers.core.container import DockerContainer

        port = host_port or free_port()
        container = DockerContainer(f"{image}:{IMAGE_TAG}", env=env)
        # Published on the loopback only: nothing but this machine reaches the test stack.
        container.ports = {container_port: ("127.0.0.1", port)}
        self.containers.append(container.start())
        return port

    def start(self) -> None:
        password = secrets.token_hex(16)
        pg_port = self.run(
            "funmagic/postgres", 5432, {"POSTGRES_USER": "funmagic", "POSTGRES_PASSWORD": password}
        )
        redis_port = self.run("funmagic/redis", 6379, {})
        kafka_port = free_port()
        self.run(
            "funmagic/kafka",
            kafka_port,
            KAFKA_SETTINGS
            | {
                "CLUSTER_ID": kafka_cluster_id(),
                # The broker listens on the published port inside the container too, so the one address
                # it advertises works from the host and from the broker itself.
                "KAFKA_LISTENERS": f"PLAINTEXT://:{kafka_port},CONTROLLER://:9093",
                "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{kafka_port}",
            },
            host_port=kafka_port,
        )
        s3_key, s3_secret = "funmagic-test", secrets.token_hex(16)
        s3_port = self.run("funmagic/s3", 9000, {"S3_ACCESS_KEY": s3_key, "S3_SECRET_KEY": s3_secret})

        postgres_url = f"postgresql://funmagic:{password}@127.0.0.1:{pg_port}"
        self.environment = {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{kafka_port}",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "POSTGRES_URL": postgres_url,
            **{f"{name.upper()}_DATABASE_URL": f"{postgres_url}/funmagic_{name}" for name in DATABASES},
            "S3_ENDPOINT": f"http://127.0.0.1:{s3_port}",
            "S3_ACCESS_KEY": s3_key,
            "S3_SECRET_KEY": s3_secret,
            "S3_REGION": "us-east-1",
            **BUCKETS,
            "CDN_URL": f"http://127.0.0.1:{s3_port}/{BUCKETS['S3_BUCKET_PUBLIC']}",
            "INTERNAL_API_TOKEN": secrets.token_urlsafe(32),
            "SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        }
        self._prepare_postgres(postgres_url)
        self._prepare_redis()
        self._prepare_kafka()
        self._prepare_s3()

    def stop(self) -> None:
        for container in reversed(self.containers):
            container.stop()
        self.containers.clear()

    def _prepare_postgres(self, postgres_url: str) -> None:
        import psycopg

        def create_databases() -> None:
            with psycopg.connect(f"{postgres_url}/postgres", autocommit=True, connect_timeout=5) as conn:
                existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
                for name in DATABASES:
                    if f"funmagic_{name}" not in existing:
                        conn.execute(f'CREATE DATABASE "funmagic_{name}"')

        wait_for(create_databases, "postgres")

    def _prepare_redis(self) -> None:
        import redis

        def ping() -> None:
            client = redis.Redis.from_url(self.environment["REDIS_URL"], socket_timeout=5)
            try:
                client.ping()
            finally:
                client.close()

        wait_for(ping, "redis")

    def _prepare_kafka(self) -> None:
        from funmagic_kit.create_topics import create

        bootstrap = self.environment["KAFKA_BOOTSTRAP_SERVERS"]
        status = asyncio.run(create(bootstrap, partitions=6, wait=START_TIMEOUT_SECONDS))
        if status != 0:
            raise RuntimeError(f"kafka: the topics could not be created on {bootstrap}")

    def _prepare_s3(self) -> None:
        import botocore.session
        from botocore.config import Config

        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.environment["S3_ENDPOINT"],
            aws_access_key_id=self.environment["S3_ACCESS_KEY"],
            aws_secret_access_key=self.environment["S3_SECRET_KEY"],
            region_name=self.environment["S3_REGION"],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

        def create_buckets() -> None:
            existing = {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}
            for name in BUCKETS.values():
                if name not in existing:
                    client.create_bucket(Bucket=name)

        wait_for(create_buckets, "s3")


STACK = pytest.StashKey[ContainerStack]()


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("FUNMAGIC_TEST_STACK") != "containers":
        return
    # Ryuk, testcontainers' reaper, would be pulled from an image registry; the session removes its own.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    stack = ContainerStack()
    try:
        stack.start()
    except BaseException:
        stack.stop()
        raise
    config.stash[STACK] = stack
    os.environ.update(stack.environment)


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(STACK, None)
    if stack is not None:
        stack.stop()
