"""`/api/admin/providers/*` (web scope, admins) and `/api/admin/admin-providers/*` (studio scope,
super_admins): the models of the provider registry. Keys are write-only: answers carry `api_key_hint` only.

Request models and the providers route they are the body (or query) of — the same fields and rules, for
both scopes (`/v1/admin/providers` and `/v1/admin/admin-providers`):

    ProviderCreate   POST /v1/admin/…providers
    ProviderUpdate   PATCH /v1/admin/…providers/{provider_id} (only the fields sent: `exclude_unset`)
    ProviderQuery    GET /v1/admin/…providers (query)
    HealthHistoryQuery  GET /v1/admin/…providers/{provider_id}/health-history (query); the answer is a
                     `ProviderHealthCheckPage`, newest first

`StepTypeCatalog` is the answer of `GET /v1/admin/step-types`: for each step type, the provider types that
can run it, their models and the options each adapter reads (the admin tool editor's step form).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from funmagic_contracts.api.base import Reply, Request

__all__ = [
    "HealthHistoryQuery",
    "Provider",
    "ProviderCreate",
    "ProviderHealthCheck",
    "ProviderHealthCheckPage",
    "ProviderPage",
    "ProviderQuery",
    "ProviderUpdate",
    "StepOptionField",
    "StepProviderSupport",
    "StepTypeCatalog",
    "StepTypeSchema",
]


class ProviderCreate(Request):
    name: str = Field(min_length=1, max_length=63, examples=["openai"])
    type: Literal["openai", "fal", "tripo", "replicate", "hunyuan", "gemini", "local"]
    display_name: str | None = Field(None, max_length=120)
    api_key: str | None = Field(
        None, min_length=1, max_length=1024, description="Write-only. For `hunyuan`: the SecretId."
    )
    api_secret: str | None = Field(
        None,
        min_length=1,
        max_length=1024,
        description="Write-only: the second part of a two-part credential, required for `hunyuan` (the "
        "SecretKey) and refused for the other types.",
    )
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
    api_secret: str | None = Field(
        None, max_length=1024, description="Write-only; replaces the stored secret (`hunyuan`)."
    )
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
    has_api_secret: bool = False
    api_secret_hint: str | None = Field(None, description="'••••' and the secret's last four characters.")
    created_at: datetime
    updated_at: datetime


class ProviderPage(Reply):
    items: list[Provider]
    next_cursor: str | None = None


class ProviderQuery(Request):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=63)


class ProviderHealthCheck(Reply):
    id: str
    checked_at: datetime
    healthy: bool
    latency_ms: int = Field(description="How long the check took, in milliseconds.")
    error: str | None = Field(
        None, description="Why the check failed (a status code, a timeout…); never a key. Null when healthy."
    )
    trigger: Literal["manual", "periodic"] = Field(
        description="`manual`: an admin asked for it; `periodic`: the service's own round."
    )


class ProviderHealthCheckPage(Reply):
    items: list[ProviderHealthCheck]
    next_cursor: str | None = None


class HealthHistoryQuery(Request):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")


class StepOptionField(Reply):
    name: str = Field(description="The key in a step's `provider.options`.")
    kind: Literal["string", "integer", "number", "boolean", "enum"]
    description: str
    default: Any = Field(None, description="What the adapter uses when the option is not set (null: none).")
    enum: list[str] | None = Field(None, description="The allowed values of an `enum` option.")
    minimum: float | None = None
    maximum: float | None = None


class StepProviderSupport(Reply):
    type: str = Field(description="A provider type (`openai`, `fal`, `tripo`, `local`).")
    models: list[str] = Field(description="Known models, the default first; others are passed on as given.")
    options: list[StepOptionField]


class StepTypeSchema(Reply):
    type: str = Field(description="A step type, as in a tool's `steps[].type`.")
    description: str
    providers: list[StepProviderSupport]


class StepTypeCatalog(Reply):
    items: list[StepTypeSchema]
