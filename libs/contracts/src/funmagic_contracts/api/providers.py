"""`/api/admin/providers/*` (web scope, admins) and `/api/admin/admin-providers/*` (studio scope,
super_admins): the models of the provider registry. Keys are write-only: answers carry `api_key_hint` only.

Request models and the providers route they are the body (or query) of — the same fields and rules, for
both scopes (`/v1/admin/providers` and `/v1/admin/admin-providers`):

    ProviderCreate   POST /v1/admin/…providers
    ProviderUpdate   PATCH /v1/admin/…providers/{provider_id} (only the fields sent: `exclude_unset`)
    ProviderQuery    GET /v1/admin/…providers (query)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from funmagic_contracts.api.base import Reply, Request

__all__ = ["Provider", "ProviderCreate", "ProviderPage", "ProviderQuery", "ProviderUpdate"]


class ProviderCreate(Request):
    name: str = Field(min_length=1, max_length=63, examples=["openai"])
    type: Literal["openai", "fal", "tripo", "local"]
    display_name: str | None = Field(None, max_length=120)
    api_key: str | None = Field(None, min_length=1, max_length=1024, description="Write-only.")
    base_url: str | None = Field(None, max_length=500, examples=["https://api.openai.com/v1"])
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="`rateLimit` {maxConcurrency, maxPerMinute, maxPerDay, retryOn429, maxRetries, "
        "baseBackoffMs}, all optional; no rateLimit = no limits.",
    )
    is_active: bool = True


class ProviderUpdate(Request):
    display_name: str | None = Field(None, max_length=120)
    api_key: str | None = Field(None, max_length=1024, description="Write-only; replaces the stored key.")
    base_url: str | None = Field(None, max_length=500)
    config: dict[str, Any] | None = None
    is_active: bool | None = None


class Provider(Reply):
    id: str
    scope: Literal["web", "admin"]
    name: str
    display_name: str | None = None
    type: str
    base_url: str | None = None
    config: dict[str, Any]
    is_active: bool
    is_healthy: bool | None = None
    health_checked_at: datetime | None = None
    has_api_key: bool
    api_key_hint: str | None = Field(None, description="'••••' and the key's last four characters.")
    created_at: datetime
    updated_at: datetime


class ProviderPage(Reply):
    items: list[Provider]
    next_cursor: str | None = None


class ProviderQuery(Request):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=63)
