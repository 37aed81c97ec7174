"""Platform settings identity keeps for other parts of the platform (the gateway has no database): named
JSON documents, stored whole. Their content is the owner's to validate (the gateway checks the rate
limits with its own model before it sends them); identity knows only which names exist. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias, get_args

from funmagic_kit.errors import NotFound

__all__ = [
    "SETTING_NAMES",
    "JsonObject",
    "JsonValue",
    "SettingName",
    "SettingNotSet",
    "StoredSetting",
    "UnknownSetting",
    "setting_named",
]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

# `rate-limit`: the API's rate limits and tiers (the gateway's `RateLimitSettings`).
SettingName = Literal["rate-limit"]
SETTING_NAMES: tuple[SettingName, ...] = get_args(SettingName)


@dataclass(frozen=True)
class StoredSetting:
    name: SettingName
    document: JsonObject
    updated_at: datetime
    # The user (an admin) whose change the caller passed on; None when a service changed it on its own.
    updated_by: str | None


class UnknownSetting(NotFound, code="unknown_setting"):
    """A setting name identity does not keep."""


class SettingNotSet(NotFound, code="setting_not_set"):
    """A known setting nobody has stored yet: its owner uses its defaults."""


def setting_named(name: str) -> SettingName:
    """`name` as a setting identity keeps, or UnknownSetting."""
    for known in SETTING_NAMES:
        if name == known:
            return known
    raise UnknownSetting(f"no setting named {name!r}")
