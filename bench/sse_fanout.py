"""Many open `GET /api/stream` connections on one gateway process, and events for some of them.

Identity and one gateway run as separate processes on ports from `PORT_BASE`. For each level (1,000, 5,000
and 10,000 streams; `BENCH_SSE_LEVELS`), `level / STREAMS_PER_USER` users each open `STREAMS_PER_USER`
streams from this process (new users each level: a stream first replays its user's history). Once every
stream has said `connected`, the gateway's resident memory is read (`/proc/<pid>/status`), and
`EVENTS_PER_S` events are appended for random users for `MEASURE_SECONDS`, the way the projector appends
them (`TaskStreams.append`: the script that also announces the key). Each event carries the time it was
appended; every stream that shows it records the delay from that append to the client reading it
(p50/p99 over all deliveries).

The baseline, measured in the same run: the same appends read by one blocking XREAD client straight from
Redis (the floor any SSE server sits on). The floors of issue 16: 10,000 streams under 1 GB of gateway RSS,
and a delivery p99 of at most 100 ms.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))

import run_services
from run_services import ServiceProcess

from funmagic_gateway.adapters.task_streams import TaskStreams, stream_messages, user_stream_key
from funmagic_gateway.domain.sse import Projection, SseEntry
from funmagic_kit.collector import settle_after_startup

PORT_BASE = 19500
GATEWAY_URL = f"http://127.0.0.1:{PORT_BASE}"
LEVELS = [int(n) for n in os.environ.get("BENCH_SSE_LEVELS", "1000,5000,10000").split(",")]
STREAMS_PER_USER = 10
EVENTS_PER_S = 100
MEASURE_SECONDS = float(os.environ.get("BENCH_MEASURE_SECONDS", "8"))
OPEN_BATCH = 500  # streams opened at once while ramping up
SETTINGS_KEY = "ratelimit:settings"
RELAXED = {"limit": 1_000_000, "window_seconds": 60}
BENCH_RATE_LIMITS = {
    "global_api": RELAXED,
    "user_api": RELAXED,
    "task_creation": {"limit": 10, "window_seconds": 60},
    "upload": {"limit": 20, "window_seconds": 60},
    "auth_session": RELAXED,
    "auth_action": RELAXED,
}
REQUIRED_ENV = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "IDENTITY_DATABASE_URL", "INTERNAL_API_TOKEN")
RSS_FLOOR_BYTES = 1024**3
P99_FLOOR_MS = 100.0


@dataclass
class Level:
    streams: int
    users: int
    open_seconds: float
    gateway_rss_mb: float
    rss_per_stream_kb: float
    events: int
    deliveries: int
    expected_deliveries: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _sign_up(http: aiohttp.ClientSession) -> tuple[str, str]:
    payload = {
        "email": f"sse-{uuid.uuid4().hex[:12]}@example.com",
        "password": "fan out password 123",
        "name": "Fanout",
        "mode": "token",
    }
    # The gateway re-reads the relaxed limits within a second of their writing: 429s until then.
    give_up = time.perf_counter() + 10
    while True:
        async with http.post(f"{GATEWAY_URL}/api/auth/sign-up/email", json=payload) as response:
            body, status = await response.text(), response.status
        if status == 201:
            break
        if status != 429 or time.perf_counter() > give_up:
            raise RuntimeError(f"sign-up answered {status}: {body}")
        await asyncio.sleep(0.2)
    answer = json.loads(body)
    return answer["user"]["id"], answer["access_token"]


class Stream:
    """One open `/api/stream`: it reads frames and notes each bench event's delay."""

    def __init__(self, user_id: str, token: str, delays: list[float]) -> None:
        self.user_id = user_id
        self._token = token
        self._delays = delays
        self.connected = asyncio.Event()
        self.failure: str | None = None

    async def run(self, http: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
        try:
            async with http.get(f"{GATEWAY_URL}/api/stream", headers=headers) as response:
                if response.status != 200:
                    self.failure = f"HTTP {response.status}"
                    self.connected.set()
                    return
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: connected"):
                        self.connected.set()
                    elif line.startswith("data: ") and '"benchSentAt"' in line:
                        sent = json.loads(line[6:]).get("benchSentAt")
                        if isinstance(sent, int | float):
                            self._delays.append((time.time() - sent) * 1000)
        except (aiohttp.ClientError, TimeoutError) as error:
            self.failure = repr(error)[:200]
            self.connected.set()


def _projection(user_id: str, seq: int) -> Projection:
    task_id = str(uuid.uuid4())
    data = {"taskId": task_id, "progress": 50, "benchSentAt": time.time()}
    return Projection(task_id, user_id, (SseEntry("progress", data, f"bench-{seq}"),))


async def _send_events(streams: TaskStreams, user_ids: list[str], seconds: float) -> int:
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        await streams.append(_projection(random.choice(user_ids), sent))
        sent += 1
        # Paced against the clock, so a slow append does not lower the rate for good.
        await asyncio.sleep(max(0.0, sent / EVENTS_PER_S - (time.perf_counter() - started)))
    return sent


async def _level(
    n: int, chosen: list[tuple[str, str]], gateway: ServiceProcess, streams: TaskStreams
) -> Level:
    """`n` streams of `chosen` users, who have no events yet (`/api/stream` replays a user's history)."""
    delays: list[float] = []
    thresholds = gc.get_threshold()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        rss_before = _rss_bytes(gateway.process.pid)
        opened = [
            Stream(user_id, token, delays) for user_id, token in chosen for _ in range(STREAMS_PER_USER)
        ]
        tasks: list[asyncio.Task[None]] = []
        started = time.perf_counter()
        for first in range(0, len(opened), OPEN_BATCH):
            batch = opened[first : first + OPEN_BATCH]
            tasks += [asyncio.create_task(stream.run(http)) for stream in batch]
            await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in batch)), timeout=120)
        open_seconds = time.perf_counter() - started
        failures = [s.failure for s in opened if s.failure]
        if failures:
            raise RuntimeError(f"{len(failures)} of {n} streams failed, e.g. {failures[0]}")
        rss = _rss_bytes(gateway.process.pid)
        per_user = {user_id: 0 for user_id, _ in chosen}
        # This client holds as many objects as the gateway: its own collector's pauses would be counted as
        # delivery delays. The gateway's policy (funmagic_kit.collector) applies to it too, undone after.
        settle_after_startup()
        print(f"  {n} streams open in {open_seconds:.1f} s; {EVENTS_PER_S} events/s, {MEASURE_SECONDS} s …")
        sent = await _send_events(streams, list(per_user), MEASURE_SECONDS)
        # Deliveries still in flight get a moment: until they stop growing (at most 5 s).
        settle_until = time.perf_counter() + 5
        last = -1
        while time.perf_counter() < settle_until and len(delays) != last:
            last = len(delays)
            await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    return Level(
        streams=n,
        users=len(chosen),
        open_seconds=round(open_seconds, 2),
        gateway_rss_mb=round(rss / 1024**2, 1),
        rss_per_stream_kb=round((rss - rss_before) / n / 1024, 1),
        events=sent,
        deliveries=len(delays),
        expected_deliveries=sent * STREAMS_PER_USER,
        p50_ms=round(_percentile(delays, 0.5), 2),
        p99_ms=round(_percentile(delays, 0.99), 2),
        max_ms=round(max(delays, default=float("nan")), 2),
    )


async def _baseline(redis: Redis, streams: TaskStreams) -> dict[str, float]:
    """The same appends, read by one blocking XREAD straight from Redis (a fresh user's stream, empty until
    the first append, so reading from its start misses nothing)."""
    user_id = f"bench-{uuid.uuid4()}"
    key = user_stream_key(user_id)
    delays: list[float] = []
    stop = asyncio.Event()

    async def reader() -> None:
        after = "0-0"
        while not stop.is_set():
            reply = await redis.xread({key: after}, block=500)
            for entry_id, fields in stream_messages(reply):
                after = entry_id
                data = json.loads(fields[b"event"])["data"]
                delays.append((time.time() - data["benchSentAt"]) * 1000)

    task = asyncio.create_task(reader())
    sent = await _send_events(streams, [user_id], MEASURE_SECONDS / 2)
    stop.set()
    await task
    await redis.delete(key, f"sse:{{user:{user_id}}}:seen")
    return {
        "events": sent,
        "p50_ms": round(_percentile(delays, 0.5), 2),
        "p99_ms": round(_percentile(delays, 0.99), 2),
    }


async def run() -> dict[str, object]:
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise SystemExit(f"sse_fanout needs the local stack's environment ({', '.join(missing)} unset)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the streams' sockets; the gateway inherits it
    env = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "ACCESS_LOG_SAMPLE": "0",
        # Sign-ups are set-up here, not what is measured; tokens must outlive the run.
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8192",
        "ACCESS_TOKEN_TTL_SECONDS": "3600",
    }
    redis = Redis.from_url(env["REDIS_URL"])
    previous_settings = await redis.get(SETTINGS_KEY)
    started: list[ServiceProcess] = []
    levels: list[Level] = []
    try:
        await redis.set(SETTINGS_KEY, json.dumps(BENCH_RATE_LIMITS))
        with tempfile.TemporaryDirectory(prefix="bench-sse-fanout-") as run_dir:
            try:
                for name in ("identity", "gateway"):
                    started.append(run_services.start_service(name, env, PORT_BASE, Path(run_dir)))
                for process in started:
                    await asyncio.to_thread(run_services.wait_until_healthy, process, path="/health")
                gateway = started[-1]
                streams = TaskStreams(redis, redis)
                async with aiohttp.ClientSession() as http:
                    needed = sum(LEVELS) // STREAMS_PER_USER
                    users: list[tuple[str, str]] = []
                    for first in range(0, needed, 50):
                        users += await asyncio.gather(
                            *(_sign_up(http) for _ in range(min(50, needed - first)))
                        )
                    print(f"  {len(users)} users signed up", flush=True)
                baseline = await _baseline(redis, streams)
                print(f"  baseline (XREAD straight from Redis): {baseline}", flush=True)
                for n in LEVELS:
                    chosen, users = users[: n // STREAMS_PER_USER], users[n // STREAMS_PER_USER :]
                    level = await _level(n, chosen, gateway, streams)
                    levels.append(level)
                    print(f"  {n} streams: {asdict(level)}", flush=True)
            finally:
                for process in reversed(started):
                    await asyncio.to_thread(run_services.stop_service, process)
    finally:
        if previous_settings is None:
            await redis.delete(SETTINGS_KEY)
        else:
            await redis.set(SETTINGS_KEY, previous_settings)
        await redis.aclose()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    largest = levels[-1]
    ratio = {
        "p99_vs_redis_p99": round(largest.p99_ms / baseline["p99_ms"], 2),
        "p99_vs_floor_100ms": round(largest.p99_ms / P99_FLOOR_MS, 3),
        "rss_vs_floor_1gb": round(largest.gateway_rss_mb * 1024**2 / RSS_FLOOR_BYTES, 3),
        "delivered_share": round(largest.deliveries / max(1, largest.expected_deliveries), 4),
    }
    print(f"  ratio: {ratio}", flush=True)
    return {
        "baseline_redis_xread": baseline,
        "levels": [asdict(level) for level in levels],
        "ratio": ratio,
        "median_p99_ms": statistics.median(level.p99_ms for level in levels),
        "settings": {
            "streams_per_user": STREAMS_PER_USER,
            "events_per_s": EVENTS_PER_S,
            "measure_s": MEASURE_SECONDS,
            "open_batch": OPEN_BATCH,
        },
    }
