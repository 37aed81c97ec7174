"""Provider diagnostics on real Postgres, against fake provider servers: a step job's HTTP calls are kept
with method, URL (no query), status, duration and request ids, their bodies redacted (no image, no base64,
no key) — through the OpenAI SDK's client and through the aiohttp session alike — and read back per job."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from PIL import Image
from providers_test_support import FakeStorage, step_requested
from redis.asyncio import Redis

from funmagic_contracts.tasks.events import StepRequested
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.testing import in_memory_consumer, wait_until
from funmagic_providers.application.diagnostics import ProviderDiagnostics
from funmagic_providers.bootstrap import Providers
from funmagic_providers.domain.steps import InputFile

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests" / "fakes"))

from fal_api import FakeFal
from openai_api import FakeOpenAI

SECRET = "sk-test-provider-calls-0123456789abcdef"


@pytest.fixture(autouse=True)
async def forget_cached_limits(redis: Redis) -> AsyncIterator[None]:
    yield
    await redis.delete("prl:web:{openai}:config", "prl:web:{fal}:config")


@asynccontextmanager
async def running(providers: Providers) -> AsyncIterator[None]:
    task = asyncio.create_task(providers.runner.run())
    try:
        yield
    finally:
        providers.runner.stop()
        await asyncio.wait_for(task, timeout=10)


async def run_step(providers: Providers, requested: StepRequested) -> None:
    async with in_memory_consumer(
        "providers", providers.parts.subscriptions, unit_of_work=providers.parts.unit_of_work
    ) as consumer:
        await consumer.deliver_event(requested)

    async with running(providers):
        await wait_until(lambda: _completed(providers, requested.task_id), timeout=30, what="the step's end")


async def _completed(providers: Providers, task_id: str) -> bool:
    async with providers.parts.unit_of_work() as uow:
        jobs = await uow.jobs.of_task(task_id)
    return bool(jobs) and all(job.status == "completed" for job in jobs)


async def stored_rows(pool) -> str:
    async with PostgresUnitOfWork(pool) as uow:
        cursor = await uow.conn.execute("SELECT * FROM provider_calls ORDER BY id")
        return repr(await cursor.fetchall())


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(buffer, "PNG")
    return buffer.getvalue()


async def test_an_openai_image_steps_call_is_kept_with_its_image_and_key_redacted(
    pool, build_providers
) -> None:
    providers = build_providers()
    requested = step_requested(
        provider="openai", prompt="a lighthouse at dusk", options={"size": "1024x1024"}
    )
    requested = requested.model_copy(update={"model": "gpt-image-1"})
    async with FakeOpenAI(api_key=SECRET) as fake:
        await providers.registry.create(
            "web", name="openai", type="openai", api_key=SECRET, base_url=fake.url
        )
        await run_step(providers, requested)

    (item,) = await ProviderDiagnostics(uow=providers.parts.unit_of_work).of_task(requested.task_id)
    assert (item.job.step_id, item.job.status) == ("step-1", "completed")
    (call,) = item.calls
    assert (call.method, call.url, call.status, call.error) == (
        "POST", f"{fake.url}/images/generations", 200, None,
    )  # fmt: skip
    assert call.duration_ms >= 0
    assert call.request_ids["x-request-id"].startswith("req_")
    assert call.request_body == {
        "model": "gpt-image-1",
        "prompt": "a lighthouse at dusk",
        "size": "1024x1024",
    }
    assert isinstance(call.response_body, dict)
    (image,) = call.response_body["data"]
    assert image["b64_json"].startswith("<redacted base64, ")
    rows = await stored_rows(pool)
    assert SECRET not in rows
    assert SECRET[-12:] not in rows
    assert "iVBOR" not in rows  # no PNG in base64 anywhere
    assert "authorization" not in rows.lower()


async def test_a_fal_steps_calls_through_the_shared_session_are_kept_data_url_redacted_query_dropped(
    pool, build_providers, storage: FakeStorage
) -> None:
    providers = build_providers()
    storage.inputs["asset-1"] = InputFile("asset-1", "cat.png", "image/png", png((200, 40, 40)))
    requested = step_requested(step_type="remove-bg", provider="fal", prompt=None, asset_ids=("asset-1",))
    requested = requested.model_copy(update={"model": "fal-ai/imageutils/rembg"})
    async with FakeFal(api_key=SECRET, polls_until_done=1) as fake:
        await providers.registry.create("web", name="fal", type="fal", api_key=SECRET, base_url=fake.url)
        await run_step(providers, requested)

    (item,) = await ProviderDiagnostics(uow=providers.parts.unit_of_work).of_task(requested.task_id)
    calls = item.calls
    methods = [(c.method, c.status) for c in calls]
    assert methods[0] == ("POST", 200)  # the submit
    assert {status for _, status in methods} <= {200, 202}  # a status poll answers 202 while queued
    assert len(calls) >= 4  # submit, status polls, result, the file's download
    submit = calls[0]
    assert submit.url == f"{fake.url}/fal-ai/imageutils/rembg"
    assert isinstance(submit.request_body, dict)
    assert submit.request_body["image_url"].startswith("<redacted data URL, ")
    assert "x-fal-request-id" in submit.request_ids
    assert all("?" not in c.url for c in calls)  # the status poll's `?logs=1` is not kept
    download = calls[-1]
    assert str(download.response_body).startswith("<image/png body")
    rows = await stored_rows(pool)
    assert SECRET not in rows
    assert SECRET[-12:] not in rows
    assert "iVBOR" not in rows
    assert json.dumps([c.request_ids for c in calls]).count("Key ") == 0


async def test_a_studio_replys_jobs_are_not_shown_as_a_tasks_provider_calls(build_providers) -> None:
    # A studio reply runs as an admin-scope job under the reply's id; its prompts and answers belong to
    # the chat's owner, whom the studio's own rules protect — the task diagnostics show user tasks only.
    providers = build_providers()
    reply = step_requested(provider="local").model_copy(update={"scope": "admin"})
    task = step_requested(provider="local")
    async with in_memory_consumer(
        "providers", providers.parts.subscriptions, unit_of_work=providers.parts.unit_of_work
    ) as consumer:
        await consumer.deliver_event(reply)
        await consumer.deliver_event(task)
    diagnostics = ProviderDiagnostics(uow=providers.parts.unit_of_work)

    assert await diagnostics.of_task(reply.task_id) == []
    (item,) = await diagnostics.of_task(task.task_id)
    assert (item.job.task_id, item.job.scope) == (task.task_id, "web")
