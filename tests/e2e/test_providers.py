"""Providers end to end: the admin registry through the gateway, and step jobs driven over Kafka.

The tests play the tasks service's part: they publish `StepRequested` / `TaskCancelRequested` on
`tasks.events` and read `providers.events`, as tasks will. Third-party APIs are the fake servers of
tests/fakes (real HTTP); inputs are uploaded and outputs downloaded through the gateway and real S3.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import signal
import struct
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
import run_services
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clients import E2E_PORT_BASE, bearer, browser, call, png, sign_in, sign_up, unique_email
from clients import download as download_asset
from clients import upload as upload_asset
from fal_api import FakeFal
from faults import Fault
from openai_api import FakeOpenAI
from PIL import Image
from tripo_api import FakeTripo

from funmagic_contracts.envelope import Envelope, decode, encode, kafka_headers, kafka_key
from funmagic_contracts.tasks.events import StepInput, StepRequested, TaskCancelRequested
from funmagic_contracts.topics import PROVIDERS_EVENTS, TASKS_EVENTS
from funmagic_kit.testing import wait_until

OPENAI_KEY = "sk-e2e-openai-" + uuid.uuid4().hex
FAL_KEY = "fal-e2e-" + uuid.uuid4().hex
TRIPO_KEY = "tsk_e2e_" + uuid.uuid4().hex
TERMINAL = {"StepCompleted", "StepFailed"}


# --- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
async def user() -> dict:
    async with browser() as client:
        account = await sign_up(client, unique_email("providers"), mode="token")
    return {"id": account["user"]["id"], "token": account["access_token"]}


@pytest.fixture
async def events(stack_env) -> AsyncIterator[TaskEvents]:
    consumer = AIOKafkaConsumer(
        PROVIDERS_EVENTS.name,
        bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        enable_auto_commit=False,
        auto_offset_reset="latest",
    )
    await consumer.start()
    partitions = consumer.assignment()
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)
    try:
        yield TaskEvents(consumer)
    finally:
        await consumer.stop()


class TaskEvents:
    """Everything read from providers.events so far, by task."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.by_task: dict[str, list[Envelope]] = {}

    async def until(self, predicate, timeout: float = 60.0, what: str = "events on providers.events") -> None:
        async def holds_after_polling() -> bool:
            if predicate():
                return True
            await self._poll()
            return False

        # _poll waits up to 200 ms for records: no pause between polls is needed.
        await wait_until(holds_after_polling, timeout=timeout, what=what, interval=0)

    async def _poll(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=200)
        for records in batches.values():
            for record in records:
                envelope = decode(record.value)
                self.by_task.setdefault(envelope.subject, []).append(envelope)

    async def finished(self, task_id: str, timeout: float = 60.0) -> Envelope:
        await self.until(
            lambda: any(e.type in TERMINAL for e in self.of(task_id)), timeout, what=f"the end of {task_id}"
        )
        return next(e for e in self.of(task_id) if e.type in TERMINAL)

    async def drain(self, timeout: float = 30.0) -> None:
        """Read up to the topic's current end: whatever was published before now is in `by_task`."""
        ends = await self.consumer.end_offsets(list(self.consumer.assignment()))

        async def at_the_end() -> bool:
            positions = {tp: await self.consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                return True
            await self._poll()
            return False

        await wait_until(
            at_the_end, timeout=timeout, what="reading to the end of providers.events", interval=0
        )

    def of(self, task_id: str) -> list[Envelope]:
        return self.by_task.get(task_id, [])

    def types(self, task_id: str) -> list[str]:
        return [e.type for e in self.of(task_id)]

    def summary(self) -> dict[str, list[str]]:
        return {task: [e.type for e in seen] for task, seen in self.by_task.items()}


async def produce(stack_env, *events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    await producer.start()
    try:
        for event in events:
            envelope = Envelope.wrap(event)
            await producer.send_and_wait(
                TASKS_EVENTS.name, encode(envelope), key=kafka_key(envelope), headers=kafka_headers(envelope)
            )
    finally:
        await producer.stop()


def step(
    user: dict,
    provider: str,
    step_type: str,
    *,
    assets: tuple[str, ...] = (),
    prompt: str | None = None,
    options: dict | None = None,
    model: str = "default",
    deadline_seconds: float = 120,
) -> StepRequested:
    return StepRequested(
        task_id=str(uuid.uuid4()), user_id=user["id"], step_id=step_type, step_type=step_type,
        provider=provider, model=model, scope="web",
        input=StepInput(asset_ids=assets, prompt=prompt, options=options or {}),
        attempt=1, deadline_at=datetime.now(UTC) + timedelta(seconds=deadline_seconds),
    )  # fmt: skip


async def register(
    admin: str, provider_type: str, base_url: str | None, api_key: str | None, config=None
) -> dict:
    name = f"{provider_type}-{uuid.uuid4().hex[:10]}"
    body = {
        "name": name,
        "type": provider_type,
        "base_url": base_url,
        "api_key": api_key,
        "config": config or {},
    }
    async with browser() as client:
        status, created, _ = await call(
            client, "POST", "/api/admin/providers", json=body, headers=bearer(admin)
        )
    assert status == 201, created
    return created


async def upload(user: dict, data: bytes) -> str:
    return await upload_asset(user["token"], data)


async def download(user: dict, asset_id: str) -> tuple[dict, bytes]:
    return await download_asset(user["token"], asset_id)


def assert_completed(event: Envelope) -> None:
    assert event.type == "StepCompleted", (event.data.get("error_code"), event.data.get("error_message"))


def output_assets(completed: Envelope) -> dict[str, str]:
    return {a["role"]: a["asset_id"] for a in completed.data["output"]["assets"]}


# --- the registry through the gateway -----------------------------------------------------------


async def test_admins_register_providers_and_never_see_their_keys(platform, admin_token, user) -> None:
    created = await register(admin_token, "openai", "https://api.example.com/v1/", OPENAI_KEY,
                             {"rateLimit": {"maxConcurrency": 2}})  # fmt: skip
    assert created["api_key_hint"] == "••••" + OPENAI_KEY[-4:]
    assert created["base_url"] == "https://api.example.com/v1"
    async with browser() as client:
        admin = bearer(admin_token)
        status, page, _ = await call(client, "GET", "/api/admin/providers?limit=200", headers=admin)
        assert status == 200
        assert created["id"] in {p["id"] for p in page["items"]}
        path = f"/api/admin/providers/{created['id']}"
        status, changed, _ = await call(
            client, "PATCH", path, json={"config": {"rateLimit": {"maxPerMinute": 10}}}, headers=admin
        )
        assert status == 200
        assert changed["config"] == {"rateLimit": {"maxPerMinute": 10}}
        status, problem, _ = await call(
            client, "PATCH", path, json={"config": {"rateLimit": {"maxPerMinute": -1}}}, headers=admin
        )
        assert status == 422
        assert "rateLimit" in problem["detail"]
        body = {"name": created["name"], "type": "openai", "base_url": "https://a/v1", "api_key": "sk-x"}
        status, _, _ = await call(client, "POST", "/api/admin/providers", json=body, headers=admin)
        assert status == 409
        # A user is refused; the studio's providers are a admin_token's only.
        status, _, _ = await call(client, "GET", "/api/admin/providers", headers=bearer(user["token"]))
        assert status == 403
        status, studio, _ = await call(
            client, "POST", "/api/admin/admin-providers", headers=admin,
            json={"name": created["name"], "type": "fal", "base_url": "https://q.fal", "api_key": FAL_KEY},
        )  # fmt: skip
        assert status == 201
        assert studio["scope"] == "admin"
        for answer in (created, page, changed, studio):
            assert OPENAI_KEY not in str(answer)
            assert FAL_KEY not in str(answer)
        status, _, _ = await call(client, "DELETE", path, headers=admin)
        assert status == 204
        status, _, _ = await call(client, "GET", path, headers=admin)
        assert status == 404


async def test_a_plain_admin_manages_web_providers_but_not_studio_ones(platform, admin_token) -> None:
    email = unique_email("providers-admin")
    async with browser() as client:
        account = await sign_up(client, email, mode="token")
        status, _, _ = await call(
            client, "PUT", f"/api/admin/users/{account['user']['id']}/role", json={"role": "admin"},
            headers=bearer(admin_token),
        )  # fmt: skip
        assert status == 200
        _, signed_in = await sign_in(client, email, mode="token")
        admin = bearer(signed_in["access_token"])
        status, _, _ = await call(client, "GET", "/api/admin/providers", headers=admin)
        assert status == 200
        status, _, _ = await call(client, "GET", "/api/admin/admin-providers", headers=admin)
        assert status == 403


async def test_the_step_types_schema_is_for_admins_and_covers_every_step_type(
    platform, admin_token, user
) -> None:
    async with browser() as client:
        status, _, _ = await call(client, "GET", "/api/admin/step-types")
        assert status == 401
        status, _, _ = await call(client, "GET", "/api/admin/step-types", headers=bearer(user["token"]))
        assert status == 403
        status, schema, _ = await call(client, "GET", "/api/admin/step-types", headers=bearer(admin_token))
        assert status == 200, schema
    by_type = {item["type"]: item for item in schema["items"]}
    assert set(by_type) == {"image-gen", "remove-bg", "3d-gen", "point-cloud"}
    # `local` runs every step type; the SaaS adapters each the one they are built for.
    for item in schema["items"]:
        assert "local" in [provider["type"] for provider in item["providers"]]
    remove_bg = {provider["type"]: provider for provider in by_type["remove-bg"]["providers"]}
    assert remove_bg["fal"]["models"][0] == "fal-ai/imageutils/rembg"
    local_3d = next(p for p in by_type["3d-gen"]["providers"] if p["type"] == "local")
    grid = next(option for option in local_3d["options"] if option["name"] == "grid")
    assert (grid["kind"], grid["default"], grid["minimum"], grid["maximum"]) == ("integer", 64, 2, 512)


# --- the local provider: real computation, real outputs -----------------------------------------


async def test_a_providers_health_history_is_served_newest_first_to_its_managers_only(
    platform, admin_token, user
) -> None:
    async with browser() as client:
        email = unique_email("health-admin")
        account = await sign_up(client, email, mode="token")
        status, _, _ = await call(
            client, "PUT", f"/api/admin/users/{account['user']['id']}/role", json={"role": "admin"},
            headers=bearer(admin_token),
        )  # fmt: skip
        assert status == 200
        _, signed_in = await sign_in(client, email, mode="token")
        plain_admin, super_admin = bearer(signed_in["access_token"]), bearer(admin_token)
        histories = {}
        for registry in ("/api/admin/providers", "/api/admin/admin-providers"):
            name = f"health-{uuid.uuid4().hex[:8]}"
            status, created, _ = await call(
                client, "POST", registry, json={"name": name, "type": "local"}, headers=super_admin
            )
            assert status == 201, created
            item = f"{registry}/{created['id']}"
            for _ in range(3):
                status, checked, _ = await call(client, "POST", f"{item}/health-check", headers=super_admin)
                assert status == 200, checked
            histories[registry] = f"{item}/health-history"

        # Newest first, in keyset pages that neither repeat nor skip.
        path = histories["/api/admin/providers"]
        status, first, _ = await call(client, "GET", f"{path}?limit=2", headers=super_admin)
        assert status == 200, first
        status, rest, _ = await call(
            client, "GET", path, params={"limit": "2", "cursor": first["next_cursor"]}, headers=super_admin
        )
        assert status == 200, rest
        checks = first["items"] + rest["items"]
        assert rest["next_cursor"] is None
        assert len({check["id"] for check in checks}) == 3
        moments = [datetime.fromisoformat(check["checked_at"]) for check in checks]
        assert moments == sorted(moments, reverse=True)
        assert all(c["healthy"] and c["error"] is None and c["trigger"] == "manual" for c in checks)
        assert all(c["latency_ms"] >= 0 for c in checks)

        # Who may read it: the registry's managers (web: admins; studio: super admins only).
        expected = {
            ("/api/admin/providers", "anonymous"): 401, ("/api/admin/providers", "user"): 403,
            ("/api/admin/providers", "admin"): 200, ("/api/admin/providers", "super_admin"): 200,
            ("/api/admin/admin-providers", "anonymous"): 401, ("/api/admin/admin-providers", "user"): 403,
            ("/api/admin/admin-providers", "admin"): 403, ("/api/admin/admin-providers", "super_admin"): 200,
        }  # fmt: skip
        callers = {
            "anonymous": {},
            "user": bearer(user["token"]),
            "admin": plain_admin,
            "super_admin": super_admin,
        }
        for (registry, caller), status_expected in expected.items():
            status, body, _ = await call(client, "GET", histories[registry], headers=callers[caller])
            assert status == status_expected, (registry, caller, body)
        status, _, _ = await call(
            client, "GET", f"/api/admin/providers/{uuid.uuid4()}/health-history", headers=super_admin
        )
        assert status == 404


async def test_local_background_removal_makes_the_corners_transparent(
    platform, stack_env, user, events
) -> None:
    source = await upload(user, png(80, 60))
    requested = step(user, "local", "remove-bg", assets=(source,))
    await produce(stack_env, requested)
    completed = await events.finished(requested.task_id)
    assert_completed(completed)
    types = events.types(requested.task_id)
    assert types[0] == "StepStarted"
    assert set(types[1:-1]) <= {"StepProgressed"}  # a call this short may end before progress is due
    asset, data = await download(user, output_assets(completed)["image"])
    assert asset["task_id"] == requested.task_id
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGBA"
    assert image.size == (80, 60)
    for corner in ((0, 0), (79, 0), (0, 59), (79, 59)):
        assert image.getpixel(corner)[3] == 0
    assert image.getpixel((40, 30)) == (200, 20, 20, 255)


async def test_local_point_cloud_has_one_vertex_per_sampled_pixel(platform, stack_env, user, events) -> None:
    source = await upload(user, png(40, 30))
    requested = step(user, "local", "point-cloud", assets=(source,), options={"maxPoints": 20000})
    await produce(stack_env, requested)
    completed = await events.finished(requested.task_id)
    assert_completed(completed)
    assert completed.data["output"]["metadata"]["pointCount"] == 40 * 30
    _, data = await download(user, output_assets(completed)["point_cloud"])
    header, _, body = data.partition(b"end_header\n")
    assert b"format binary_little_endian 1.0" in header
    assert b"element vertex 1200" in header
    assert b"property float confidence" in header
    assert len(body) == 1200 * struct.calcsize("<fffBBBf")


async def test_local_image_to_3d_gives_a_glb_model_and_a_preview(platform, stack_env, user, events) -> None:
    source = await upload(user, png())
    requested = step(user, "local", "3d-gen", assets=(source,))
    await produce(stack_env, requested)
    completed = await events.finished(requested.task_id)
    assert_completed(completed)
    assets = output_assets(completed)
    asset, model = await download(user, assets["model"])
    assert model[:4] == b"glTF"
    assert struct.unpack("<I", model[4:8])[0] == 2
    assert struct.unpack("<I", model[8:12])[0] == len(model)
    assert asset["mime_type"] == "model/gltf-binary"
    assert "preview" in assets


async def test_an_asset_of_another_user_is_refused_as_input(platform, stack_env, user, events) -> None:
    async with browser() as client:
        other = await sign_up(client, unique_email("providers-other"), mode="token")
    theirs = await upload({"id": other["user"]["id"], "token": other["access_token"]}, png())
    requested = step(user, "local", "remove-bg", assets=(theirs,))
    await produce(stack_env, requested)
    failed = await events.finished(requested.task_id)
    assert failed.type == "StepFailed"
    assert failed.data["error_code"] == "invalid_input"
    assert failed.data["retryable"] is False


# --- remote providers through their fakes ------------------------------------------------------


async def test_openai_generates_and_edits_images(platform, stack_env, admin_token, user, events) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register(admin_token, "openai", fake.url, OPENAI_KEY)
        generate = step(user, provider["name"], "image-gen", prompt="a red fox", model="gpt-image-1",
                        options={"size": "1024x1024"})  # fmt: skip
        source = await upload(user, png())
        edit = step(user, provider["name"], "image-gen", prompt="make it blue", model="gpt-image-1",
                    assets=(source,))  # fmt: skip
        await produce(stack_env, generate, edit)
        for requested in (generate, edit):
            completed = await events.finished(requested.task_id)
            assert_completed(completed)
            _, data = await download(user, output_assets(completed)["image"])
            assert Image.open(io.BytesIO(data)).format == "PNG"
        paths = sorted(r.path for r in fake.requests)
        assert paths == ["/v1/images/edits", "/v1/images/generations"]


async def test_fal_removes_a_background_through_its_queue(
    platform, stack_env, admin_token, user, events
) -> None:
    async with FakeFal(api_key=FAL_KEY) as fake:
        provider = await register(admin_token, "fal", fake.url, FAL_KEY)
        source = await upload(user, png())
        requested = step(
            user, provider["name"], "remove-bg", assets=(source,), model="fal-ai/imageutils/rembg"
        )
        await produce(stack_env, requested)
        completed = await events.finished(requested.task_id)
        assert_completed(completed)
        _, data = await download(user, output_assets(completed)["image"])
        image = Image.open(io.BytesIO(data))
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0
        assert completed.data["output"]["provider_request_id"]


async def test_tripo_turns_an_image_into_a_model(platform, stack_env, admin_token, user, events) -> None:
    async with FakeTripo(api_key=TRIPO_KEY) as fake:
        provider = await register(admin_token, "tripo", fake.url, TRIPO_KEY)
        source = await upload(user, png())
        requested = step(user, provider["name"], "3d-gen", assets=(source,), model="v2.5-20250123")
        await produce(stack_env, requested)
        completed = await events.finished(requested.task_id)
        assert_completed(completed)
        assets = output_assets(completed)
        _, model = await download(user, assets["model"])
        assert model[:4] == b"glTF"
        _, preview = await download(user, assets["preview"])
        assert Image.open(io.BytesIO(preview)).format == "PNG"
        progress = [e.data["progress"] for e in events.of(requested.task_id) if e.type == "StepProgressed"]
        assert progress == sorted(progress)
        assert len(progress) >= 3


# --- retries, delays, failures ----------------------------------------------------------------


async def test_a_429_storm_is_retried_with_backoff_then_succeeds(
    platform, stack_env, admin_token, user, events
) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        config = {"rateLimit": {"maxRetries": 5, "baseBackoffMs": 200}}
        provider = await register(admin_token, "openai", fake.url, OPENAI_KEY, config)
        # The provider's Retry-After wins for the first; then 0.4 s and 0.8 s (base 0.2 s doubling).
        fake.faults.queue(
            "generations", Fault.rate_limited(retry_after=1.0), Fault.rate_limited(), Fault.rate_limited()
        )
        requested = step(user, provider["name"], "image-gen", prompt="a storm", model="gpt-image-1")
        await produce(stack_env, requested)
        completed = await events.finished(requested.task_id)
        assert_completed(completed)
        delays = [e for e in events.of(requested.task_id) if e.type == "StepDelayed"]
        assert [e.data["reason"] for e in delays] == ["provider_429"] * 3
        arrivals = [r.received_at for r in fake.requests]
        assert len(arrivals) == 4
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        for gap, scheduled in zip(gaps, (1.0, 0.4, 0.8), strict=True):
            assert gap >= scheduled - 0.05, (gaps, "a retry came before its backoff")


async def test_exhausted_retries_fail_with_a_readable_error(
    platform, stack_env, admin_token, user, events
) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        config = {"rateLimit": {"maxRetries": 2, "baseBackoffMs": 100}}
        provider = await register(admin_token, "openai", fake.url, OPENAI_KEY, config)
        fake.faults.always("generations", Fault.server_error(502))
        requested = step(user, provider["name"], "image-gen", prompt="never", model="gpt-image-1")
        await produce(stack_env, requested)
        failed = await events.finished(requested.task_id)
        assert failed.type == "StepFailed"
        assert failed.data["error_code"] == "provider_unavailable"
        assert "gave up after 2 retries" in failed.data["error_message"]
        assert OPENAI_KEY not in failed.data["error_message"]
        assert len(fake.requests) == 3


async def test_a_permanent_refusal_fails_at_once(platform, stack_env, admin_token, user, events) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register(
            admin_token, "openai", fake.url, OPENAI_KEY, {"rateLimit": {"maxRetries": 5}}
        )
        requested = step(
            user, provider["name"], "image-gen", prompt="something forbidden", model="gpt-image-1"
        )
        await produce(stack_env, requested)
        failed = await events.finished(requested.task_id)
        assert failed.type == "StepFailed"
        assert failed.data["error_code"] == "content_policy"
        assert failed.data["retryable"] is False
        assert len(fake.requests) == 1


async def test_jobs_beyond_a_providers_concurrency_wait_their_turn_and_never_fail(
    platform, stack_env, admin_token, user, events
) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register(
            admin_token, "openai", fake.url, OPENAI_KEY, {"rateLimit": {"maxConcurrency": 1}}
        )
        fake.faults.set_latency("generations", 0.8)
        steps = [
            step(user, provider["name"], "image-gen", prompt=f"n{i}", model="gpt-image-1") for i in range(3)
        ]
        await produce(stack_env, *steps)
        for requested in steps:
            assert (await events.finished(requested.task_id)).type == "StepCompleted"
        # The runner gives the provider no more jobs than its free slots: the others wait queued, so the
        # limiter has nobody to turn away (its denial, a delay, is tested with a slot held elsewhere).
        delayed = [e for s in steps for e in events.of(s.task_id) if e.type == "StepDelayed"]
        assert delayed == []
        # One at a time: each call arrived after the one before had its 0.8 s answer.
        arrivals = sorted(r.received_at for r in fake.requests)
        assert len(arrivals) == 3
        assert all(later - earlier >= 0.75 for earlier, later in itertools.pairwise(arrivals))


async def test_cancelling_a_task_stops_its_job_and_cancels_upstream(
    platform, stack_env, admin_token, user, events
) -> None:
    async with FakeFal(api_key=FAL_KEY, polls_until_done=100_000) as fake:
        provider = await register(admin_token, "fal", fake.url, FAL_KEY)
        source = await upload(user, png())
        requested = step(
            user, provider["name"], "remove-bg", assets=(source,), model="fal-ai/imageutils/rembg"
        )
        await produce(stack_env, requested)
        await events.until(lambda: "StepStarted" in events.types(requested.task_id))
        await wait_for(lambda: any(r.path.endswith("/status") for r in fake.requests), "a status poll")
        cancel = TaskCancelRequested(task_id=requested.task_id, user_id=user["id"], by=user["id"])
        await produce(stack_env, cancel)
        await wait_for(
            lambda: any(r.method == "PUT" and r.path.endswith("/cancel") for r in fake.requests),
            "the job's cancellation at fal",
        )
        await events.drain()
        assert not TERMINAL & set(events.types(requested.task_id))


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Until `predicate()` holds: the fake servers record the requests they get as they come."""

    async def holds() -> bool:
        return predicate()

    await wait_until(holds, timeout=timeout, what=what, interval=0.05)


# --- crashes ---------------------------------------------------------------------------------


async def test_a_job_interrupted_by_sigkill_runs_again_and_completes_once(
    platform, platform_env, stack_env, admin_token, user, events, tmp_path
) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await register(admin_token, "openai", fake.url, OPENAI_KEY)
        fake.faults.set_latency("generations", 2.0)
        requested = step(user, provider["name"], "image-gen", prompt="survive", model="gpt-image-1")
        await produce(stack_env, requested)
        await wait_for(lambda: len(fake.requests) == 1, "the first generation request")
        old = platform["providers"]
        os.kill(old.process.pid, signal.SIGKILL)
        old.process.wait(10)
        fake.faults.set_latency("generations", 0.0)
        restarted = run_services.start_service("providers", platform_env, E2E_PORT_BASE, old.log_path.parent)
        platform["providers"] = restarted
        await asyncio.to_thread(run_services.wait_until_healthy, restarted, "/health")
        completed = await events.finished(requested.task_id, timeout=90)
        assert_completed(completed)
        assert len(fake.requests) >= 2, "the job ran again after the crash"
        await events.drain()
        assert events.types(requested.task_id).count("StepCompleted") == 1


async def test_a_wrong_master_key_stops_the_service_at_start(platform, platform_env, admin_token) -> None:
    await register(admin_token, "tripo", "https://tripo.example/v2/openapi", TRIPO_KEY)
    env = run_services.service_environment("providers", platform_env, E2E_PORT_BASE + 50)
    env["SECRET_KEY"] = "A" * 43 + "="
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "funmagic_providers"], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "cannot decrypt the API key" in result.stdout + result.stderr


def test_no_key_ever_reached_a_log_line(platform) -> None:
    # Runs after the tests above in this module (pytest keeps file order): every service's log so far.
    logs = {s.name: s.log_path.read_text(errors="replace") for s in platform.values()}
    for name, text in logs.items():
        for key in (OPENAI_KEY, FAL_KEY, TRIPO_KEY):
            assert key not in text, f"{name}'s log contains a provider key"
    assert "provider created" in logs["providers"], "the providers log was read"
