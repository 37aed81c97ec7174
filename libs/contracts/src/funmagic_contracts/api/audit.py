"""`/api/admin/audit` (admins): the audit log of admin writes, newest first, over every service.

Each service keeps the admin writes it performs (`admin_audit`, written with the change) and serves them at
`GET /v1/admin/audit` (query `AuditQuery` without `service`, answer `AuditPage`); the gateway asks every
service for a page with the same filters and cursor and merges them by (`at`, `id`). A cursor is the last
entry's (`at`, `id`), so it means the same to every service. `changes` never holds a secret's value: a
field naming one (an API key, a password…) reads `"changed"`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from funmagic_contracts.api.base import IsoDatetime, Reply, Request

__all__ = ["AUDITED_SERVICES", "AuditEntry", "AuditPage", "AuditQuery", "AuditedService"]

AuditedService = Literal["identity", "credits", "tasks", "providers", "storage"]
AUDITED_SERVICES: tuple[AuditedService, ...] = ("identity", "credits", "tasks", "providers", "storage")
_NAME = r"^[a-z][a-z0-9_.-]{0,99}$"


class AuditQuery(Request):
    service: AuditedService | None = Field(None, description="Only what this service recorded.")
    actor_id: str | None = Field(
        None, max_length=64, pattern=r"^[0-9a-fA-F-]{1,64}$", description="The admin."
    )
    action: str | None = Field(None, max_length=100, pattern=_NAME, examples=["tool.updated"])
    subject_type: str | None = Field(None, max_length=100, pattern=_NAME, examples=["tool"])
    subject_id: str | None = Field(None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    after: IsoDatetime | None = Field(None, description="Recorded at or after this moment.")
    before: IsoDatetime | None = Field(None, description="Recorded before this moment.")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=300, description="`next_cursor` of the previous page.")

    @model_validator(mode="after")
    def _period_in_order(self) -> AuditQuery:
        if self.after and self.before and self.before <= self.after:
            raise PydanticCustomError("period_order", "`before` must be later than `after`")
        return self


class AuditEntry(Reply):
    id: str
    at: datetime
    service: AuditedService = Field(description="The service that made the change.")
    actor_id: str | None = Field(description="The admin who acted (null: the platform itself, a CLI).")
    action: str = Field(examples=["credits.adjusted"])
    subject_type: str = Field(examples=["user"])
    subject_id: str
    changes: dict[str, Any] = Field(description='What was sent or changed; secrets only as `"changed"`.')
    reason: str | None = None


class AuditPage(Reply):
    items: list[AuditEntry]
    next_cursor: str | None = None
