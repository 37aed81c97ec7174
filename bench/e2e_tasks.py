"""The headline figure: end-to-end tasks/s and latency from `POST /api/tasks` to the `completed` SSE event.

All six services run as processes on ports from `PORT_BASE`, on scratch databases created for the run
and dropped at the end, with a Redis database of their own (`REDIS_DB`, flushed before and after; the
gateway's rate limits are raised there). Setup, untimed: a super_admin, the seed catalog, one tool with
ONE local step of type `remove-bg` costing 1 credit, and one user per client (the largest level), each
holding a sign-up bonus big enough for the whole run and one 8 x 8 PNG uploaded through the presigned
flow. The step is the cheapest the local provider has that still takes the main job's path (it reads
its input asset from storage and writes its output asset through it); its computation on 64 pixels is
well under a millisecond, so what is measured is the platform's overhead.

For each level of `LEVELS` concurrent clients, each client loops: `POST /api/tasks` (with an
Idempotency-Key, as the API asks), then waits for that task's `completed` event on its user's
multiplexed `GET /api/stream`, opened once per user before the first level and kept open (what an SPA
does: one connection carries all of the user's tasks). Latency runs from just before the POST to the
arrival of the `completed` event (an event that arrives before the POST has answered is kept, never
missed). `BENCH_E2E_STREAM=task` opens the task's own stream after each POST instead (it replays the
task's history, so nothing is missed either). A warm-up is not counted, then a measured window:
tasks/s = `completed` events received in the window / its length; p50/p99 over the tasks started in
the window. Clients stop starting tasks at the window's end and wait for the ones in flight.

Cost per task: Postgres transactions (`xact_commit` + `xact_rollback` of the five scratch databases in
`pg_stat_database`), Redis commands (the server's `INFO commandstats`, by command; those a Lua script
runs count too, beside its EVALSHA; the run has Redis to itself, it refuses to start beside another
platform) and Kafka messages (end offsets of the five event topics) before and after the level, divided
by the tasks the level completed (warm-up and drain included: every task started in the level). Postgres
publishes a backend's counters up to `PGSTAT_IDLE_INTERVAL` (10 s) after it went idle, so the
after-sample waits `SETTLE_SECONDS`; the background work of an idle platform (pollers, sweepers, pings)
is measured once before the first level and subtracted. The Kafka messages of each level are also read
back and counted by type, keeping only those keyed by this run's users and tasks (the topics are shared
with anything else using the stack).

Where the time goes: CPU seconds of every process (each service, Postgres, Kafka, Redis, S3, this
client) over the level, per task; and, per task, the producer timestamps of its events along the critical
path (POST → TaskRequested → CreditsReserved → StepRequested → StepStarted → AssetCreated →
StepCompleted → TaskCompleted → `completed` received), as p50/p99/max per hop. Tasks whose
`step_started` or `step_completed` never reached the client before `completed` are counted (they are
still completed tasks: charged, with their output). At the end every user's balance must show one credit
spent per completed task and nothing reserved.

The run refuses to start while other FunMagic services run on this machine (an e2e session, `make run`):
they join the same Kafka consumer groups and would take this run's events (and this run theirs); a level
during which one appears, or foreign messages show up on the topics, is flagged `disturbed`.

Baseline, in the same run before the services start: the foundation's round trip (outbox → Kafka →
inbox, one consumer worker, as every service runs by default) from `roundtrip.py`, with fewer samples.
`BENCH_E2E_BASELINE=recorded` reads the latest `bench/results/roundtrip.jsonl` record instead.

Everything — client, six services, Kafka, Postgres, Redis, S3 — shares this machine: at 256 clients it is
saturated, and the client's own event loop is part of every latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from PIL import Image
from redis.asyncio import Redis

from funmagic_kit.s3 import open_s3_client
from funmagic_kit.settings import S3Settings, load_settings
from funmagic_kit.testing import drop_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))

import roundtrip
import run_services
from floors import NOT_THE_PLATFORM
from run_services import ServiceProcess

PORT_BASE = 19400
GATEWAY_URL = f"http://127.0.0.1:{PORT_BASE}"
REDIS_DB = 12
LEVELS = tuple(int(n) for n in os.environ.get("BENCH_E2E_LEVELS", "1,8,64,256").split(","))
WARMUP_SECONDS = float(os.environ.get("BENCH_E2E_WARMUP_SECONDS", "3"))
MEASURE_SECONDS = float(os.environ.get("BENCH_E2E_MEASURE_SECONDS", "12"))
SETTLE_SECONDS = float(os.environ.get("BENCH_E2E_SETTLE_SECONDS", "10.5"))
# Long enough to cover every consumer's heartbeat (3 s) and long poll (5 s) more than once.
IDLE_SECONDS = 10.0
STREAM_MODE = os.environ.get("BENCH_E2E_STREAM", "user")
BASELINE_MODE = os.environ.get("BENCH_E2E_BASELINE", "measure")
TASK_TIMEOUT_SECONDS = 90.0
SETUP_CONCURRENCY = 16
BONUS_CREDITS = 1_000_000
TASK_PRICE = 1
SERVICES_WITH_DATABASE = ("identity", "tasks", "credits", "storage", "providers")
TOPICS = ("identity.events", "tasks.events", "credits.events", "storage.events", "providers.events")
DLQ_TOPICS = tuple(f"{t}.dlq" for t in TOPICS)
PASSWORD = "end to end load test 42"
RELAXED = {"limit": 1_000_000, "window_seconds": 60}
RATE_LIMITS = {
    name: RELAXED
    for name in ("global_api", "user_api", "task_creation", "upload", "auth_session", "auth_action")
}
REQUIRED_ENV = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "POSTGRES_URL",
    "INTERNAL_API_TOKEN",
    "SECRET_KEY",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "CDN_URL",
)
TERMINAL = {"completed", "failed", "cancelled"}
ROUNDTRIP_RESULTS = Path(__file__).resolve().parent / "results" / "roundtrip.jsonl"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tiny_png() -> bytes:
    """8 x 8: a white background around a red square (what the local background removal expects)."""
    image = Image.new("RGB", (8, 8), (255, 255, 255))
    image.paste((200, 20, 20), (2, 2, 6, 6))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# --- SSE ------------------------------------------------------------------------------------------------


async def sse_events(response: aiohttp.ClientResponse):
    """(event type, data) per SSE frame of `response`, as they arrive."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if "event" in fields or "data" in fields:
                data = fields.get("data")
                yield fields.get("event", "message"), (json.loads(data) if data else None)
            fields.clear()
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


@dataclass
class Outcome:
    kind: str  # completed, failed, cancelled, invalid
    at: float
    data: Any
    seen: frozenset[str]


class UserStream:
    """One user's `GET /api/stream`, kept open; hands each task's terminal event to whoever waits for it."""

    def __init__(self, http: aiohttp.ClientSession, token: str) -> None:
        self._http = http
        self._token = token
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}
        self._arrived: dict[str, Outcome] = {}  # terminal events that came before anyone waited
        self._seen: dict[str, set[str]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def open(self) -> None:
        connected = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(connected))
        await asyncio.wait_for(connected, 30)

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
                    if kind == "connected":
                        connected.set_result(None)
                        continue
                    task_id = (data or {}).get("taskId")
                    if task_id is None:
                        continue
                    self._seen.setdefault(task_id, set()).add(kind)
                    if kind in TERMINAL:
                        self._deliver(task_id, Outcome(kind, time.perf_counter(), data, frozenset()))
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self.error = error
            if not connected.done():
                connected.set_exception(error)
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(RuntimeError(f"the user's stream ended: {error!r}"))
        else:
            self.error = RuntimeError("the user's stream ended")

    def _deliver(self, task_id: str, outcome: Outcome) -> None:
        outcome.seen = frozenset(self._seen.pop(task_id, ()))
        waiter = self._waiters.pop(task_id, None)
        if waiter is None:
            self._arrived[task_id] = outcome
        elif not waiter.done():
            waiter.set_result(outcome)

    async def wait(self, task_id: str, timeout: float) -> Outcome:
        if (outcome := self._arrived.pop(task_id, None)) is not None:
            return outcome
        if self.error is not None:
            raise RuntimeError(f"the user's stream ended: {self.error!r}")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[task_id] = waiter
        try:
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiters.pop(task_id, None)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


async def wait_on_task_stream(http: aiohttp.ClientSession, token: str, task_id: str) -> Outcome:
    """Open the task's own stream (it replays the task's history) and read it to the terminal event."""
    seen: set[str] = set()
    async with http.get(
        f"{GATEWAY_URL}/api/tasks/{task_id}/stream", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        if response.status != 200:
            raise RuntimeError(f"task stream answered {response.status}: {await response.text()}")
        async for kind, data in sse_events(response):
            seen.add(kind)
            if kind in TERMINAL:
                return Outcome(kind, time.perf_counter(), data, frozenset(seen))
    raise RuntimeError("the task's stream ended without a terminal event")


# --- the platform ---------------------------------------------------------------------------------------


@dataclass
class User:
    id: str
    token: str
    image: str = ""
    stream: UserStream | None = None
    completed: int = 0


class Api:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.http = http

    async def call(
        self, method: str, path: str, *, token: str | None = None, json_body: Any = None, expect: int = 200
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, GATEWAY_URL + path, json=json_body, headers=headers) as response:
            text = await response.text()
            if response.status != expect:
                raise RuntimeError(f"{method} {path} answered {response.status}: {text[:500]}")
            return json.loads(text) if text else None


def _service_command(
    env: dict[str, str], service: str, *args: str, extra: dict[str, str] | None = None
) -> str:
    service_env = run_services.service_environment(service, env, PORT_BASE)
    result = subprocess.run(
        [sys.executable, "-m", f"funmagic_{service}", *args],
        env={**service_env, **(extra or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{service} {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result.stdout


async def _gather_limited(coroutines: list[Any], limit: int = SETUP_CONCURRENCY) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coroutine: Any) -> Any:
        async with semaphore:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines))


async def _sign_up(api: Api) -> User:
    body = {"email": f"e2e-bench-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD, "mode": "token"}
    account = await api.call("POST", "/api/auth/sign-up/email", json_body=body, expect=201)
    return User(account["user"]["id"], account["access_token"])


async def _until_bonus(api: Api, user: User) -> None:
    deadline = time.monotonic() + 60
    while True:
        balance = await api.call("GET", "/api/credits/balance", token=user.token)
        if balance["balance"] >= BONUS_CREDITS:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no sign-up bonus for {user.id}: {balance}")
        await asyncio.sleep(0.2)


async def _upload(api: Api, user: User, png: bytes) -> None:
    ticket = await api.call(
        "POST", "/api/assets/uploads", token=user.token, expect=201,
        json_body={"filename": "bench.png", "content_type": "image/png", "size": len(png),
                   "module": "uploads"},
    )  # fmt: skip
    async with api.http.put(ticket["url"], data=png, headers=ticket["headers"]) as response:
        if response.status != 200:
            raise RuntimeError(f"PUT to S3 answered {response.status}: {await response.text()}")
    asset = await api.call(
        "POST", f"/api/assets/uploads/{ticket['upload_id']}/complete", token=user.token, expect=201
    )
    user.image = asset["id"]


async def _admin_token(api: Api, env: dict[str, str]) -> str:
    email = f"e2e-bench-root-{uuid.uuid4().hex[:8]}@example.com"
    await asyncio.to_thread(
        _service_command, env, "identity", "create-admin", "--email", email,
        extra={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD},
    )  # fmt: skip
    body = {"email": email, "password": PASSWORD, "mode": "token"}
    account = await api.call("POST", "/api/auth/sign-in/email", json_body=body, expect=201)
    token: str = account["access_token"]
    return token


async def _create_tool(api: Api, admin: str) -> str:
    types = await api.call("GET", "/api/admin/tool-types", token=admin)
    slug = f"bench-{uuid.uuid4().hex[:10]}"
    step = {
        "id": "first", "name": "first", "type": "remove-bg", "cost": TASK_PRICE,
        "provider": {"name": "local", "model": "default", "options": {}},
        "input": {"image": "required", "prompt": "none"},
    }  # fmt: skip
    body = {
        "slug": slug, "title": slug, "tool_type_id": types["items"][0]["id"],
        "config": {"steps": [step], "pipeline": True},
    }  # fmt: skip
    await api.call("POST", "/api/admin/tools", token=admin, json_body=body, expect=201)
    return slug


async def _wait_for_relaxed_limits(api: Api, token: str) -> None:
    # The gateway caches the limits for 1 s.
    for _ in range(50):
        async with api.http.get(
            f"{GATEWAY_URL}/api/credits/balance", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            if response.status == 200 and response.headers.get("X-RateLimit-Limit") == str(RELAXED["limit"]):
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not apply the relaxed rate limits")


# --- counters -------------------------------------------------------------------------------------------


async def pg_transactions(postgres_url: str, databases: dict[str, str]) -> dict[str, int]:
    """xact_commit + xact_rollback per service, read on a fresh connection (no cached stats snapshot)."""
    async with await psycopg.AsyncConnection.connect(postgres_url + "/postgres", autocommit=True) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        cursor = await conn.execute(
            "SELECT datname, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = ANY(%s)",
            (list(databases.values()),),
        )
        by_name = dict(await cursor.fetchall())
    return {service: int(by_name.get(name, 0)) for service, name in databases.items()}


async def redis_commands(redis: Redis) -> dict[str, int]:
    """Calls of each command since the Redis server started (`INFO commandstats`), without this sampling's
    own INFO."""
    stats = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in stats.items()}
    calls.pop("info", None)
    return calls


def _per_task(
    before: dict[str, int], after: dict[str, int], idle_rate: dict[str, float], elapsed: float, done: int
) -> dict[str, float]:
    """Redis commands of a level per completed task, the idle platform's background subtracted."""
    net = {name: (after[name] - before.get(name, 0)) - idle_rate.get(name, 0.0) * elapsed for name in after}
    return {
        name: round(v / done, 2) for name, v in sorted(net.items(), key=lambda i: -i[1]) if v / done >= 0.05
    }


class KafkaCounter:
    """End offsets of the event topics, and the messages between two samples read back and counted."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None, fetch_max_wait_ms=50
        )
        await self._consumer.start()
        for topic in TOPICS + DLQ_TOPICS:
            for partition in self._consumer.partitions_for_topic(topic) or await self._partitions_of(topic):
                self._partitions.append(TopicPartition(topic, partition))
        self._consumer.assign(self._partitions)
        # Between samples the reader is paused: its background fetcher would otherwise ask the broker for
        # every partition 20 times a second, and the idle measurement would count that as the platform's.
        self._consumer.pause(*self._partitions)

    async def _partitions_of(self, topic: str) -> set[int]:
        assert self._consumer is not None
        await self._consumer._client.force_metadata_update()  # a topic not in the metadata yet
        return self._consumer.partitions_for_topic(topic) or set()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def offsets(self) -> dict[TopicPartition, int]:
        assert self._consumer is not None
        return dict(await self._consumer.end_offsets(self._partitions))

    async def read_between(
        self, before: dict[TopicPartition, int], after: dict[TopicPartition, int], users: set[str],
        tasks: set[str],
    ) -> tuple[Counter[str], int, dict[str, dict[str, int]]]:  # fmt: skip
        """The messages between two samples: (count per `topic:type` of those keyed by one of `users` or
        `tasks`, count of the others, per task the producer's timestamp (ms) of each of its events)."""
        assert self._consumer is not None
        pending = {tp for tp in self._partitions if after[tp] > before[tp]}
        for tp in pending:
            self._consumer.seek(tp, before[tp])
        for tp in set(self._partitions) - pending:
            self._consumer.seek(tp, after[tp])
        self._consumer.resume(*pending)
        try:
            return await self._read(pending, after, users, tasks)
        finally:
            self._consumer.pause(*self._partitions)

    async def _read(
        self, pending: set[TopicPartition], after: dict[TopicPartition, int], users: set[str], tasks: set[str]
    ) -> tuple[Counter[str], int, dict[str, dict[str, int]]]:
        assert self._consumer is not None
        counted: Counter[str] = Counter()
        stamps: dict[str, dict[str, int]] = {}
        foreign = 0
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            batches = await self._consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= after[tp]:
                        break
                    kind = dict(record.headers).get("type", b"?").decode()
                    key = record.key.decode() if record.key is not None else ""
                    if key not in users and key not in tasks:
                        foreign += 1
                        continue
                    counted[f"{tp.topic}:{kind}"] += 1
                    data = json.loads(record.value).get("data") or {}
                    task = data.get("task_id") or data.get("reservation_id")
                    if task in tasks:
                        seen = stamps.setdefault(task, {})
                        label = kind if kind not in seen else f"{kind}#2"
                        seen.setdefault(label, record.timestamp)
                if await self._consumer.position(tp) >= after[tp]:
                    pending.discard(tp)
        return counted, foreign, stamps


# The main job's critical path, as timestamps: the client's POST, each event as its producer sent it
# (after the producing transaction committed), the client's receipt of `completed`.
# A step as short as the benchmark's publishes no progress (coalesced: STEP_PROGRESS_INTERVAL_SECONDS).
CHAIN = (
    "post", "TaskRequested", "CreditsReserved", "StepRequested", "StepStarted", "AssetCreated",
    "StepCompleted", "TaskCompleted", "sse_completed",
)  # fmt: skip


def timeline(stamps: dict[str, dict[str, int]], walls: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per hop of CHAIN, [p50, p99, max] in ms over the tasks that have every point."""
    gaps: dict[str, list[float]] = {f"{a} → {b}": [] for a, b in itertools.pairwise(CHAIN)}
    for task, (posted, completed) in walls.items():
        points = {**stamps.get(task, {}), "post": posted, "sse_completed": completed}
        if not all(label in points for label in CHAIN):
            continue
        for a, b in itertools.pairwise(CHAIN):
            gaps[f"{a} → {b}"].append(points[b] - points[a])
    return {
        gap: [round(statistics.median(v), 1), round(percentile(v, 0.99), 1), round(max(v), 1)]
        for gap, v in gaps.items()
        if v
    }


# --- CPU ------------------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(services: dict[int, str]) -> dict[str, float]:
    """CPU seconds used so far, per process group: each service, Postgres, Kafka, Redis, S3, this client."""
    totals: Counter[str] = Counter()
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        pid = int(stat.parent.name)
        if pid in services:
            group = services[pid]
        elif pid == me:
            group = "bench client"
        elif cmdline.startswith(b"postgres"):
            group = "postgres"
        elif b"kafka.Kafka" in cmdline:
            group = "kafka"
        elif cmdline.startswith(b"redis-server"):
            group = "redis"
        elif b"/weed" in cmdline.split(b"\0")[0]:
            group = "s3 (seaweedfs)"
        else:
            group = "other"
        totals[group] += used
    return dict(totals)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLOCK_TICKS, sum(values) / CLOCK_TICKS


# --- one level ------------------------------------------------------------------------------------------


@dataclass
class Level:
    clients: int
    started: int = 0
    completed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    accepted_ms: list[float] = field(default_factory=list)  # POST → its 202, in the measuring window
    completed_in_window: int = 0
    task_ids: set[str] = field(default_factory=set)
    drain_seconds: float = 0.0
    # Step events a client never saw before the task's `completed` (the platform's SSE ordering).
    missing_events: Counter[str] = field(default_factory=Counter)
    missing_sample: tuple[str, str] | None = None  # (task id, user id)
    walls: dict[str, tuple[float, float]] = field(default_factory=dict)  # task: (POST, completed) in ms

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{kind}: {detail[:300]}")


async def run_level(http: aiohttp.ClientSession, users: list[User], slug: str, clients: int) -> Level:
    level = Level(clients)
    begin = time.perf_counter()
    measure_from = begin + WARMUP_SECONDS
    stop_at = measure_from + MEASURE_SECONDS

    async def client(user: User) -> None:
        headers = {"Authorization": f"Bearer {user.token}"}
        body = {"toolSlug": slug, "input": {"imageAssetId": user.image}}
        while (started := time.perf_counter()) < stop_at:
            posted_ms = time.time() * 1000
            try:
                async with http.post(
                    f"{GATEWAY_URL}/api/tasks",
                    json=body,
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                    timeout=aiohttp.ClientTimeout(total=TASK_TIMEOUT_SECONDS),
                ) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                level.error("post_failed", repr(error))
                await asyncio.sleep(0.2)
                continue
            if status != 202:
                level.error(f"post_{status}", text)
                await asyncio.sleep(0.2)
                continue
            task_id = json.loads(text)["id"]
            if measure_from <= started < stop_at:
                level.accepted_ms.append((time.perf_counter() - started) * 1000)
            level.started += 1
            level.task_ids.add(task_id)
            try:
                if STREAM_MODE == "task":
                    outcome = await asyncio.wait_for(
                        wait_on_task_stream(http, user.token, task_id), TASK_TIMEOUT_SECONDS
                    )
                else:
                    assert user.stream is not None
                    outcome = await user.stream.wait(task_id, TASK_TIMEOUT_SECONDS)
            except TimeoutError:
                level.error("timeout", f"task {task_id}: no terminal event in {TASK_TIMEOUT_SECONDS:g} s")
                continue
            except (aiohttp.ClientError, RuntimeError) as error:
                level.error("stream_failed", repr(error))
                await asyncio.sleep(0.2)
                continue
            if outcome.kind != "completed":
                level.error(outcome.kind, json.dumps(outcome.data))
                continue
            problem = _check_completed(outcome)
            if problem:
                level.error("invalid_completed", problem)
                continue
            for kind in sorted({"step_started", "step_completed"} - outcome.seen):
                level.missing_events[kind] += 1
                level.missing_sample = level.missing_sample or (task_id, user.id)
            level.completed += 1
            user.completed += 1
            level.walls[task_id] = (posted_ms, posted_ms + (outcome.at - started) * 1000)
            if measure_from <= outcome.at < stop_at:
                level.completed_in_window += 1
            if measure_from <= started < stop_at:
                level.latencies_ms.append((outcome.at - started) * 1000)

    await asyncio.gather(*(client(user) for user in users[:clients]))
    level.drain_seconds = max(0.0, time.perf_counter() - stop_at)
    return level


def _check_completed(outcome: Outcome) -> str | None:
    """Whether the task really went through the flow: charged its price, one output asset."""
    data = outcome.data or {}
    assets = (data.get("output") or {}).get("assets") or []
    if data.get("chargedCredits") != TASK_PRICE or len(assets) != 1 or not assets[0].get("assetId"):
        return f"unexpected completed event: {json.dumps(data)[:300]}"
    return None


# --- the run --------------------------------------------------------------------------------------------


async def _baseline(kafka: str, postgres_url: str) -> dict[str, Any]:
    if BASELINE_MODE == "recorded":
        path = ROUNDTRIP_RESULTS
        record = json.loads((await asyncio.to_thread(path.read_text)).splitlines()[-1])
        return {
            "source": f"recorded: {path.name} of {record['time']} (commit {record['commit']})",
            **record["outbox_kafka_inbox_1_workers"],
        }
    saved = roundtrip.LATENCY_SAMPLES, roundtrip.BURST
    roundtrip.LATENCY_SAMPLES, roundtrip.BURST = 300, 3000
    try:
        measured = await roundtrip.platform_path(kafka, postgres_url, 1)
    finally:
        roundtrip.LATENCY_SAMPLES, roundtrip.BURST = saved
    return {
        "source": "measured in this run: roundtrip.platform_path, 1 worker, 300 latency samples, burst 3000",
        **measured,
    }


def _platform_env(base: dict[str, str], databases: dict[str, str], redis_url: str) -> dict[str, str]:
    return {
        **base,
        **{f"{s.upper()}_DATABASE_URL": f"{base['POSTGRES_URL']}/{db}" for s, db in databases.items()},
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "MAX_ACTIVE_TASKS_PER_USER": "1000",
        "SIGNUP_BONUS_CREDITS": str(BONUS_CREDITS),
        # Setup only: tokens outlive the run, sign-ups hash passwords cheaply. Not on the measured path.
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
    }


async def _setup(api: Api, env: dict[str, str], users_needed: int) -> tuple[list[User], str]:
    admin = await _admin_token(api, env)
    await asyncio.to_thread(_service_command, env, "tasks", "seed")
    slug = await _create_tool(api, admin)
    users = await _gather_limited([_sign_up(api) for _ in range(users_needed)])
    await _wait_for_relaxed_limits(api, users[0].token)
    await _gather_limited([_until_bonus(api, u) for u in users])
    png = tiny_png()
    await _gather_limited([_upload(api, u, png) for u in users])
    return users, slug


def _row(level: Level, cost: dict[str, Any]) -> dict[str, Any]:
    lat = level.latencies_ms
    return {
        "clients": level.clients,
        "tasks_per_s": round(level.completed_in_window / MEASURE_SECONDS, 1),
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ms": round(percentile(lat, 0.99), 1) if lat else None,
        "latency_samples": len(lat),
        # The HTTP part of `post → TaskRequested`: gateway, tasks, the creating transaction.
        "post_202_p50_p99_ms": [
            round(statistics.median(level.accepted_ms), 1),
            round(percentile(level.accepted_ms, 0.99), 1),
        ]
        if level.accepted_ms
        else None,
        "tasks_started": level.started,
        "tasks_completed": level.completed,
        "errors": sum(level.errors.values()),
        "errors_by_kind": dict(level.errors),
        "error_samples": level.error_samples,
        "drain_s": round(level.drain_seconds, 2),
        "completed_without_sse_event": dict(level.missing_events),
        **cost,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"  {'clients':>7} {'tasks/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'pg tx/task':>10} {'redis cmd/task':>14} {'kafka msg/task':>14}"
    )
    print(header, flush=True)
    for r in rows:
        p50 = "-" if r["p50_ms"] is None else f"{r['p50_ms']:.1f}"
        p99 = "-" if r["p99_ms"] is None else f"{r['p99_ms']:.1f}"
        print(
            f"  {r['clients']:>7} {r['tasks_per_s']:>8.1f} {p50:>8} {p99:>8} {r['errors']:>6} "
            f"{r['pg_transactions_per_task']:>10.2f} {r['redis_commands_per_task']:>14.1f} "
            f"{r['kafka_messages_per_task']:>14.2f}",
            flush=True,
        )


async def _measure(
    env: dict[str, str], databases: dict[str, str], kafka: KafkaCounter, users: list[User], slug: str,
    http: aiohttp.ClientSession, redis: Redis, ours_pids: dict[int, str],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    postgres_url = env["POSTGRES_URL"]
    if STREAM_MODE == "user":
        for user in users:
            user.stream = UserStream(http, user.token)
        await _gather_limited([u.stream.open() for u in users if u.stream], limit=64)
    print(
        f"  settling {SETTLE_SECONDS:g} s, then {IDLE_SECONDS:g} s idle for the background rate …", flush=True
    )
    await asyncio.sleep(SETTLE_SECONDS)
    idle_from, idle_cpu_from = await pg_transactions(postgres_url, databases), cpu_seconds(ours_pids)
    idle_redis_from = await redis_commands(redis)
    await asyncio.sleep(IDLE_SECONDS)
    idle_to, idle_cpu_to = await pg_transactions(postgres_url, databases), cpu_seconds(ours_pids)
    idle_redis_to = await redis_commands(redis)
    idle_rate = {s: (idle_to[s] - idle_from[s]) / IDLE_SECONDS for s in databases}
    idle_redis_rate = {c: (n - idle_redis_from.get(c, 0)) / IDLE_SECONDS for c, n in idle_redis_to.items()}
    idle_cpu = {
        g: round((idle_cpu_to[g] - idle_cpu_from.get(g, 0.0)) * 100 / IDLE_SECONDS, 1) for g in idle_cpu_to
    }
    idle_cpu = dict(sorted(((g, v) for g, v in idle_cpu.items() if v > 0), key=lambda i: -i[1]))
    platform_share = sum(v for g, v in idle_cpu.items() if g not in NOT_THE_PLATFORM)
    print(
        f"  idle platform: {sum(idle_rate.values()):.1f} Postgres transactions/s, "
        f"{platform_share:.1f}% of one core ({idle_cpu}; {'/'.join(sorted(NOT_THE_PLATFORM))} not counted)",
        flush=True,
    )
    ours_base = {u.id for u in users}
    rows = []
    for clients in LEVELS:
        print(
            f"  {clients} client(s): {WARMUP_SECONDS:g} s warm-up + {MEASURE_SECONDS:g} s measured …",
            flush=True,
        )
        pg_before, kafka_before = await pg_transactions(postgres_url, databases), await kafka.offsets()
        redis_before = await redis_commands(redis)
        began = time.perf_counter()
        cpu_before, machine_before = cpu_seconds(ours_pids), machine_busy_seconds()
        watch = asyncio.create_task(_watch_for_other_platforms(frozenset(ours_pids)))
        level = await run_level(http, users, slug, clients)
        cpu_after, machine_after = cpu_seconds(ours_pids), machine_busy_seconds()
        watch.cancel()
        others_seen = await asyncio.gather(watch, return_exceptions=True)
        await asyncio.sleep(SETTLE_SECONDS)
        pg_after, kafka_after = await pg_transactions(postgres_url, databases), await kafka.offsets()
        redis_after = await redis_commands(redis)
        elapsed = time.perf_counter() - began
        counted, foreign, stamps = await kafka.read_between(
            kafka_before, kafka_after, ours_base, level.task_ids
        )
        done = max(level.completed, 1)
        cpu = {g: cpu_after.get(g, 0.0) - cpu_before.get(g, 0.0) for g in cpu_after}
        busy = (machine_after[0] - machine_before[0]) / max(machine_after[1] - machine_before[1], 1e-9)
        pg_raw = {s: pg_after[s] - pg_before[s] for s in databases}
        pg_net = {s: pg_raw[s] - idle_rate[s] * elapsed for s in databases}
        offsets_delta = sum(kafka_after[tp] - kafka_before[tp] for tp in kafka_after if tp.topic in TOPICS)
        dlq = sum(kafka_after[tp] - kafka_before[tp] for tp in kafka_after if tp.topic in DLQ_TOPICS)
        cost = {
            "pg_transactions_per_task": round(sum(pg_net.values()) / done, 2),
            "pg_transactions_per_task_raw": round(sum(pg_raw.values()) / done, 2),
            "pg_transactions_per_task_by_service": {s: round(v / done, 2) for s, v in pg_net.items()},
            "redis_commands_per_task_by_command": (
                redis_per_task := _per_task(redis_before, redis_after, idle_redis_rate, elapsed, done)
            ),
            "redis_commands_per_task": round(sum(redis_per_task.values()), 1),
            "kafka_messages_per_task": round(sum(v for k, v in counted.items() if ".dlq" not in k) / done, 2),
            "kafka_messages_per_task_from_offsets": round(offsets_delta / done, 2),
            "kafka_messages_per_task_by_type": {k: round(v / done, 3) for k, v in sorted(counted.items())},
            "kafka_foreign_messages": foreign,
            "dead_letters": dlq,
            "cpu_ms_per_task": round(sum(cpu.values()) * 1000 / done, 1),
            "cpu_ms_per_task_by_process": {
                g: round(v * 1000 / done, 1) for g, v in sorted(cpu.items(), key=lambda i: -i[1]) if v > 0
            },
            "machine_cpu_busy": round(busy, 3),
            "ms_along_the_path_p50_p99_max": timeline(stamps, level.walls),
        }
        row = _row(level, cost)
        others = sorted(others_seen[0]) if isinstance(others_seen[0], set) else []
        if others or foreign:
            row["disturbed"] = {"other_service_processes": others[:6], "foreign_kafka_messages": foreign}
            print(
                "    WARNING: another platform ran during this level; its numbers are not clean", flush=True
            )
        if level.missing_sample:
            task_id, user_id = level.missing_sample
            row["missing_sample"] = {
                "task_id": task_id,
                "task_stream_in_redis": await _stream_types(redis, f"sse:{{task:{task_id}}}:events"),
                "user_stream_in_redis": await _stream_types(redis, f"sse:{{user:{user_id}}}:events", task_id),
            }
        rows.append(row)
        print(f"    {json.dumps({k: v for k, v in row.items() if not k.endswith('by_type')})}", flush=True)
    if STREAM_MODE == "user":
        for user in users:
            if user.stream is not None:
                await user.stream.close()
    return rows, {
        "idle_pg_transactions_per_s": round(sum(idle_rate.values()), 2),
        "idle_redis_commands_per_s": round(sum(idle_redis_rate.values()), 1),
        "idle_cpu_percent_of_one_core": idle_cpu,
    }


async def _watch_for_other_platforms(ours: frozenset[int]) -> set[str]:
    """Until cancelled, every second: the service processes of other platforms seen (returned on cancel)."""
    seen: set[str] = set()
    try:
        while True:
            seen.update(await asyncio.to_thread(_other_platforms, ours))
            await asyncio.sleep(1.0)
    except asyncio.CancelledError:
        return seen


async def _stream_types(redis: Redis, key: str, task_id: str | None = None) -> list[str]:
    """The SSE types in a Redis stream, in order (only `task_id`'s when given)."""
    events = [json.loads(fields[b"event"]) for _, fields in await redis.xrange(key)]
    return [e["type"] for e in events if task_id is None or e["data"].get("taskId") == task_id]


async def _verify_credits(api: Api, users: list[User]) -> dict[str, Any]:
    """Every completed task was charged once and nothing stays reserved (the settle step ran)."""
    balances = await _gather_limited(
        [api.call("GET", "/api/credits/balance", token=u.token) for u in users], limit=32
    )
    mismatched = [
        {"user": u.id, "completed": u.completed, "balance": b}
        for u, b in zip(users, balances, strict=True)
        if b["reserved_balance"] != 0 or b["lifetime_spent"] != u.completed * TASK_PRICE
    ]
    return {
        "users": len(users),
        "tasks_charged": sum(b["lifetime_spent"] for b in balances) // TASK_PRICE,
        "tasks_completed_seen": sum(u.completed for u in users),
        "mismatched_users": len(mismatched),
        "mismatch_samples": mismatched[:3],
    }


async def _remove_objects(s3: S3Settings, users: list[User]) -> int:
    removed = 0
    async with AsyncExitStack() as stack:
        client = await open_s3_client(s3, stack)
        paginator = client.get_paginator("list_objects_v2")
        for user in users:
            async for page in paginator.paginate(Bucket=s3.s3_bucket_private, Prefix=f"{user.id}/"):
                keys = [item["Key"] for item in page.get("Contents", [])]
                for start in range(0, len(keys), 500):
                    batch = keys[start : start + 500]
                    await client.delete_objects(
                        Bucket=s3.s3_bucket_private, Delete={"Objects": [{"Key": k} for k in batch]}
                    )
                    removed += len(batch)
    return removed


def _ratios(rows: list[dict[str, Any]], baseline: dict[str, Any]) -> dict[str, Any]:
    ratios = {}
    for r in rows:
        if r["p50_ms"] is None:
            continue
        ratios[f"{r['clients']}_clients"] = {
            "p50_vs_roundtrip_p50": round(r["p50_ms"] / baseline["p50_ms"], 1),
            "p99_vs_roundtrip_p99": round(r["p99_ms"] / baseline["p99_ms"], 1),
            "tasks_per_s_vs_roundtrip_events_per_s": round(r["tasks_per_s"] / baseline["events_per_s"], 4),
            "kafka_messages_per_s_vs_roundtrip_events_per_s": round(
                r["tasks_per_s"] * r["kafka_messages_per_task"] / baseline["events_per_s"], 3
            ),
        }
    return ratios


def _other_platforms(ours: frozenset[int] = frozenset()) -> list[str]:
    """Service processes running on this machine that are not this run's (`make run`, an e2e session…).

    Every platform joins the same Kafka consumer groups (named after the services): running beside another
    one, each takes some of the other's events, so this run's tasks stall or fail and the other's break.
    """
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if pid not in ours and b"-m" in args and any(a.startswith(b"funmagic_") for a in args):
            found.append(f"{pid}: {b' '.join(args).decode(errors='replace').strip()}")
    return found


def _report_log_errors(services: list[ServiceProcess]) -> None:
    for service in services:
        lines = service.log_path.read_text(errors="replace").splitlines()
        problems = [line for line in lines if '"level": "error"' in line or "Traceback" in line]
        if problems:
            print(f"  {service.name} logged {len(problems)} error line(s); first: {problems[0][:400]}")


async def run() -> dict[str, object]:
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            f"e2e_tasks needs the local stack's environment ({', '.join(missing)} unset): "
            "set -a; source .stack/env; set +a"
        )
    if others := await asyncio.to_thread(_other_platforms):
        raise SystemExit(
            "e2e_tasks: FunMagic services already run on this machine and would share the Kafka consumer "
            f"groups with this run's: stop them first ({'; '.join(others[:6])})"
        )
    if STREAM_MODE not in ("user", "task"):
        raise SystemExit("BENCH_E2E_STREAM is `user` or `task`")
    postgres_url = os.environ["POSTGRES_URL"].rstrip("/")
    kafka_bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    print("  baseline: outbox → Kafka → inbox round trip …", flush=True)
    baseline = await _baseline(kafka_bootstrap, postgres_url)
    print(f"    {baseline}", flush=True)

    suffix = uuid.uuid4().hex[:8]
    databases = {s: f"bench_e2e_{s}_{suffix}" for s in SERVICES_WITH_DATABASE}
    redis_url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis = Redis.from_url(redis_url)
    env = _platform_env(dict(os.environ), databases, redis_url)
    users: list[User] = []
    services: list[ServiceProcess] = []
    kafka = KafkaCounter(kafka_bootstrap)
    started_at = time.perf_counter()
    try:
        async with await psycopg.AsyncConnection.connect(
            postgres_url + "/postgres", autocommit=True
        ) as admin:
            for name in databases.values():
                await admin.execute(f'CREATE DATABASE "{name}"')
        await redis.flushdb()
        await redis.set("ratelimit:settings", json.dumps(RATE_LIMITS))
        keep_logs = os.environ.get("BENCH_E2E_LOG_DIR")  # keeps the services' logs there
        logs = (
            contextlib.nullcontext(keep_logs)
            if keep_logs
            else tempfile.TemporaryDirectory(prefix="bench-e2e-")
        )
        with logs as run_dir:
            try:
                services = await asyncio.to_thread(run_services.start_all, env, PORT_BASE, Path(run_dir))
                print(f"  six services up in {time.perf_counter() - started_at:.1f} s", flush=True)
                connector = aiohttp.TCPConnector(limit=0)
                timeout = aiohttp.ClientTimeout(total=TASK_TIMEOUT_SECONDS)
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                    api = Api(http)
                    setup_from = time.perf_counter()
                    users, slug = await _setup(api, env, max(LEVELS))
                    print(
                        f"  setup: tool {slug}, {len(users)} users with an 8x8 PNG each, "
                        f"in {time.perf_counter() - setup_from:.1f} s",
                        flush=True,
                    )
                    await kafka.start()
                    ours = {s.process.pid: s.name for s in services}
                    rows, idle = await _measure(env, databases, kafka, users, slug, http, redis, ours)
                    verified = await _verify_credits(api, users)
                    print(f"  credits check: {verified}", flush=True)
            finally:
                await kafka.stop()
                stopped = await asyncio.to_thread(run_services.stop_all, services)
                if any(code not in (0, None) for code in stopped.values()):
                    print(f"  WARNING: services exited with {stopped}", flush=True)
                _report_log_errors(services)
    finally:
        removed = await _remove_objects(load_settings(S3Settings), users) if users else 0
        for name in databases.values():
            await drop_database(postgres_url, name)
        await redis.flushdb()
        await redis.aclose()
    print(f"  removed {removed} objects; dropped {len(databases)} scratch databases", flush=True)

    ratio = _ratios(rows, baseline)
    print(f"  baseline (round trip, 1 worker): {baseline}", flush=True)
    _print_table(rows)
    for key, value in ratio.items():
        print(f"  ratio {key}: {value}", flush=True)
    for r in rows:
        hops = r["ms_along_the_path_p50_p99_max"].items()
        path = ", ".join(f"{gap.split(' → ')[1]} +{p50:g}/{p99:g}" for gap, (p50, p99, _) in hops)
        print(f"  {r['clients']} client(s), ms along the path (p50/p99 per hop): post, {path}", flush=True)
        print(
            f"    CPU ms per task ({r['cpu_ms_per_task']:g}): {r['cpu_ms_per_task_by_process']}", flush=True
        )
    return {
        "levels": rows,
        "baseline_roundtrip": baseline,
        "ratio_to_baseline": ratio,
        "credits_check": verified,
        **idle,
        "settings": {
            "levels": list(LEVELS),
            "warmup_s": WARMUP_SECONDS,
            "measure_s": MEASURE_SECONDS,
            "settle_s": SETTLE_SECONDS,
            "stream": STREAM_MODE,
            "step": f"local remove-bg on an 8x8 PNG, cost {TASK_PRICE}",
            "service_log_level": "WARNING",
            "total_s": round(time.perf_counter() - started_at, 1),
        },
    }
