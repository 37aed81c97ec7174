"""Run every benchmark against the local stack and record the results.

    make bench                      # all benchmarks
    python bench/run.py roundtrip   # one

Before the first benchmark whose ratios hang on Kafka's speed, the broker is warmed up (`broker_warmup`;
BENCH_BROKER_WARMUP=0 skips it).

Each benchmark measures the platform path and a baseline in the same run and prints their ratio;
results are appended as JSON to bench/results/<benchmark>.jsonl and summarised in bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import auth_session
import broker_warmup
import credits_ledger
import e2e_tasks
import provider_limiter
import roundtrip
import sse_fanout
import storage_presign
import studio_overhead
import web_bundle
from floors import floors_table

BENCHMARKS = {
    "roundtrip": roundtrip.run,
    "auth_session": auth_session.run,
    "credits_ledger": credits_ledger.run,
    "storage_presign": storage_presign.run,
    "provider_limiter": provider_limiter.run,
    "e2e_tasks": e2e_tasks.run,
    "sse_fanout": sse_fanout.run,
    "studio_overhead": studio_overhead.run,
    "web_bundle": web_bundle.run,
}
RESULTS = Path(__file__).resolve().parent / "results"
# Those whose ratios hang on the broker's speed: a broker just started is warmed up before them, once a run.
BROKER_BOUND = frozenset({"roundtrip", "e2e_tasks", "studio_overhead"})


def _commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "names", nargs="*", metavar="benchmark", help=f"any of {', '.join(BENCHMARKS)} (default: all)"
    )
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}")
    RESULTS.mkdir(exist_ok=True)
    summary = []
    names = args.names or list(BENCHMARKS)
    warmup: list[float] = []
    if BROKER_BOUND & set(names) and os.environ.get("BENCH_BROKER_WARMUP", "1") != "0":
        print("== broker warm-up", flush=True)
        warmup = asyncio.run(broker_warmup.warm_broker(os.environ["KAFKA_BOOTSTRAP_SERVERS"]))
    for name in names:
        print(f"== {name}", flush=True)
        previous = _last_record(name)
        result = asyncio.run(BENCHMARKS[name]())
        record = {
            "benchmark": name,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _commit(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            **result,
        }
        if name in BROKER_BOUND and warmup:
            record["broker_warmup_events_per_s"] = [round(rate) for rate in warmup]
        with (RESULTS / f"{name}.jsonl").open("a") as out:
            out.write(json.dumps(record) + "\n")
        summary.append(record)
        if previous is not None:
            print(_beside_previous(previous, record), flush=True)
    lines = ["# Latest benchmark results", ""]
    for record in summary:
        lines += [
            f"## {record['benchmark']} ({record['time']}, commit {record['commit']})",
            "",
            "```",
            json.dumps(
                {k: v for k, v in record.items() if k not in {"benchmark", "time", "commit"}}, indent=2
            ),
            "```",
            "",
        ]
    table = floors_table(RESULTS)
    print("\n== floors\n" + table, flush=True)
    lines += ["## Floors (issue 16), newest value of each", "", table, ""]
    (RESULTS / "latest.md").write_text("\n".join(lines))
    return 0


# The figures worth comparing run to run: ratios to the baseline measured in the same run, rates, latencies.
_COMPARED = ("ratio", "per_s", "p50_ms", "p99_ms", "cpu_ms")


def _last_record(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.jsonl"
    if not path.exists():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def _leaves(value: object, prefix: str = "") -> dict[str, float]:
    if isinstance(value, dict):
        found: dict[str, float] = {}
        for key, inner in value.items():
            found.update(_leaves(inner, f"{prefix}.{key}" if prefix else str(key)))
        return found
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {prefix: float(value)}
    return {}


def _beside_previous(previous: dict[str, Any], current: dict[str, Any]) -> str:
    """This run's figures beside the last recorded run's (its commit and time), one line each."""
    before, now = _leaves(previous), _leaves(current)
    lines = [f"-- beside the previous record (commit {previous.get('commit')}, {previous.get('time')}):"]
    for key in sorted(now):
        if key in before and any(marker in key.rsplit(".", 1)[-1] for marker in _COMPARED):
            lines.append(f"   {key}: {before[key]:g} → {now[key]:g}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
