"""Fakes the gateway's integration tests share: what stands in for the services behind the Redis caches."""

from __future__ import annotations

from funmagic_gateway.application.ports import Caller
from funmagic_gateway.domain.rate_limits import RateLimitSettings


class KeptSettings:
    """Stands in for identity, which keeps the rate-limit settings (`RateLimitSettingsRecords`)."""

    def __init__(self) -> None:
        self.settings: RateLimitSettings | None = None
        self.saved_by: list[Caller] = []
        self.loads = 0

    async def load(self) -> RateLimitSettings | None:
        self.loads += 1
        return self.settings

    async def save(self, settings: RateLimitSettings, caller: Caller) -> None:
        self.settings = settings
        self.saved_by.append(caller)
