"""Operator commands of credits:

python -m funmagic_credits rebuild        drop and replay the projections from the event store
python -m funmagic_credits verify         replay into memory and report differences (exit 1 if any)
python -m funmagic_credits replay-topic   fold credits.events from offset 0 and compare balances
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row

from funmagic_credits.adapters.rebuild import rebuild_projections, verify_projections
from funmagic_kit.migrations import migrate_database

__all__ = ["COMMANDS", "ProgressBar"]


class ProgressBar:
    """`[#####-----]  52% 520,000/1,000,000 events  81,234/s` on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, stream: Any = sys.stderr, width: int = 30) -> None:
        self._label = label
        self._stream = stream
        self._width = width
        self._started = time.perf_counter()
        self._drawn_at = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self._drawn_at < 0.1 and done < total:
            return
        self._drawn_at = now
        share = done / total if total else 1.0
        filled = int(self._width * share)
        rate = done / max(now - self._started, 1e-9)
        self._stream.write(
            f"\r{self._label} [{'#' * filled}{'-' * (self._width - filled)}] {share:4.0%} "
            f"{done:,}/{total:,} events  {rate:,.0f}/s"
        )
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


async def _connect(settings: Any) -> psycopg.AsyncConnection:
    dsn = settings.database_url.get_secret_value()
    await migrate_database(dsn, ("credits", "funmagic_credits.migrations"))
    return await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row)


async def rebuild(settings: Any, argv: Sequence[str]) -> int:
    async with await _connect(settings) as conn, conn.transaction():
        replay = await rebuild_projections(conn, progress=ProgressBar("rebuild"))
    print(
        f"rebuilt {len(replay.accounts):,} accounts and {len(replay.transactions):,} transactions "
        f"from {replay.events:,} events"
    )
    return 0


async def verify(settings: Any, argv: Sequence[str]) -> int:
    async with await _connect(settings) as conn, conn.transaction(), conn.cursor() as cursor:
        # One snapshot for the replay and the comparison.
        await cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        differences = await verify_projections(conn, progress=ProgressBar("verify"))
    for difference in differences[:50]:
        print(
            f"{difference.user_id} {difference.field}: "
            f"live={difference.live!r} replayed={difference.replayed!r}"
        )
    print(f"{len(differences)} difference(s)")
    return 1 if differences else 0


async def replay_topic(settings: Any, argv: Sequence[str]) -> int:
    from funmagic_credits.adapters.kafka_replay import compare_with_topic

    async with await _connect(settings) as conn:
        differences, events = await compare_with_topic(conn, settings.kafka_bootstrap_servers)
    for user_id, live, replayed in differences[:50]:
        print(f"{user_id}: live={live} from credits.events={replayed}")
    print(f"{events:,} published events folded; {len(differences)} difference(s)")
    return 1 if differences else 0


COMMANDS = {"rebuild": rebuild, "verify": verify, "replay-topic": replay_topic}
