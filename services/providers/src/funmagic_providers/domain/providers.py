"""The provider registry's rules: what a provider record may hold and how its key is shown.

Two scopes with the same shape: `web` (the `providers` table, user tasks) and `admin` (the
`admin_providers` table, the admin studio). A key is write-only: it is stored encrypted and shown only
as a hint of its last four characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from funmagic_providers.domain.errors import ProvidersError
from funmagic_providers.domain.rate_limit import RateLimitConfig

__all__ = [
    "LOCAL_PROVIDER",
    "PROVIDER_TYPES",
    "SCOPES",
    "InvalidProvider",
    "ProviderType",
    "Scope",
    "check_base_url",
    "check_config",
    "check_name",
    "key_hint",
]

Scope = Literal["web", "admin"]
ProviderType = Literal["openai", "fal", "tripo", "local"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
PROVIDER_TYPES: tuple[ProviderType, ...] = get_args(ProviderType)
# The built-in provider: no key, no row needed, computes on this machine.
LOCAL_PROVIDER = "local"

# Lower-case, no braces: the name is part of Redis keys (a hash tag) and of log lines.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_CONFIG_KEYS = frozenset({"rateLimit", "models", "options", "healthCheckPath", "pollIntervalMs"})


class InvalidProvider(ProvidersError, ValueError):
    """A provider record that may not be stored, with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


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


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise InvalidProvider("config", f"unknown keys {unknown}; known: {sorted(_CONFIG_KEYS)}")
    try:
        RateLimitConfig.from_provider_config(config)
    except ValueError as error:
        raise InvalidProvider("config.rateLimit", str(error)) from None
    return dict(config)


def key_hint(api_key: str | None) -> str | None:
    """What an admin sees of a stored key: enough to tell two keys apart, never enough to use one."""
    if not api_key:
        return None
    return "••••" + (api_key[-4:] if len(api_key) >= 12 else "")
