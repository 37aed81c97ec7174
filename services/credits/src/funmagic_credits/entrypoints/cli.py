"""Operator commands of credits:

python -m funmagic_credits rebuild        drop and replay the projections from the event store
python -m funmagic_credits verify         replay into memory and report differences (exit 1 if any)
python -m funmagic_credits replay-topic   fold credits.events from offset 0 and compare balances
python -m funmagic_credits seed-packages  the starter credit packages, when the shop has none (idempotent)

Each takes the maintenance adapter the composition root built, its arguments and where to print.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from funmagic_credits.adapters.maintenance import LedgerMaintenance
from funmagic_credits.application.commerce import Commerce
from funmagic_credits.domain.commerce import PackageEntry

__all__ = ["STARTER_PACKAGES", "ProgressBar", "rebuild", "replay_topic", "seed_packages", "verify"]

# What a fresh local platform sells (`make run`); admins change them in the admin app.
STARTER_PACKAGES = (
    PackageEntry("Starter", 100, 499, "USD", None, True, 1),
    PackageEntry("Creator", 500, 1999, "USD", None, True, 2),
    PackageEntry("Studio", 1500, 4999, "USD", None, True, 3),
)


class ProgressBar:
    """`[#####-----]  52% 520,000/1,000,000 events  81,234/s` on stderr, redrawn at most 10 times a second."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
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


async def rebuild(
    maintenance: LedgerMaintenance, argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    replay = await maintenance.rebuild(progress=ProgressBar("rebuild", err))
    print(
        f"rebuilt {len(replay.accounts):,} accounts and {len(replay.transactions):,} transactions "
        f"from {replay.events:,} events",
        file=out,
    )
    return 0


async def verify(
    maintenance: LedgerMaintenance, argv: Sequence[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    differences = await maintenance.verify(progress=ProgressBar("verify", err))
    for difference in differences[:50]:
        print(
            f"{difference.user_id} {difference.field}: "
            f"live={difference.live!r} replayed={difference.replayed!r}",
            file=out,
        )
    print(f"{len(differences)} difference(s)", file=out)
    return 1 if differences else 0


async def replay_topic(maintenance: LedgerMaintenance, argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    differences, events = await maintenance.compare_with_topic()
    for user_id, live, replayed in differences[:50]:
        print(f"{user_id}: live={live} from credits.events={replayed}", file=out)
    print(f"{events:,} published events folded; {len(differences)} difference(s)", file=out)
    return 1 if differences else 0


async def seed_packages(commerce: Commerce, argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    existing = await commerce.packages(active_only=False)
    if existing:
        print(f"credit packages: {len(existing)} already there, none added", file=out)
        return 0
    for entry in STARTER_PACKAGES:
        await commerce.add_package(entry)
    print(f"credit packages: added {', '.join(p.name for p in STARTER_PACKAGES)}", file=out)
    return 0
