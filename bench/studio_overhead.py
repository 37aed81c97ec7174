"""Studio reply latency overhead: what the platform adds between OpenAI's first text delta and the admin's.

The admin AI studio relays a text reply's deltas live: the fake OpenAI server (tests/fakes/openai_api.py,
started in this process, real HTTP) streams `response.output_text.delta` events to providers, which writes
each delta onto the Redis live stream; the gateway reads it and writes `reply_delta` on the admin's
`GET /api/stream`. Per reply, the overhead is the moment the first `reply_delta` reached this client minus
the moment the fake wrote its first `response.output_text.delta` frame. Both are `time.monotonic()` in
this one process (the fake records its side in `first_delta_at`, keyed by response id; the reply's stored
`response_id` ties the two), so no clocks are compared across processes. The client's and the fake's
share an event loop: that loop's own delay is part of every figure, as it would be of any client's.

The platform runs as in `e2e_tasks.py` (its processes, ports, scratch databases and Redis database, its
super admin made with identity's `create-admin`); a studio provider of type `openai` points at the fake.
Replies run one at a time, each in a chat of its own (a text turn must end before the next is posted in
its chat), after `WARMUP` replies that are not counted. Also reported, for context: from just before the
message's POST to the fake's first delta (the platform's way to the provider: tasks → Kafka → providers
→ the upstream call, plus the fake's own start), and to the client's first delta.

Baseline, in the same run before the services start: the foundation's round trip (outbox → Kafka →
inbox, one worker) exactly as `e2e_tasks.py` measures it; the overhead's p50 and p99 are printed as
ratios to its p50 and p99.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from redis.asyncio import Redis

from funmagic_kit.testing import drop_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fakes"))

import e2e_tasks
import run_services
from e2e_tasks import GATEWAY_URL, Api, percentile, sse_events
from openai_api import FakeOpenAI
from run_services import ServiceProcess

REPLIES = int(os.environ.get("BENCH_STUDIO_REPLIES", "30"))
WARMUP = 3
MODEL = "gpt-5"
PROMPT = "Say hello to the benchmark"
REPLY_TIMEOUT_SECONDS = 60.0
OPENAI_KEY = "sk-bench-studio-" + uuid.uuid4().hex
TERMINAL = {"reply_completed", "reply_failed", "reply_cancelled"}


class AdminStream:
    """The admin's `GET /api/stream`, kept open: per reply, when its first delta arrived and how it ended.

    A delta or an end that arrives before anyone waits for it (before the POST has even answered) is kept.
    """

    def __init__(self, http: aiohttp.ClientSession, token: str) -> None:
        self._http = http
        self._token = token
        self.first_delta_at: dict[str, float] = {}
        self._ended: dict[str, asyncio.Future[tuple[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(connected))
        await asyncio.wait_for(connected, 30)

    def _end_of(self, message_id: str) -> asyncio.Future[tuple[str, Any]]:
        return self._ended.setdefault(message_id, asyncio.get_running_loop().create_future())

    async def _read(self, connected: asyncio.Future[None]) -> None:
        try:
            async with self._http.get(
                f"{GATEWAY_URL}/api/stream",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"/api/stream answered {response.status}: {await response.text()}")
                async for kind, data in sse_events(response):
                    arrived = time.monotonic()
                    if kind == "connected":
                        connected.set_result(None)
                    elif kind == "reply_delta":
                        self.first_delta_at.setdefault(data["messageId"], arrived)
                    elif kind in TERMINAL and not (end := self._end_of(data["messageId"])).done():
                        end.set_result((kind, data))
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if not connected.done():
                connected.set_exception(error)
            for end in self._ended.values():
                if not end.done():
                    end.set_exception(RuntimeError(f"the admin's stream ended: {error!r}"))

    async def ended(self, message_id: str) -> tuple[str, Any]:
        return await asyncio.wait_for(asyncio.shield(self._end_of(message_id)), REPLY_TIMEOUT_SECONDS)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


async def _reply(api: Api, admin: str, stream: AdminStream, fake: FakeOpenAI, provider: str) -> dict:
    """One studio reply in a chat of its own: its timestamps (monotonic seconds) and how it ended."""
    body = {"title": "bench", "provider": provider, "model": MODEL}
    chat = await api.call("POST", "/api/admin/studio/chats", token=admin, json_body=body, expect=201)
    path = f"/api/admin/studio/chats/{chat['id']}/messages"
    posted_at = time.monotonic()
    async with api.http.post(
        GATEWAY_URL + path,
        json={"content": PROMPT},
        headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": str(uuid.uuid4())},
    ) as response:
        answer = await response.text()
        if response.status != 202:
            raise RuntimeError(f"POST {path} answered {response.status}: {answer[:500]}")
    reply_id = json.loads(answer)["replies"][0]["id"]
    kind, data = await stream.ended(reply_id)
    if kind != "reply_completed":
        raise RuntimeError(f"reply {reply_id} ended with {kind}: {data}")
    page = await api.call("GET", path + "?limit=10", token=admin)
    stored = next(m for m in page["items"] if m["id"] == reply_id)
    return {
        "id": reply_id,
        "posted": posted_at,
        "upstream_first_delta": fake.first_delta_at.get(stored.get("response_id") or ""),
        "client_first_delta": stream.first_delta_at.get(reply_id),
    }


def _stats(values_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values_ms), 2),
        "p99_ms": round(percentile(values_ms, 0.99), 2),
        "max_ms": round(max(values_ms), 2),
    }


async def _measure(api: Api, env: dict[str, str]) -> dict[str, Any]:
    admin = await e2e_tasks._admin_token(api, env)
    await e2e_tasks._wait_for_relaxed_limits(api, admin)
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = f"bench-openai-{uuid.uuid4().hex[:8]}"
        body = {"name": provider, "type": "openai", "base_url": fake.url, "api_key": OPENAI_KEY, "config": {}}
        await api.call("POST", "/api/admin/admin-providers", token=admin, json_body=body, expect=201)
        stream = AdminStream(api.http, admin)
        await stream.open()
        try:
            replies = [await _reply(api, admin, stream, fake, provider) for _ in range(WARMUP + REPLIES)]
        finally:
            await stream.close()
        upstream_calls = len(fake.first_delta_at)
    measured = replies[WARMUP:]
    unmatched = [r["id"] for r in measured if None in (r["upstream_first_delta"], r["client_first_delta"])]
    if unmatched:
        raise RuntimeError(f"{len(unmatched)} replies without both first deltas, e.g. {unmatched[:3]}")
    overhead = [(r["client_first_delta"] - r["upstream_first_delta"]) * 1000 for r in measured]
    to_upstream = [(r["upstream_first_delta"] - r["posted"]) * 1000 for r in measured]
    to_client = [(r["client_first_delta"] - r["posted"]) * 1000 for r in measured]
    return {
        "first_delta_overhead": {
            **_stats(overhead),
            "min_ms": round(min(overhead), 2),
            "replies": len(measured),
        },
        "post_to_upstream_first_delta": _stats(to_upstream),
        "post_to_client_first_delta": _stats(to_client),
        "upstream_streams_with_a_delta": upstream_calls,
    }


async def run() -> dict[str, object]:
    missing = [name for name in e2e_tasks.REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            f"studio_overhead needs the local stack's environment ({', '.join(missing)} unset): "
            "set -a; source .stack/env; set +a"
        )
    if others := await asyncio.to_thread(e2e_tasks._other_platforms):
        raise SystemExit(
            "studio_overhead: FunMagic services already run on this machine and would share the Kafka "
            f"consumer groups with this run's: stop them first ({'; '.join(others[:6])})"
        )
    postgres_url = os.environ["POSTGRES_URL"].rstrip("/")
    print("  baseline: outbox → Kafka → inbox round trip …", flush=True)
    baseline = await e2e_tasks._baseline(os.environ["KAFKA_BOOTSTRAP_SERVERS"], postgres_url)
    print(f"    {baseline}", flush=True)

    suffix = uuid.uuid4().hex[:8]
    databases = {s: f"bench_studio_{s}_{suffix}" for s in e2e_tasks.SERVICES_WITH_DATABASE}
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{e2e_tasks.REDIS_DB}"
    redis = Redis.from_url(redis_url)
    env = e2e_tasks._platform_env(dict(os.environ), databases, redis_url)
    services: list[ServiceProcess] = []
    started_at = time.perf_counter()
    try:
        async with await psycopg.AsyncConnection.connect(
            postgres_url + "/postgres", autocommit=True
        ) as admin:
            for name in databases.values():
                await admin.execute(f'CREATE DATABASE "{name}"')
        await redis.flushdb()
        await redis.set("ratelimit:settings", json.dumps(e2e_tasks.RATE_LIMITS))
        with tempfile.TemporaryDirectory(prefix="bench-studio-") as run_dir:
            try:
                services = await asyncio.to_thread(
                    run_services.start_all, env, e2e_tasks.PORT_BASE, Path(run_dir)
                )
                print(f"  six services up in {time.perf_counter() - started_at:.1f} s", flush=True)
                timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT_SECONDS)
                async with aiohttp.ClientSession(timeout=timeout) as http:
                    measured = await _measure(Api(http), env)
            finally:
                stopped = await asyncio.to_thread(run_services.stop_all, services)
                if any(code not in (0, None) for code in stopped.values()):
                    print(f"  WARNING: services exited with {stopped}", flush=True)
                e2e_tasks._report_log_errors(services)
    finally:
        for name in databases.values():
            await drop_database(postgres_url, name)
        await redis.flushdb()
        await redis.aclose()

    overhead = measured["first_delta_overhead"]
    ratio = {
        "p50_vs_roundtrip_p50": round(overhead["p50_ms"] / baseline["p50_ms"], 2),
        "p99_vs_roundtrip_p99": round(overhead["p99_ms"] / baseline["p99_ms"], 2),
    }
    print(f"  baseline (round trip, 1 worker)           : {baseline}", flush=True)
    print(f"  first delta, fake → the admin's stream    : {overhead}", flush=True)
    print(f"    ratio to the round trip                 : {ratio}", flush=True)
    for key in ("post_to_upstream_first_delta", "post_to_client_first_delta"):
        print(f"  {key:<42}: {measured[key]}", flush=True)
    return {
        **measured,
        "baseline_roundtrip": baseline,
        "ratio_to_baseline": ratio,
        "settings": {
            "replies": REPLIES,
            "warmup": WARMUP,
            "model": MODEL,
            "one_chat_per_reply": True,
            "service_log_level": "WARNING",
            "total_s": round(time.perf_counter() - started_at, 1),
        },
    }
