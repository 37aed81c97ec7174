"""The provider registry: admin CRUD with write-only keys, health checks, key rotation, and the one place
that hands out a decrypted key (for a single call).

Keys are encrypted with the keyring before they reach the database, shown only as a hint, and never put
in an event, a log line or an answer. An edit of a provider's config clears the rate limiter's cached
copy so the new limits apply at once. Every health check, asked for or periodic, is kept in the
provider's health history (for `HEALTH_HISTORY_KEPT`), with its latency and, for a failure, why.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TypedDict

from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock
from funmagic_kit.errors import ConfigError
from funmagic_kit.logs import get_logger
from funmagic_kit.ports import UnitOfWorkFactory
from funmagic_kit.request_once import RequestKey
from funmagic_providers.application.ports import ConfigCache, Keyring, ProvidersUnitOfWork
from funmagic_providers.domain.documents import JsonObject
from funmagic_providers.domain.errors import ProviderRejected
from funmagic_providers.domain.health import HealthCheck, HealthTrigger, health_check
from funmagic_providers.domain.providers import (
    LOCAL_PROVIDER,
    SCOPES,
    CredentialPart,
    InvalidProvider,
    Provider,
    ProviderExists,
    ProviderNotFound,
    ProviderType,
    Scope,
    SealedKey,
    check_base_url,
    check_config,
    check_credentials_follow_base_url,
    check_name,
    check_secret,
    key_hint,
    record_health,
)
from funmagic_providers.domain.steps import HealthReport, ProviderAccess, ProviderAdapter

__all__ = [
    "HEALTH_HISTORY_KEPT",
    "HealthCheckPage",
    "HealthCheckView",
    "ProviderChanges",
    "ProviderExists",
    "ProviderNotFound",
    "ProviderPage",
    "ProviderRegistry",
    "ProviderView",
]

log = get_logger(__name__)

# How long a provider's health history is kept: a periodic round every five minutes makes ~8,600 rows a
# month per provider, plenty to see a pattern, and the table stays small.
HEALTH_HISTORY_KEPT = timedelta(days=30)


class ProviderView(TypedDict):
    """What an admin sees of a provider: everything but the key, of which only a hint."""

    id: str
    scope: Scope
    name: str
    display_name: str | None
    type: ProviderType
    base_url: str | None
    config: JsonObject
    is_active: bool
    is_healthy: bool | None
    health_checked_at: str | None
    has_api_key: bool
    api_key_hint: str | None
    has_api_secret: bool
    api_secret_hint: str | None
    created_at: str
    updated_at: str


class ProviderPage(TypedDict):
    items: list[ProviderView]
    next_cursor: str | None


class HealthCheckView(TypedDict):
    """One check of a provider's health history."""

    id: str
    checked_at: str
    healthy: bool
    latency_ms: int
    error: str | None
    trigger: HealthTrigger


class HealthCheckPage(TypedDict):
    items: list[HealthCheckView]
    next_cursor: str | None


class ProviderChanges(TypedDict, total=False):
    """An admin's edit: only the fields given change; `api_key: None` removes the key."""

    display_name: str | None
    api_key: str | None
    api_secret: str | None
    base_url: str | None
    config: JsonObject | None
    is_active: bool | None


@dataclass(frozen=True, kw_only=True)
class ProviderRegistry:
    uow: UnitOfWorkFactory[ProvidersUnitOfWork]
    keyring: Keyring
    adapters: Mapping[str, ProviderAdapter]
    config_cache: ConfigCache
    clock: Clock

    # --- admin CRUD ------------------------------------------------------------------------------

    async def create(
        self,
        scope: Scope,
        *,
        name: str,
        type: ProviderType,
        display_name: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        base_url: str | None = None,
        config: JsonObject | None = None,
        is_active: bool = True,
        key: RequestKey | None = None,
    ) -> ProviderView:
        """A new provider; with `key`, once: a retry answers with the provider its first request created,
        as it is now."""
        provider_id = str(uuid.uuid4())
        if type != "local" and not api_key:
            raise InvalidProvider("apiKey", f"a {type} provider needs an API key")
        api_secret = check_secret(api_secret, type)
        now = self.clock.now()
        provider = Provider(
            id=provider_id,
            name=check_name(name),
            display_name=display_name,
            type=type,
            base_url=check_base_url(base_url, type),
            config=check_config(config or {}),
            is_active=is_active,
            key=self._seal(api_key, provider_id),
            key_hint=key_hint(api_key),
            is_healthy=None,
            health_checked_at=None,
            created_at=now,
            updated_at=now,
            secret=self._seal(api_secret, provider_id, part="secret"),
            secret_hint=key_hint(api_secret),
        )
        async with self.uow() as uow:
            # Claimed before the name is checked: a retry finds its own provider, not a taken name.
            if key is not None and (earlier := await uow.claim(key)) is not None:
                existing = await uow.providers[scope].get(earlier)
                if existing is None:
                    raise ProviderNotFound("the provider this request created was removed since")
                return _view(scope, existing)
            created = await uow.providers[scope].add(provider)
            if created is None:
                # Raised inside the transaction: it rolls back, and the key stays free for another try.
                raise ProviderExists(f"a {scope} provider named {name!r} exists already")
            change = {"scope": scope, "name": name, "type": type, "display_name": display_name,
                      "base_url": base_url, "config": config or {}, "is_active": is_active,
                      "api_key": api_key, "api_secret": api_secret}  # fmt: skip
            uow.record(AdminAction("provider.created", "provider", provider_id, change))
            if key is not None:
                uow.created(key, provider_id)
        await self.config_cache.forget_config(scope, created.name)
        log.info("provider created", extra={"scope": scope, "provider": created.name})
        return _view(scope, created)

    async def list(self, scope: Scope, *, limit: int, cursor: str | None) -> ProviderPage:
        """A page in name order; the cursor is the last name shown (names are unique in a scope, and
        clients and the gateway's API contract know this cursor as a name of at most 63 characters)."""
        async with self.uow() as uow:
            providers = await uow.providers[scope].page(limit=limit + 1, after_name=cursor)
        items = [_view(scope, provider) for provider in providers[:limit]]
        return {"items": items, "next_cursor": items[-1]["name"] if len(providers) > limit else None}

    async def get(self, scope: Scope, provider_id: str) -> ProviderView:
        async with self.uow() as uow:
            provider = await uow.providers[scope].get(provider_id)
        if provider is None:
            raise ProviderNotFound("no such provider")
        return _view(scope, provider)

    async def update(self, scope: Scope, provider_id: str, changes: ProviderChanges) -> ProviderView:
        async with self.uow() as uow:
            records = uow.providers[scope]
            provider = await records.get(provider_id, for_update=True)
            if provider is None:
                raise ProviderNotFound("no such provider")
            edited = self._edited(provider, changes)
            if changes:
                edited = replace(edited, updated_at=self.clock.now())
                await records.save(edited)
                # The key only as "changed" (the audit log keeps no secret, nor its hint).
                before = {
                    field: getattr(provider, field)
                    for field in changes
                    if field not in ("api_key", "api_secret")
                }
                change = {"scope": scope, "name": provider.name, **changes, "before": before}
                uow.record(AdminAction("provider.updated", "provider", provider_id, change))
        await self.config_cache.forget_config(scope, provider.name)
        log.info(
            "provider updated", extra={"scope": scope, "provider": provider.name, "fields": sorted(changes)}
        )
        return _view(scope, edited)

    def _edited(self, provider: Provider, changes: ProviderChanges) -> Provider:
        edited = provider
        if "display_name" in changes:
            edited = replace(edited, display_name=changes["display_name"])
        if "base_url" in changes:
            base_url = check_base_url(changes["base_url"], provider.type)
            check_credentials_follow_base_url(provider, base_url, changes.keys())
            edited = replace(edited, base_url=base_url)
        if "config" in changes:
            edited = replace(edited, config=check_config(changes["config"] or {}))
        if "is_active" in changes:
            edited = replace(edited, is_active=bool(changes["is_active"]))
        if "api_key" in changes:
            api_key = changes["api_key"]
            if not api_key and provider.type != "local":
                raise InvalidProvider("apiKey", f"a {provider.type} provider needs an API key")
            edited = replace(edited, key=self._seal(api_key, provider.id), key_hint=key_hint(api_key))
        if "api_secret" in changes:
            api_secret = check_secret(changes["api_secret"], provider.type)
            sealed = self._seal(api_secret, provider.id, part="secret")
            edited = replace(edited, secret=sealed, secret_hint=key_hint(api_secret))
        return edited

    async def delete(self, scope: Scope, provider_id: str) -> None:
        async with self.uow() as uow:
            records = uow.providers[scope]
            provider = await records.get(provider_id, for_update=True)
            if provider is None or not await records.delete(provider_id, self.clock.now()):
                raise ProviderNotFound("no such provider")
            change = {"scope": scope, "name": provider.name}
            uow.record(AdminAction("provider.deleted", "provider", provider_id, change))
        await self.config_cache.forget_config(scope, provider.name)
        log.info("provider deleted", extra={"scope": scope, "provider": provider.name})

    # --- for the step runner and the rate limiter ---------------------------------------------------

    async def access(self, scope: Scope, name: str) -> ProviderAccess:
        """The provider a step names, with its key decrypted for this one call (read outside a transaction:
        one statement, no BEGIN and COMMIT around it — every step job asks)."""
        async with self.uow().reading() as uow:
            provider = await uow.providers[scope].by_name(name)
        if provider is None:
            if name == LOCAL_PROVIDER:
                return ProviderAccess(LOCAL_PROVIDER, "local", None, None, {})
            raise ProviderRejected(
                f"no {scope} provider named {name!r} is configured", code="provider_not_found"
            )
        if not provider.is_active:
            raise ProviderRejected(f"the {scope} provider {name!r} is turned off", code="provider_inactive")
        return self._access(provider)

    async def exists(self, scope: Scope, name: str) -> bool:
        """Can steps name this provider? (`local` always can.)"""
        if name == LOCAL_PROVIDER:
            return True
        async with self.uow().reading() as uow:
            provider = await uow.providers[scope].by_name(name)
        return provider is not None and provider.is_active

    async def studio_providers(self) -> list[tuple[str, str]]:
        """(name, type) of every studio provider that can run replies, in name order; the built-in `local`
        is one unless an admin configured a provider under that name."""
        async with self.uow().reading() as uow:
            providers = [p for p in await uow.providers["admin"].all_live() if p.is_active]
        found = [(p.name, p.type) for p in providers]
        if all(name != LOCAL_PROVIDER for name, _ in found):
            found.append((LOCAL_PROVIDER, "local"))
        return sorted(found)

    async def studio_provider(self, name: str) -> tuple[str, str] | None:
        """(name, type) of one studio provider that can run replies; None when there is none."""
        return next((found for found in await self.studio_providers() if found[0] == name), None)

    async def rate_limit_source(self, scope: str, name: str) -> JsonObject | None:
        """The provider's config as the rate limiter loads it (None: no provider, no limits)."""
        async with self.uow().reading() as uow:
            provider = await uow.providers[_scope(scope)].by_name(name)
        return None if provider is None else provider.config

    def adapter_for(self, provider_type: str) -> ProviderAdapter:
        return self.adapters[provider_type]

    # --- health ------------------------------------------------------------------------------------

    async def check_health(self, scope: Scope, provider_id: str) -> ProviderView:
        async with self.uow() as uow:
            provider = await uow.providers[scope].get(provider_id)
        if provider is None:
            raise ProviderNotFound("no such provider")
        return _view(scope, await self._check(scope, provider, trigger="manual"))

    async def health_history(
        self, scope: Scope, provider_id: str, *, limit: int, cursor: str | None
    ) -> HealthCheckPage:
        """A live provider's health checks, newest first."""
        async with self.uow() as uow:
            if await uow.providers[scope].get(provider_id) is None:
                raise ProviderNotFound("no such provider")
            checks, next_cursor = await uow.health_checks.page(scope, provider_id, limit=limit, cursor=cursor)
        return {"items": [_check_view(check) for check in checks], "next_cursor": next_cursor}

    async def check_all(self) -> int:
        """One round of health checks over every live provider of both scopes; returns how many."""
        checked = 0
        for scope in SCOPES:
            async with self.uow() as uow:
                providers = await uow.providers[scope].all_live()
            for provider in providers:
                if provider.is_active:
                    await self._check(scope, provider, trigger="periodic")
                    checked += 1
        return checked

    async def _check(self, scope: Scope, provider: Provider, *, trigger: HealthTrigger) -> Provider:
        access = self._access(provider)
        # A duration, not a moment: measured on the monotonic clock (the `Clock` dates the check).
        started = time.perf_counter()
        try:
            report = await self.adapters[provider.type].check_health(access)
        except Exception as error:  # a check must never stop the round; the reason is logged
            log.warning(
                "health check failed", extra={"provider": provider.name, "error": type(error).__name__}
            )
            report = HealthReport(False, f"the check failed ({type(error).__name__})")
        latency_ms = round((time.perf_counter() - started) * 1000)
        async with self.uow() as uow:
            records = uow.providers[scope]
            current = await records.get(provider.id, for_update=True)
            if current is None:  # deleted while it was being checked
                return provider
            now = self.clock.now()
            checked, changed = record_health(current, scope, healthy=report.healthy, now=now)
            await records.save(checked)
            await uow.health_checks.add(
                scope,
                health_check(
                    report,
                    check_id=str(uuid.uuid4()),
                    provider_id=provider.id,
                    checked_at=now,
                    latency_ms=latency_ms,
                    trigger=trigger,
                    api_key=access.api_key,
                ),
            )
            await uow.health_checks.forget_before(scope, provider.id, now - HEALTH_HISTORY_KEPT)
            if changed is not None:
                uow.publish(changed)
        return checked

    # --- keys at rest ------------------------------------------------------------------------------

    async def verify_keys(self) -> int:
        """Decrypt every stored key once: a wrong master key stops the service at start, loudly."""
        count = 0
        for scope in SCOPES:
            async with self.uow() as uow:
                providers = await uow.providers[scope].with_keys()
            for provider in providers:
                try:
                    self._open(provider)
                    self._open_secret(provider)
                except Exception as error:
                    key_id = provider.key.key_id if provider.key else None
                    raise ConfigError(
                        f"cannot decrypt the API key or secret of {scope} provider {provider.id} "
                        f"(master key {key_id!r}): check PROVIDER_MASTER_KEYS / SECRET_KEY"
                    ) from error
                count += 1
        return count

    async def rotate_keys(self) -> int:
        """Re-encrypt every key not under the current master key; returns how many rows changed."""
        rotated = 0
        now = self.clock.now()
        for scope in SCOPES:
            async with self.uow() as uow:
                records = uow.providers[scope]
                for provider in await records.with_keys(not_under=self.keyring.current):
                    resealed = self._seal(self._open(provider), provider.id)
                    secret = self._seal(self._open_secret(provider), provider.id, part="secret")
                    await records.save(replace(provider, key=resealed, secret=secret, updated_at=now))
                    rotated += 1
        return rotated

    def _seal(
        self, api_key: str | None, provider_id: str, *, part: CredentialPart = "key"
    ) -> SealedKey | None:
        if not api_key:
            return None
        key_id, ciphertext = self.keyring.encrypt(api_key, row_id=provider_id, part=part)
        return SealedKey(key_id, ciphertext)

    def _open_secret(self, provider: Provider) -> str | None:
        if provider.secret is None:
            return None
        sealed = provider.secret
        return self.keyring.decrypt(sealed.key_id, sealed.ciphertext, row_id=provider.id, part="secret")

    def _open(self, provider: Provider) -> str | None:
        if provider.key is None:
            return None
        return self.keyring.decrypt(provider.key.key_id, provider.key.ciphertext, row_id=provider.id)

    def _access(self, provider: Provider) -> ProviderAccess:
        return ProviderAccess(
            provider.name,
            provider.type,
            provider.base_url,
            self._open(provider),
            provider.config,
            api_secret=self._open_secret(provider),
        )


def _scope(value: str) -> Scope:
    for scope in SCOPES:
        if value == scope:
            return scope
    raise ValueError(f"unknown scope {value!r}")


def _check_view(check: HealthCheck) -> HealthCheckView:
    return {
        "id": check.id,
        "checked_at": check.checked_at.isoformat(),
        "healthy": check.healthy,
        "latency_ms": check.latency_ms,
        "error": check.error,
        "trigger": check.trigger,
    }


def _view(scope: Scope, provider: Provider) -> ProviderView:
    return {
        "id": provider.id,
        "scope": scope,
        "name": provider.name,
        "display_name": provider.display_name,
        "type": provider.type,
        "base_url": provider.base_url,
        "config": provider.config,
        "is_active": provider.is_active,
        "is_healthy": provider.is_healthy,
        "health_checked_at": provider.health_checked_at.isoformat() if provider.health_checked_at else None,
        "has_api_key": provider.key is not None,
        "api_key_hint": provider.key_hint,
        "has_api_secret": provider.secret is not None,
        "api_secret_hint": provider.secret_hint,
        "created_at": provider.created_at.isoformat(),
        "updated_at": provider.updated_at.isoformat(),
    }
