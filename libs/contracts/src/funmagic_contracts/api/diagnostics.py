"""`GET /api/admin/tasks/{task_id}/provider-calls` (admins): provider diagnostics — the HTTP calls each step
job of a task made to its provider, forwarded to providers (which records them):

    GET /api/admin/tasks/{task_id}/provider-calls   /v1/admin/tasks/{task_id}/provider-calls
        TaskProviderCalls

Every record was redacted before it was stored: no header but the provider's request ids, never a key,
no image or base64 data (a marker such as `"<redacted base64, 123456 chars>"` stands in its place), each
body capped at 8 KiB of JSON text. Pure: pydantic only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue

from funmagic_contracts.api.base import Reply

__all__ = ["ProviderCallRecord", "StepJobCalls", "TaskProviderCalls"]


class ProviderCallRecord(Reply):
    started_at: datetime
    method: str
    url: str = Field(description="The called URL without its query, fragment or credentials.")
    status: int | None = Field(None, description="The provider's HTTP status; null when no answer came.")
    duration_ms: int = Field(description="Until the answer was read (a download or stream: its headers).")
    request_ids: dict[str, str] = Field(
        default_factory=dict, description="The provider's request id headers; no other header is kept."
    )
    request_body: JsonValue = Field(None, description="The JSON sent, redacted; a file is only named.")
    response_body: JsonValue = Field(None, description="The JSON answered, redacted; a file is only named.")
    error: str | None = Field(None, description="Why no answer came (a timeout, a refused connection…).")


class StepJobCalls(Reply):
    job_id: str
    step_id: str
    attempt: int = Field(description="The task's attempt at the step (a retried task asks again).")
    step_type: str
    provider: str
    model: str
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    retries: int = Field(description="Provider retries the job used (each one's calls are listed).")
    calls: list[ProviderCallRecord] = Field(description="In the order they were made (the first 200).")


class TaskProviderCalls(Reply):
    task_id: str
    items: list[StepJobCalls] = Field(description="The task's step jobs, oldest first.")
