"""Create every topic of the registry (funmagic_contracts.topics.ALL_TOPICS) on a broker.

Idempotent: topics that already exist are left alone (a differing partition count is only
reported). Partitions come from FUNMAGIC_KAFKA_PARTITIONS (default 6), replication factor 1.
KAFKA_TOPIC_PREFIX (or --prefix) puts a deployment's prefix in front of every name, as the services do.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m funmagic_kit.create_topics [--wait SECONDS]

The native stack (deploy/local/stack.sh) and compose's one-shot `kafka-init` both run it; `--wait`
also covers a broker that does not answer yet.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, for_code

from funmagic_contracts.topics import ALL_TOPICS

TOPIC_ALREADY_EXISTS = 36
# Errors a broker that is still settling may answer with; worth another try.
RETRIABLE = {5, 7, 41, 19}  # LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, NOT_CONTROLLER, NOT_ENOUGH_REPLICAS


async def connected_admin(bootstrap: str, deadline: float) -> AIOKafkaAdminClient:
    while True:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=15000, client_id="funmagic-create-topics"
        )
        try:
            await admin.start()
            return admin
        except KafkaError:
            await admin.close()
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(1.0)


async def create(bootstrap: str, partitions: int, wait: float, prefix: str = "") -> int:
    deadline = time.monotonic() + wait
    admin = await connected_admin(bootstrap, deadline)
    try:
        while True:
            existing = set(await admin.list_topics())
            todo = [t for t in ALL_TOPICS if prefix + t.name not in existing]
            if not todo:
                break
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=prefix + t.name,
                        num_partitions=partitions,
                        replication_factor=1,
                        topic_configs=t.kafka_config(),
                    )
                    for t in todo
                ],
                timeout_ms=15000,
            )
            retry, failed = [], []
            for name, code, *rest in response.topic_errors:
                message = rest[0] if rest else None
                if code == 0:
                    print(f"kafka: created topic {name} ({partitions} partitions)")
                elif code == TOPIC_ALREADY_EXISTS:
                    pass
                elif code in RETRIABLE:
                    retry.append(name)
                else:
                    failed.append(f"{name}: {for_code(code).__name__} {message or ''}".strip())
            if failed:
                print("kafka: could not create topics:\n  " + "\n  ".join(failed), file=sys.stderr)
                return 1
            if not retry:
                break
            if time.monotonic() >= deadline:
                print(f"kafka: topics still not created: {retry}", file=sys.stderr)
                return 1
            await asyncio.sleep(0.5)

        # Report topics that exist with another partition count (left alone on purpose).
        described = await admin.describe_topics([prefix + t.name for t in ALL_TOPICS])
        other = sorted(
            f"{t['topic']}={len(t.get('partitions') or [])}"
            for t in described
            if t.get("error_code", 0) == 0 and len(t.get("partitions") or []) != partitions
        )
        if other:
            print(
                f"kafka: note: {len(other)} existing topic(s) have a partition count other than "
                f"FUNMAGIC_KAFKA_PARTITIONS={partitions}, left as is: {', '.join(other)}",
                file=sys.stderr,
            )
        print(f"kafka: {len(ALL_TOPICS)} topics present")
        return 0
    finally:
        await admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument(
        "--partitions", type=int, default=int(os.environ.get("FUNMAGIC_KAFKA_PARTITIONS", "6"))
    )
    parser.add_argument("--wait", type=float, default=30.0, help="retry retriable errors this long")
    parser.add_argument("--prefix", default=os.environ.get("KAFKA_TOPIC_PREFIX", ""))
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    return asyncio.run(create(args.bootstrap, args.partitions, args.wait, args.prefix))


if __name__ == "__main__":
    sys.exit(main())
