"""Adapters learn what a statement changed from the rows it returns, never from `cursor.rowcount`.

A consumer's unit of work is pipelined (`PostgresUnitOfWork.pipelined`): a statement is sent without waiting
for its result, and `rowcount` stays -1 until something reads. `... RETURNING 1` and `fetchone()` wait for
the result in either mode. (A `rowcount` read this way once made every step job look like a duplicate of
itself: the worker was never woken and each step waited for its ten-second idle poll.)
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 100


def test_no_adapter_reads_rowcount() -> None:
    readers = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in SOURCES
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\.rowcount\b", line)
    ]

    assert readers == [], "rowcount is -1 in a pipelined unit of work; use RETURNING and fetchone()"
