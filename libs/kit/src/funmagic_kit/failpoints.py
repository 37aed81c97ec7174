"""Named points where a test can make a process stop dead, to prove that a crash there loses nothing.

Enabled only by the FUNMAGIC_FAILPOINTS environment variable (`name=hang` pairs, comma separated), read
once at start. A `hang` failpoint writes `<FUNMAGIC_FAILPOINT_DIR>/<name>` and then waits forever, so the
test knows the process is exactly there when it sends SIGKILL. With the variable unset this is a no-op.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

__all__ = ["Failpoints"]


class Failpoints:
    def __init__(self, spec: str = "", marker_dir: str | None = None) -> None:
        self._actions = dict(item.split("=", 1) for item in spec.split(",") if "=" in item)
        self._marker_dir = Path(marker_dir) if marker_dir else None

    @classmethod
    def from_environment(cls) -> Failpoints:
        return cls(os.environ.get("FUNMAGIC_FAILPOINTS", ""), os.environ.get("FUNMAGIC_FAILPOINT_DIR"))

    async def reach(self, name: str) -> None:
        action = self._actions.get(name)
        if action is None:
            return
        if action != "hang":
            raise ValueError(f"unknown failpoint action {action!r} for {name}")
        if self._marker_dir is not None:
            self._marker_dir.mkdir(parents=True, exist_ok=True)
            (self._marker_dir / name).write_text(str(os.getpid()))
        await asyncio.Event().wait()
