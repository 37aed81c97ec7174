"""Test hooks: named points where a test can make a process stop dead, and poisoned events.

Failpoints prove that a crash at a point loses nothing. Enabled only by the FUNMAGIC_FAILPOINTS
environment variable (`name=hang` pairs, comma separated), read once at start. A `hang` failpoint writes
`<FUNMAGIC_FAILPOINT_DIR>/<name>` and then waits forever, so the test knows the process is exactly there
when it sends SIGKILL. With the variable unset this is a no-op.

Poisoned events prove that a message that keeps failing reaches the dead-letter topic and can be replayed
once the handler is fixed. Enabled only by FUNMAGIC_POISON_DIR: an event whose id is the name of a file in
that directory is refused by every consumer (`funmagic_kit.consumer`) with a `PermanentError`, so it is
dead-lettered at once; deleting the file "fixes the handler". With the variable unset the consumer holds
None and pays one `is not None` check per event.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from uuid import UUID

from funmagic_kit.errors import PermanentError

__all__ = ["POISONED", "Failpoints", "PoisonedEvents"]

POISONED = "poisoned by a test hook"


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


class PoisonedEvents:
    """Events a test has poisoned: those whose id names a file in `directory` (looked up per event, so a
    test adds and removes files while the service runs)."""

    def __init__(self, directory: str | Path) -> None:
        self._directory = Path(directory)

    @classmethod
    def from_environment(cls) -> PoisonedEvents | None:
        directory = os.environ.get("FUNMAGIC_POISON_DIR")
        return cls(directory) if directory else None

    def check(self, event_id: UUID | str) -> None:
        """Raise `PermanentError` if the event is poisoned (its handler must not run)."""
        if (self._directory / str(event_id)).is_file():
            raise PermanentError(POISONED)
