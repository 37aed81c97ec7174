"""Run every benchmark against the local stack and record the results.

    make bench                      # all benchmarks
    python bench/run.py roundtrip   # one

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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import auth_session
import credits_ledger
import e2e_tasks
import provider_limiter
import roundtrip
import storage_presign

BENCHMARKS = {
    "roundtrip": roundtrip.run,
    "auth_session": auth_session.run,
    "credits_ledger": credits_ledger.run,
    "storage_presign": storage_presign.run,
    "provider_limiter": provider_limiter.run,
    "e2e_tasks": e2e_tasks.run,
}
RESULTS = Path(__file__).resolve().parent / "results"


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
    for name in args.names or list(BENCHMARKS):
        print(f"== {name}", flush=True)
        result = asyncio.run(BENCHMARKS[name]())
        record = {
            "benchmark": name,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _commit(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            **result,
        }
        with (RESULTS / f"{name}.jsonl").open("a") as out:
            out.write(json.dumps(record) + "\n")
        summary.append(record)
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
    (RESULTS / "latest.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
