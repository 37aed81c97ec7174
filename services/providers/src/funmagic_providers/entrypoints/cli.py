"""Operator commands: `python -m funmagic_providers <command>` (wired in `bootstrap.SPEC.commands`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from funmagic_providers.application.registry import ProviderRegistry

__all__ = ["rotate_provider_keys"]


async def rotate_provider_keys(
    registry: ProviderRegistry, argv: Sequence[str], out: TextIO | None = None
) -> int:
    """Re-encrypt every provider key under the current master key (the first of PROVIDER_MASTER_KEYS).

    Rotation: put the new key first and keep the old one listed, restart the services, run this, then
    drop the old key from the list. Takes no arguments.
    """
    rotated = await registry.rotate_keys()
    verified = await registry.verify_keys()
    print(
        f"re-encrypted {rotated} provider key(s); {verified} key(s) decrypt under the current master keys",
        file=out or sys.stdout,
    )
    return 0
