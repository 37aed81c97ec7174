"""Platform settings kept for other services: which names exist, and storing one whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType

import pytest

from funmagic_identity.application.settings import PlatformSettings
from funmagic_identity.domain.settings import (
    SETTING_NAMES,
    SettingName,
    SettingNotSet,
    StoredSetting,
    UnknownSetting,
    setting_named,
)
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import ManualClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class InMemorySettings:
    rows: dict[str, StoredSetting] = field(default_factory=dict)
    audit: list[AdminAction] = field(default_factory=list)

    async def setting(self, name: SettingName) -> StoredSetting | None:
        return self.rows.get(name)

    async def save_setting(self, setting: StoredSetting) -> None:
        self.rows[setting.name] = setting


class SettingsUnitOfWork:
    """Commits its copy of the rows on a clean exit only, like the real one."""

    def __init__(self, committed: InMemorySettings) -> None:
        self._committed = committed
        self.settings = InMemorySettings()
        self._recorded: list[AdminAction] = []

    async def __aenter__(self) -> SettingsUnitOfWork:
        self.settings = InMemorySettings(dict(self._committed.rows))
        self._recorded = []
        return self

    def record(self, action: AdminAction) -> None:
        self._recorded.append(action)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self._committed.rows = self.settings.rows
            self._committed.audit += self._recorded


@pytest.fixture
def committed() -> InMemorySettings:
    return InMemorySettings()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def settings(committed: InMemorySettings, clock: ManualClock) -> PlatformSettings:
    return PlatformSettings(uow=lambda: SettingsUnitOfWork(committed), clock=clock)  # type: ignore[arg-type,return-value]


def test_the_rate_limits_are_the_one_setting_kept() -> None:
    assert SETTING_NAMES == ("rate-limit",)
    assert setting_named("rate-limit") == "rate-limit"
    for name in ("payments", "Rate-Limit", ""):
        with pytest.raises(UnknownSetting):
            setting_named(name)


async def test_a_setting_never_stored_is_not_set(settings: PlatformSettings) -> None:
    with pytest.raises(SettingNotSet):
        await settings.get("rate-limit")


async def test_a_stored_setting_is_read_back_with_when_and_by_whom(
    settings: PlatformSettings, clock: ManualClock, committed: InMemorySettings
) -> None:
    document = {"task_creation": {"limit": 10, "window_seconds": 60}, "tiers": []}

    stored = await settings.put("rate-limit", document, by="admin-1")

    assert stored == StoredSetting("rate-limit", document, START, "admin-1")
    assert await settings.get("rate-limit") == stored
    clock.advance(minutes=5)
    replaced = await settings.put("rate-limit", {"upload": {"limit": 1}}, by=None)
    assert await settings.get("rate-limit") == replaced
    assert (replaced.document, replaced.updated_at, replaced.updated_by) == (
        {"upload": {"limit": 1}},
        clock.now(),
        None,
    )
    assert committed.audit == [
        AdminAction("setting.updated", "setting", "rate-limit", document, actor_id="admin-1"),
        AdminAction("setting.updated", "setting", "rate-limit", {"upload": {"limit": 1}}),
    ], "each store is an admin write in the audit log"


async def test_an_unknown_setting_is_neither_read_nor_stored(
    settings: PlatformSettings, committed: InMemorySettings
) -> None:
    with pytest.raises(UnknownSetting):
        await settings.put("payments", {"a": 1}, by=None)
    with pytest.raises(UnknownSetting):
        await settings.get("payments")
    assert committed.rows == {}
