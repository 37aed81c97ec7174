"""The floors of issue 16, each beside the latest recorded value (`bench/results/<benchmark>.jsonl`).

`make bench` prints this table at the end of every run. A row reads its benchmark's newest record, so a
partial run (`python bench/run.py auth_session`) still shows every row: the ones not run this time with the
commit they were measured at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FLOORS", "floors_table"]

Record = dict[str, Any]


@dataclass(frozen=True)
class Floor:
    label: str
    benchmark: str
    value: Callable[[Record], float | None]
    floor: float
    at_most: bool  # True: the value must be at most the floor; False: at least

    def met(self, value: float) -> bool:
        return value <= self.floor if self.at_most else value >= self.floor


def _path(*keys: str) -> Callable[[Record], float | None]:
    def value(record: Record) -> float | None:
        found: Any = record
        for key in keys:
            if not isinstance(found, dict) or key not in found:
                return None
            found = found[key]
        return float(found) if isinstance(found, int | float) else None

    return value


def _level(clients: int, key: str) -> Callable[[Record], float | None]:
    def value(record: Record) -> float | None:
        for level in record.get("levels", []):
            if isinstance(level, dict) and level.get("clients") == clients and key in level:
                return float(level[key])
        return None

    return value


def _idle_cpu(record: Record) -> float | None:
    shares = record.get("idle_cpu_percent_of_one_core")
    if not isinstance(shares, dict):
        return None
    # The platform's processes and its infrastructure; the benchmark's own client is not the platform, and
    # neither is "other" (every other process of the machine: kernel threads, a shell, an editor…).
    return round(
        sum(v for k, v in shares.items() if k not in NOT_THE_PLATFORM and isinstance(v, int | float)), 1
    )


NOT_THE_PLATFORM = frozenset({"bench client", "other"})


def _largest_sse_level(key: str) -> Callable[[Record], float | None]:
    def value(record: Record) -> float | None:
        levels = [level for level in record.get("levels", []) if isinstance(level, dict)]
        if not levels:
            return None
        largest = max(levels, key=lambda level: level.get("streams", 0))
        return float(largest[key]) if key in largest else None

    return value


FLOORS = (
    Floor("idle platform, CPU % of one core", "e2e_tasks", _idle_cpu, 5, at_most=True),
    Floor("e2e_tasks, CPU ms per task (8 clients)", "e2e_tasks",
          _level(8, "cpu_ms_per_task"), 25, at_most=True),
    Floor("e2e_tasks, c=1 p50 / round-trip p50", "e2e_tasks",
          _path("ratio_to_baseline", "1_clients", "p50_vs_roundtrip_p50"), 8, at_most=True),
    Floor("roundtrip outbox→inbox / raw aiokafka, throughput", "roundtrip",
          _path("outbox_kafka_inbox_1_workers", "ratio_to_raw", "throughput_ratio"), 0.25, at_most=False),
    Floor("roundtrip outbox→inbox / raw aiokafka, p99", "roundtrip",
          _path("outbox_kafka_inbox_1_workers", "ratio_to_raw", "p99_ratio"), 2, at_most=True),
    Floor("auth_session through the gateway / bare aiohttp", "auth_session",
          _path("ratio_to_baseline", "throughput_ratio"), 0.5, at_most=False),
    Floor("provider_limiter acquire+release / bare EVALSHA", "provider_limiter",
          _path("ratio_to_baseline", "throughput_vs_bare_evalsha"), 0.6, at_most=False),
    Floor("storage confirmation / raw HEAD + range GET", "storage_presign",
          _path("ratio_to_baseline", "confirmation_throughput_vs_raw_s3_checks"), 0.8, at_most=False),
    Floor("credits reservations, distinct users / UPDATE", "credits_ledger",
          _path("reserve_distinct_users", "ratio_to_baseline", "throughput_ratio"), 0.5, at_most=False),
    Floor("credits reservations, one contended user / UPDATE", "credits_ledger",
          _path("reserve_one_user", "ratio_to_baseline", "throughput_ratio"), 0.3, at_most=False),
    Floor("sse_fanout, largest level: gateway RSS (MB)", "sse_fanout",
          _largest_sse_level("gateway_rss_mb"), 1024, at_most=True),
    Floor("sse_fanout, largest level: delivery p99 (ms)", "sse_fanout",
          _largest_sse_level("p99_ms"), 100, at_most=True),
)  # fmt: skip


def _newest(results: Path, benchmark: str) -> Record | None:
    path = results / f"{benchmark}.jsonl"
    if not path.exists():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def floors_table(results: Path) -> str:
    """The table, one row per floor: the newest value, the floor, met or not, and where it was measured."""
    rows = ["| floor (issue 16) | newest | floor | met | measured |", "|---|---|---|---|---|"]
    for floor in FLOORS:
        record = _newest(results, floor.benchmark)
        value = floor.value(record) if record else None
        bound = f"{'≤' if floor.at_most else '≥'} {floor.floor:g}"
        if record is None or value is None:
            rows.append(f"| {floor.label} | — | {bound} | — | not run |")
            continue
        met = "yes" if floor.met(value) else "no"
        where = f"{record.get('commit')} {str(record.get('time'))[:10]}"
        rows.append(f"| {floor.label} | {value:g} | {bound} | {met} | {where} |")
    return "\n".join(rows)
