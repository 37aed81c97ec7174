"""The provider registry's rules: what a provider record may hold and how its key is shown.

Two scopes with the same shape: `web` (the `providers` table, user tasks) and `admin` (the
`admin_providers` table, the admin studio). A key is write-only: it is stored encrypted and shown only
as a hint of its last four characters. A provider whose API signs requests with a pair (Tencent Cloud's
SecretId and SecretKey) keeps the id as its key and the other part as its secret, stored the same way.

`Provider` is one record of either table; the refusals an admin can meet (`InvalidProvider`,
`ProviderNotFound`, `ProviderExists`) derive from the kit's refusal kinds, so the HTTP edge maps them.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, get_args

from funmagic_contracts.providers.events import ProviderHealthChanged
from funmagic_kit.errors import Conflict, NotFound, Refused
from funmagic_providers.domain.documents import JsonObject, JsonValue
from funmagic_providers.domain.rate_limit import RateLimitConfig

__all__ = [
    "LOCAL_PROVIDER",
    "NEEDS_SECRET",
    "PROVIDER_TYPES",
    "SCOPES",
    "CredentialPart",
    "InvalidProvider",
    "Provider",
    "ProviderExists",
    "ProviderNotFound",
    "ProviderType",
    "Scope",
    "SealedKey",
    "check_base_url",
    "check_config",
    "check_credentials_follow_base_url",
    "check_name",
    "check_secret",
    "key_hint",
    "record_health",
]

Scope = Literal["web", "admin"]
ProviderType = Literal["openai", "fal", "tripo", "replicate", "hunyuan", "gemini", "local"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
PROVIDER_TYPES: tuple[ProviderType, ...] = get_args(ProviderType)
# The built-in provider: no key, no row needed, computes on this machine.
LOCAL_PROVIDER = "local"
# Which part of a credential a ciphertext holds: the key (or SecretId), or its secret.
CredentialPart = Literal["key", "secret"]
# Types whose credential has a second, secret part (`Provider.secret`): refused without it.
NEEDS_SECRET: frozenset[ProviderType] = frozenset({"hunyuan"})

# Lower-case, no braces: the name is part of Redis keys (a hash tag) and of log lines.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_CONFIG_KEYS = frozenset({"rateLimit", "models", "options", "healthCheckPath", "pollIntervalMs"})


@dataclass(frozen=True)
class SealedKey:
    """A provider's API key as stored: encrypted under the master key `key_id`, bound to its row id."""

    key_id: str
    ciphertext: bytes = field(repr=False)


@dataclass(frozen=True)
class Provider:
    """One provider record of a scope's table (deleted records are never loaded)."""

    id: str
    name: str
    display_name: str | None
    type: ProviderType
    base_url: str | None
    config: JsonObject
    is_active: bool
    key: SealedKey | None
    key_hint: str | None
    is_healthy: bool | None
    health_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # The credential's second part (NEEDS_SECRET), sealed like the key.
    secret: SealedKey | None = None
    secret_hint: str | None = None


class InvalidProvider(Refused, code="invalid_provider"):
    """A provider record that may not be stored, with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class ProviderNotFound(NotFound):
    """No live provider with that id (or name) in that scope."""


class ProviderExists(Conflict, code="provider_exists"):
    """A live provider already has that name in that scope."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidProvider(
            "name", "use 1–63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_base_url(base_url: str | None, provider_type: ProviderType) -> str | None:
    if base_url is None or base_url == "":
        if provider_type == "local":
            return None
        raise InvalidProvider("baseUrl", f"a {provider_type} provider needs its API base URL")
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", base_url):
        raise InvalidProvider("baseUrl", "must be an http(s) URL without query or fragment")
    return base_url.rstrip("/")


def check_credentials_follow_base_url(
    provider: Provider, new_base_url: str | None, given: Collection[str]
) -> None:
    """A stored key (and secret) is only ever sent to the address it was entered for: moving a provider to
    another base URL needs them again, or an admin could point it at a server of their own and read the key
    off the next call. `given`: the credential fields the same edit sets."""
    if new_base_url == provider.base_url:
        return
    if provider.key is not None and "api_key" not in given:
        raise InvalidProvider("apiKey", "a new base URL needs the API key entered again")
    if provider.secret is not None and "api_secret" not in given:
        raise InvalidProvider("apiSecret", "a new base URL needs the API secret entered again")


def check_config(config: JsonObject) -> dict[str, JsonValue]:
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise InvalidProvider("config", f"unknown keys {unknown}; known: {sorted(_CONFIG_KEYS)}")
    try:
        RateLimitConfig.from_provider_config(config)
    except ValueError as error:  # InvalidRateLimitConfig
        raise InvalidProvider("config.rateLimit", str(error)) from None
    return dict(config)


def check_secret(api_secret: str | None, provider_type: ProviderType) -> str | None:
    """The secret a provider of this type keeps: required where the type signs with a pair, refused where
    it would never be used (a secret stored for nothing is one more to leak)."""
    if provider_type in NEEDS_SECRET:
        if not api_secret:
            raise InvalidProvider("apiSecret", f"a {provider_type} provider needs its API secret")
        return api_secret
    if api_secret:
        raise InvalidProvider("apiSecret", f"a {provider_type} provider has no API secret")
    return None


def key_hint(api_key: str | None) -> str | None:
    """What an admin sees of a stored key: enough to tell two keys apart, never enough to use one."""
    if not api_key:
        return None
    return "••••" + (api_key[-4:] if len(api_key) >= 12 else "")


def record_health(
    provider: Provider, scope: Scope, *, healthy: bool, now: datetime
) -> tuple[Provider, ProviderHealthChanged | None]:
    """A health check's result: stored on the provider, and said as an event only when it changed (a
    provider never checked before changes to whatever the first check finds)."""
    checked = replace(provider, is_healthy=healthy, health_checked_at=now)
    if provider.is_healthy is healthy:
        return checked, None
    changed = ProviderHealthChanged(
        provider_id=provider.id, name=provider.name, scope=scope, is_healthy=healthy, checked_at=now
    )
    return checked, changed
