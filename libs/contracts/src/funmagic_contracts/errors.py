"""The one error type of the contracts package."""

from __future__ import annotations

__all__ = ["ContractError"]


class ContractError(ValueError):
    """A message or event breaks the contract (malformed JSON, bad envelope, unknown or invalid event).

    Consumers treat it as a poison message: retrying cannot fix it, so it goes to the dead-letter topic.
    """
