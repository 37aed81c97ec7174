"""Platform settings kept for other services (the gateway's rate limits): read one, store one whole."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from funmagic_identity.application.ports import UnitOfWorkFactory
from funmagic_identity.domain.settings import (
    JsonObject,
    SettingNotSet,
    StoredSetting,
    setting_named,
)
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock

__all__ = ["PlatformSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PlatformSettings:
    uow: UnitOfWorkFactory
    clock: Clock

    async def get(self, name: str) -> StoredSetting:
        """The stored setting; SettingNotSet when it never was (its owner then uses its defaults)."""
        known = setting_named(name)
        async with self.uow() as uow:
            stored = await uow.settings.setting(known)
        if stored is None:
            raise SettingNotSet(f"the {known} setting was never stored")
        return stored

    async def put(self, name: str, document: JsonObject, *, by: str | None) -> StoredSetting:
        """Stores `document` as the setting, replacing what was there; answers once it is committed."""
        setting = StoredSetting(
            name=setting_named(name), document=document, updated_at=self.clock.now(), updated_by=by
        )
        async with self.uow() as uow:
            await uow.settings.save_setting(setting)
            # Stored for the gateway, but an admin's write all the same (`by`: the forwarded caller).
            uow.record(AdminAction("setting.updated", "setting", setting.name, document, actor_id=by))
        log.info("platform setting stored", extra={"setting": setting.name, "by": by})
        return setting
