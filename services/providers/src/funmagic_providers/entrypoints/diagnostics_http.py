"""Internal HTTP API of provider diagnostics (admins): `GET /v1/admin/tasks/{task_id}/provider-calls`,
the calls a task's step jobs made to their providers, answered as `funmagic_contracts.api.diagnostics`
models (the gateway forwards them as they are). Records are redacted before they are stored."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from funmagic_contracts.api import diagnostics as api
from funmagic_kit.api import json_body, path_uuid, require_role
from funmagic_providers.application.diagnostics import JobCalls, ProviderDiagnostics
from funmagic_providers.domain.provider_calls import ProviderCall

__all__ = ["DiagnosticsApp"]


class DiagnosticsApp:
    def __init__(self, diagnostics: ProviderDiagnostics) -> None:
        self._diagnostics = diagnostics

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get("/v1/admin/tasks/{task_id}/provider-calls", self.provider_calls)]

    async def provider_calls(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        task_id = path_uuid(request, "task_id", "task")
        jobs = await self._diagnostics.of_task(task_id)
        return json_body(api.TaskProviderCalls(task_id=task_id, items=[_job(item) for item in jobs]))


def _job(item: JobCalls) -> api.StepJobCalls:
    job = item.job
    return api.StepJobCalls(
        job_id=job.id, step_id=job.step_id, attempt=job.attempt, step_type=job.step_type,
        provider=job.provider, model=job.model, status=job.status, retries=job.retries,
        calls=[_call(call) for call in item.calls],
    )  # fmt: skip


def _call(call: ProviderCall) -> api.ProviderCallRecord:
    return api.ProviderCallRecord(
        started_at=call.started_at, method=call.method, url=call.url, status=call.status,
        duration_ms=call.duration_ms, request_ids=dict(call.request_ids), request_body=call.request_body,
        response_body=call.response_body, error=call.error,
    )  # fmt: skip
