"""Another complete platform beside the e2e one, for tests that need a platform configured otherwise
(a Kafka topic prefix, tracing on): the six services on their own ports, with fresh databases, their own
Redis database and their own topic prefix on the shared Kafka cluster — so it never takes the e2e
platform's events, nor the e2e platform its events — and the product's tools seeded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
import run_services

from funmagic_kit.testing import drop_database

REPO = Path(__file__).resolve().parents[2]
SERVICES_WITH_DATABASE = ("identity", "tasks", "credits", "storage", "providers")


@dataclass(frozen=True)
class ExtraPlatform:
    env: dict[str, str]
    gateway: str
    topic_prefix: str


@contextmanager
def extra_platform(
    base_env: Mapping[str, str],
    *,
    port_base: int,
    beside_port_base: int,
    redis_db: int,
    run_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[ExtraPlatform]:
    suffix = uuid.uuid4().hex[:8]
    prefix = f"extra-{suffix}."
    databases = {name: f"funmagic_{name}_extra_{suffix}" for name in SERVICES_WITH_DATABASE}
    postgres = base_env["POSTGRES_URL"]
    with psycopg.connect(postgres + "/postgres", autocommit=True) as conn:
        for database in databases.values():
            conn.execute(f'CREATE DATABASE "{database}"')
    redis_url = base_env["REDIS_URL"].rsplit("/", 1)[0] + f"/{redis_db}"
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    env = {
        **base_env,
        **{f"{name.upper()}_DATABASE_URL": f"{postgres}/{db}" for name, db in databases.items()},
        "REDIS_URL": redis_url,
        "KAFKA_TOPIC_PREFIX": prefix,
        # The object store is shared and storage sets its buckets' CORS rules when it starts: they must
        # keep answering the platform beside this one (its browser tests upload there), not only this one.
        "S3_CORS_ORIGINS": ",".join(
            run_services.service_environment("storage", dict(base_env), base)["S3_CORS_ORIGINS"]
            for base in (beside_port_base, port_base)
        ),
        **(overrides or {}),
    }
    services: list[run_services.ServiceProcess] = []
    try:
        created = subprocess.run(
            [sys.executable, "-m", "funmagic_kit.create_topics", "--prefix", prefix],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert created.returncode == 0, created.stdout + created.stderr
        services = run_services.start_all(env, port_base, run_dir)
        seeded = subprocess.run(
            [sys.executable, "-m", "funmagic_tasks", "seed"],
            env=run_services.service_environment("tasks", env, port_base),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        yield ExtraPlatform(env=env, gateway=f"http://127.0.0.1:{port_base}", topic_prefix=prefix)
    finally:
        run_services.stop_all(services)
        for database in databases.values():
            asyncio.run(drop_database(postgres, database))
