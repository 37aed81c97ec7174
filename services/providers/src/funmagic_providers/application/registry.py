"""The provider registry: admin CRUD with write-only keys, health checks, key rotation, and the one place
that hands out a decrypted key (for a single call).

Keys are encrypted with the keyring before they reach the database, shown only as a hint, and never put
in an event, a log line or an answer. An edit of a provider's config clears the rate limiter's cached
copy so the new limits apply at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import psycopg

from funmagic_contracts.base import IntegrationEvent
from funmagic_contracts.providers.events import ProviderHealthChanged
from funmagic_kit.db import UnitOfWork
from funmagic_kit.errors import ConfigError
from funmagic_kit.logs import get_logger
from funmagic_providers.domain.errors import ProviderRejected, ProvidersError
from funmagic_providers.domain.providers import (
    LOCAL_PROVIDER,
    SCOPES,
    InvalidProvider,
    ProviderType,
    Scope,
    check_base_url,
    check_config,
    check_name,
    key_hint,
)
from funmagic_providers.domain.steps import ProviderAccess, ProviderAdapter

__all__ = ["ProviderExists", "ProviderNotFound", "ProviderRegistry"]

log = get_logger(__name__)

Publish = Callable[[psycopg.AsyncConnection, Sequence[IntegrationEvent]], Awaitable[None]]


class ProviderNotFound(ProvidersError):
    """No live provider with that id (or name) in that scope."""


class ProviderExists(ProvidersError):
    """A live provider already has that name in that scope."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class Keyring(Protocol):
    current: str

    def encrypt(self, api_key: str, *, row_id: str) -> tuple[str, bytes]: ...
    def decrypt(self, key_id: str, ciphertext: bytes, *, row_id: str) -> str: ...


RecordsFactory = Callable[[psycopg.AsyncConnection, Scope], Any]
"""`records(conn, scope)`: the provider table of that scope on this connection (adapters.postgres)."""


class ConfigCache(Protocol):
    async def forget_config(self, scope: str, provider: str) -> None: ...


class ProviderRegistry:
    def __init__(
        self,
        *,
        uow: Callable[[], UnitOfWork],
        records: RecordsFactory,
        keyring: Keyring,
        adapters: Mapping[str, ProviderAdapter],
        config_cache: ConfigCache,
        publish: Publish,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._records = records
        self._keyring = keyring
        self._adapters = adapters
        self._config_cache = config_cache
        self._publish = publish
        self._clock = clock

    # --- admin CRUD ------------------------------------------------------------------------------

    async def create(
        self,
        scope: Scope,
        *,
        name: str,
        type: ProviderType,
        display_name: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        config: Mapping[str, Any] | None = None,
        is_active: bool = True,
    ) -> dict[str, Any]:
        provider_id = str(uuid.uuid4())
        if type != "local" and not api_key:
            raise InvalidProvider("apiKey", f"a {type} provider needs an API key")
        key_id, ciphertext = self._keyring.encrypt(api_key, row_id=provider_id) if api_key else (None, None)
        row = {
            "id": provider_id,
            "name": check_name(name),
            "display_name": display_name,
            "type": type,
            "api_key_ciphertext": ciphertext,
            "api_key_id": key_id,
            "api_key_hint": key_hint(api_key),
            "base_url": check_base_url(base_url, type),
            "config": check_config(config or {}),
            "is_active": is_active,
            "now": self._clock.now(),
        }
        async with self._uow() as uow:
            created = await self._records(uow.conn, scope).add(row)
        if created is None:
            raise ProviderExists(f"a {scope} provider named {name!r} exists already")
        await self._config_cache.forget_config(scope, created["name"])
        log.info("provider created", extra={"scope": scope, "provider": created["name"]})
        return _view(scope, created)

    async def list(self, scope: Scope, *, limit: int, cursor: str | None) -> dict[str, Any]:
        async with self._uow() as uow:
            rows = await self._records(uow.conn, scope).page(limit=limit + 1, after_name=cursor)
        items = [_view(scope, row) for row in rows[:limit]]
        return {"items": items, "next_cursor": items[-1]["name"] if len(rows) > limit else None}

    async def get(self, scope: Scope, provider_id: str) -> dict[str, Any]:
        async with self._uow() as uow:
            row = await self._records(uow.conn, scope).get(provider_id)
        if row is None:
            raise ProviderNotFound("no such provider")
        return _view(scope, row)

    async def update(self, scope: Scope, provider_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """`changes` may hold display_name, base_url, config, is_active and api_key (None removes it)."""
        async with self._uow() as uow:
            records = self._records(uow.conn, scope)
            row = await records.get(provider_id, for_update=True)
            if row is None:
                raise ProviderNotFound("no such provider")
            values: dict[str, Any] = {}
            if "display_name" in changes:
                values["display_name"] = changes["display_name"]
            if "base_url" in changes:
                values["base_url"] = check_base_url(changes["base_url"], row["type"])
            if "config" in changes:
                values["config"] = check_config(changes["config"] or {})
            if "is_active" in changes:
                values["is_active"] = bool(changes["is_active"])
            if "api_key" in changes:
                api_key = changes["api_key"]
                if not api_key and row["type"] != "local":
                    raise InvalidProvider("apiKey", f"a {row['type']} provider needs an API key")
                key_id, ciphertext = (
                    self._keyring.encrypt(api_key, row_id=provider_id) if api_key else (None, None)
                )
                values |= {
                    "api_key_ciphertext": ciphertext,
                    "api_key_id": key_id,
                    "api_key_hint": key_hint(api_key),
                }
            updated = await records.update(provider_id, values, self._clock.now()) if values else row
        await self._config_cache.forget_config(scope, updated["name"])
        log.info(
            "provider updated", extra={"scope": scope, "provider": updated["name"], "fields": sorted(values)}
        )
        return _view(scope, updated)

    async def delete(self, scope: Scope, provider_id: str) -> None:
        async with self._uow() as uow:
            records = self._records(uow.conn, scope)
            row = await records.get(provider_id, for_update=True)
            if row is None or not await records.delete(provider_id, self._clock.now()):
                raise ProviderNotFound("no such provider")
        await self._config_cache.forget_config(scope, row["name"])
        log.info("provider deleted", extra={"scope": scope, "provider": row["name"]})

    # --- for the step runner and the rate limiter ---------------------------------------------------

    async def access(self, scope: Scope, name: str) -> ProviderAccess:
        """The provider a step names, with its key decrypted for this one call."""
        async with self._uow() as uow:
            row = await self._records(uow.conn, scope).by_name(name)
        if row is None:
            if name == LOCAL_PROVIDER:
                return ProviderAccess(LOCAL_PROVIDER, "local", None, None, {})
            raise ProviderRejected(
                f"no {scope} provider named {name!r} is configured", code="provider_not_found"
            )
        if not row["is_active"]:
            raise ProviderRejected(f"the {scope} provider {name!r} is turned off", code="provider_inactive")
        return self._access(row)

    async def exists(self, scope: Scope, name: str) -> bool:
        """Can steps name this provider? (`local` always can.)"""
        if name == LOCAL_PROVIDER:
            return True
        async with self._uow() as uow:
            row = await self._records(uow.conn, scope).by_name(name)
        return row is not None and bool(row["is_active"])

    async def rate_limit_source(self, scope: str, name: str) -> Mapping[str, Any] | None:
        """The provider's config as the rate limiter loads it (None: no provider, no limits)."""
        async with self._uow() as uow:
            row = await self._records(uow.conn, _scope(scope)).by_name(name)
        return None if row is None else row["config"]

    def adapter_for(self, provider_type: str) -> ProviderAdapter:
        return self._adapters[provider_type]

    # --- health ------------------------------------------------------------------------------------

    async def check_health(self, scope: Scope, provider_id: str) -> dict[str, Any]:
        async with self._uow() as uow:
            row = await self._records(uow.conn, scope).get(provider_id)
        if row is None:
            raise ProviderNotFound("no such provider")
        return _view(scope, await self._check(scope, row))

    async def check_all(self) -> int:
        """One round of health checks over every live provider of both scopes; returns how many."""
        checked = 0
        for scope in SCOPES:
            async with self._uow() as uow:
                rows = await self._records(uow.conn, scope).all_live()
            for row in rows:
                if row["is_active"]:
                    await self._check(scope, row)
                    checked += 1
        return checked

    async def _check(self, scope: Scope, row: dict[str, Any]) -> dict[str, Any]:
        try:
            healthy = await self._adapters[row["type"]].check_health(self._access(row))
        except Exception as error:  # a check must never stop the round; the reason is logged
            log.warning("health check failed", extra={"provider": row["name"], "error": type(error).__name__})
            healthy = False
        now = self._clock.now()
        async with self._uow() as uow:
            records = self._records(uow.conn, scope)
            previous = await records.set_health(row["id"], healthy, now)
            if previous is not healthy:
                await self._publish(
                    uow.conn,
                    [ProviderHealthChanged(
                        provider_id=row["id"], name=row["name"], scope=scope, is_healthy=healthy,
                        checked_at=now,
                    )],
                )  # fmt: skip
            updated = await records.get(row["id"])
        return updated or row

    # --- keys at rest ------------------------------------------------------------------------------

    async def verify_keys(self) -> int:
        """Decrypt every stored key once: a wrong master key stops the service at start, loudly."""
        count = 0
        for scope in SCOPES:
            async with self._uow() as uow:
                rows = await self._records(uow.conn, scope).all_keys()
            for row in rows:
                try:
                    self._keyring.decrypt(row["api_key_id"], row["api_key_ciphertext"], row_id=row["id"])
                except Exception as error:
                    raise ConfigError(
                        f"cannot decrypt the API key of {scope} provider {row['id']} "
                        f"(master key {row['api_key_id']!r}): check PROVIDER_MASTER_KEYS / SECRET_KEY"
                    ) from error
                count += 1
        return count

    async def rotate_keys(self) -> int:
        """Re-encrypt every key not under the current master key; returns how many rows changed."""
        rotated = 0
        now = self._clock.now()
        for scope in SCOPES:
            async with self._uow() as uow:
                records = self._records(uow.conn, scope)
                for row in await records.keys_not_under(self._keyring.current):
                    clear = self._keyring.decrypt(
                        row["api_key_id"], row["api_key_ciphertext"], row_id=row["id"]
                    )
                    key_id, ciphertext = self._keyring.encrypt(clear, row_id=row["id"])
                    await records.update(
                        row["id"], {"api_key_ciphertext": ciphertext, "api_key_id": key_id}, now
                    )
                    rotated += 1
        return rotated

    def _access(self, row: dict[str, Any]) -> ProviderAccess:
        api_key = None
        if row["api_key_ciphertext"] is not None:
            api_key = self._keyring.decrypt(row["api_key_id"], row["api_key_ciphertext"], row_id=row["id"])
        return ProviderAccess(row["name"], row["type"], row["base_url"], api_key, row["config"] or {})


def _scope(value: str) -> Scope:
    if value not in SCOPES:
        raise ValueError(f"unknown scope {value!r}")
    return value  # type: ignore[return-value]


def _view(scope: Scope, row: Mapping[str, Any]) -> dict[str, Any]:
    """What an admin sees: everything but the key, of which only a hint."""
    return {
        "id": row["id"],
        "scope": scope,
        "name": row["name"],
        "display_name": row["display_name"],
        "type": row["type"],
        "base_url": row["base_url"],
        "config": row["config"],
        "is_active": row["is_active"],
        "is_healthy": row["is_healthy"],
        "health_checked_at": row["health_checked_at"].isoformat() if row["health_checked_at"] else None,
        "has_api_key": row["api_key_ciphertext"] is not None,
        "api_key_hint": row["api_key_hint"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
