"""Tracing across the platform: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one task's work is one trace
spanning gateway, tasks, credits, providers and storage, each span's parent the span that caused it — over
HTTP (`traceparent` headers), Kafka (the `traceparent` message header) and the provider step job's row.
The spans reach a real OTLP/HTTP receiver (tests/fakes/otlp_receiver.py) through the SDK's exporter."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import otlp_receiver
import pytest
from clients import E2E_PORT_BASE, bearer, browser, call, png, sign_up, unique_email, upload
from extra_platform import ExtraPlatform, extra_platform

from funmagic_kit.testing import wait_until

TRACED_PORT_BASE = E2E_PORT_BASE + 40
TRACED_SERVICES = {"gateway", "tasks", "credits", "providers", "storage"}


@pytest.fixture(scope="module")
def receiver() -> Iterator[otlp_receiver.RunningReceiver]:
    running = otlp_receiver.start_in_thread()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def traced_platform(
    platform: dict,
    platform_env: dict[str, str],
    receiver: otlp_receiver.RunningReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExtraPlatform]:
    overrides = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with extra_platform(
        platform_env, port_base=TRACED_PORT_BASE, beside_port_base=E2E_PORT_BASE, redis_db=7,
        run_dir=tmp_path_factory.mktemp("traced"),
        overrides=overrides,
    ) as traced:  # fmt: skip
        yield traced


async def test_one_tasks_work_is_one_trace_across_five_services_with_correct_parents(
    traced_platform: ExtraPlatform, receiver: otlp_receiver.RunningReceiver
) -> None:
    gateway = traced_platform.gateway
    async with browser(gateway) as client:
        account = await sign_up(client, unique_email("traced"), mode="token")
    token = account["access_token"]
    image = await upload(token, png(80, 60), gateway=gateway)

    # The caller starts the trace: its own trace id and span id, as a browser's instrumentation would.
    trace_id, client_span_id = secrets.token_hex(16), secrets.token_hex(8)
    async with browser(gateway) as client:
        status, task, _ = await call(
            client, "POST", "/api/tasks",
            headers={**bearer(token), "traceparent": f"00-{trace_id}-{client_span_id}-01"},
            json={"toolSlug": "background-remove", "input": {"imageAssetId": image}},
        )  # fmt: skip
        assert status == 202, task

        async def task_completed() -> bool:
            status, current, _ = await call(client, "GET", f"/api/tasks/{task['id']}", headers=bearer(token))
            return status == 200 and current["status"] == "completed"

        await wait_until(task_completed, timeout=60, what="the traced task to complete")

    def spans_of_trace() -> list[otlp_receiver.ReceivedSpan]:
        return [s for s in receiver.spans() if s.trace_id == trace_id]

    async def whole_trace_arrived() -> bool:
        spans = spans_of_trace()
        by_id = {s.span_id: s for s in spans}
        ids = set(by_id) | {client_span_id}
        services = {s.service for s in spans}
        charged = any(s.name == "consume TaskCompleted" and s.service == "credits" for s in spans)
        # Each service exports its spans in its own batches: storage's answers to the runner's calls can
        # arrive after everything else of the trace, so the wait asks for a storage server span whose
        # parent is a providers span.
        stored_for_providers = any(
            s.service == "storage" and s.kind == "server"
            and (caller := by_id.get(s.parent_span_id or "")) is not None and caller.service == "providers"
            for s in spans
        )  # fmt: skip
        return (
            services >= TRACED_SERVICES
            and charged
            and stored_for_providers
            and all(s.parent_span_id in ids for s in spans)
        )

    await wait_until(whole_trace_arrived, timeout=30, what="every span of the task's trace")

    spans = spans_of_trace()
    by_id = {s.span_id: s for s in spans}

    def parent(span: otlp_receiver.ReceivedSpan) -> otlp_receiver.ReceivedSpan:
        return by_id[span.parent_span_id or ""]

    (created,) = [s for s in spans if s.service == "gateway" and s.name == "POST /api/tasks"]
    assert (created.kind, created.parent_span_id) == ("server", client_span_id)
    # The gateway's call to tasks, and tasks answering it.
    tasks_server = [s for s in spans if s.service == "tasks" and s.kind == "server"]
    assert tasks_server, "tasks received the gateway's call"
    assert all((parent(s).service, parent(s).kind) == ("gateway", "client") for s in tasks_server)
    # Across Kafka: each consumer span's parent is a span of the service whose outbox wrote the event.
    consumed = {(s.service, s.name): s for s in spans if s.kind == "consumer"}
    assert parent(consumed[("credits", "consume TaskRequested")]).service == "tasks"
    assert parent(consumed[("providers", "consume StepRequested")]).service == "tasks"
    assert parent(consumed[("tasks", "consume StepCompleted")]).service == "providers"
    # The step job waited in providers' table; the runner continued the trace of its StepRequested.
    (step,) = [s for s in spans if s.service == "providers" and s.name.startswith("step remove-bg")]
    assert parent(step) == consumed[("providers", "consume StepRequested")]
    assert any(s.name.startswith("provider call local") and parent(s) == step for s in spans)
    # Storage answered calls of the services that asked it (the runner read the input and stored the
    # output through its API), each call a CLIENT span of the caller.
    storage_callers = {
        (parent(s).service, parent(s).kind) for s in spans if s.service == "storage" and s.kind == "server"
    }
    assert ("providers", "client") in storage_callers, storage_callers
    assert {kind for _, kind in storage_callers} == {"client"}, storage_callers
