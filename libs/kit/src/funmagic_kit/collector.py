"""The garbage collector's policy for a long-running service process.

CPython frees most objects by reference counting; its cyclic collector runs on top, by generations, and a
full (oldest generation) collection walks every tracked object in the process. A gateway holding 10,000 open
event streams tracks about a million objects, and one full collection of them took 0.4–1.1 s on the
benchmark machine: every stream waited that long (`bench/sse_fanout.py`, issue 16). Two measures:

- `gc.freeze()` once the service is wired: what was built at startup (modules, models, routes: ~150,000
  objects in the gateway) is never garbage, so no collection walks it again.
- Higher thresholds: a young collection every `YOUNG_THRESHOLD` allocations instead of 700, so objects
  that live for one request or one Redis round trip die before a collection promotes them; and a full
  collection after `FULL_AFTER_MIDDLE` middle ones instead of 10, so a process with many long-lived
  objects pays for walking them every few minutes rather than every few seconds. CPython still skips a
  full collection until the objects promoted since the last one reach a quarter of the survivors.

Cyclic garbage then lives a little longer before it is freed; the memory this keeps is what
`sse_fanout` reports as RSS per stream.
"""

from __future__ import annotations

import gc

__all__ = ["FULL_AFTER_MIDDLE", "MIDDLE_AFTER_YOUNG", "YOUNG_THRESHOLD", "settle_after_startup"]

YOUNG_THRESHOLD = 10_000
MIDDLE_AFTER_YOUNG = 10
FULL_AFTER_MIDDLE = 100


def settle_after_startup() -> None:
    """Collect what startup left behind, freeze the survivors, and set the thresholds (see the module)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_AFTER_YOUNG, FULL_AFTER_MIDDLE)
