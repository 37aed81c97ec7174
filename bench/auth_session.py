"""Authenticated `GET /api/auth/session` through the real gateway against a bare aiohttp handler.

The gateway verifies the ES256 access token against identity's JWKS, checks revocation in Redis and
counts rate limits before answering from the token. The baseline is one aiohttp route returning a body
of the same shape. Both run as separate processes and are driven by the same client harness:
`CONCURRENCY` workers on one session, a warm-up that is not counted, then a measured window. They are
measured alternately (B, G, B, G) and the better sample of each is kept, to damp noise on a small machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
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

PORT_BASE = 19000
GATEWAY_URL = f"http://127.0.0.1:{PORT_BASE}"
PATH = "/api/auth/session"
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
WARMUP_SECONDS = 2.0
MEASURE_SECONDS = float(os.environ.get("BENCH_MEASURE_SECONDS", "8"))
ROUNDS = 2
MAX_ERROR_RATE = 0.001
SETTINGS_KEY = "ratelimit:settings"
RELAXED = {"limit": 1_000_000, "window_seconds": 60}
# Only the categories this benchmark hits are relaxed; the others keep their defaults.
BENCH_RATE_LIMITS = {
    "global_api": RELAXED,
    "user_api": RELAXED,
    "task_creation": {"limit": 10, "window_seconds": 60},
    "upload": {"limit": 20, "window_seconds": 60},
    "auth_session": RELAXED,
    "auth_action": {"limit": 10, "window_seconds": 60},
}
REQUIRED_ENV = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "IDENTITY_DATABASE_URL",
    "INTERNAL_API_TOKEN",
    "SECRET_KEY",
)

# The baseline server, run with `python -c` so it has its own interpreter, loop and CPU like the gateway.
# Served like the kit serves the services: AppRunner without an access log, default asyncio loop.
BASELINE_SERVER = """
import asyncio, sys
from aiohttp import web

BODY = {
    "user": {"id": "0190f5a0-0000-7000-8000-000000000001", "email": "bench@example.com",
             "name": "Bench", "role": "user", "email_verified": False},
    "session": {"id": "0190f5a0-0000-7000-8000-000000000002",
                "access_token_expires_at": "2030-01-01T00:00:00+00:00"},
}

async def session(request: web.Request) -> web.Response:
    return web.json_response(BODY)

async def main() -> None:
    app = web.Application()
    app.router.add_get("/api/auth/session", session)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    await asyncio.Event().wait()

asyncio.run(main())
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _free_port() -> int:
    # The port is released before the child binds it; a clash would show up as a failed health wait.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_baseline(run_dir: Path) -> ServiceProcess:
    port = _free_port()
    log_path = run_dir / "baseline.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", BASELINE_SERVER, str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ServiceProcess("baseline", port, process, log_path)


def _start_processes(env: dict[str, str], run_dir: Path, started: list[ServiceProcess]) -> None:
    """Start identity, gateway and baseline; `started` is filled as they start, for the caller to stop."""
    for name in ("identity", "gateway"):
        started.append(run_services.start_service(name, env, PORT_BASE, run_dir))
    started.append(_start_baseline(run_dir))
    for process in started:
        # The gateway's /health/all would also check the four services this benchmark does not start.
        path = PATH if process.name == "baseline" else "/health"
        run_services.wait_until_healthy(process, path=path)
        print(f"  {process.name} is up on port {process.port}", flush=True)


def _stop_processes(started: list[ServiceProcess]) -> None:
    for process in reversed(started):
        run_services.stop_service(process)


async def _sign_up(http: aiohttp.ClientSession) -> str:
    payload = {
        "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
        # Not "bench …": identity refuses a password that contains the user's name ("Bench").
        "password": "load test password 123",
        "name": "Bench",
        "mode": "token",
    }
    async with http.post(f"{GATEWAY_URL}/api/auth/sign-up/email", json=payload) as response:
        body = await response.text()
        if response.status != 201:
            raise RuntimeError(f"sign-up answered {response.status}: {body}")
    token: str = json.loads(body)["access_token"]
    return token


async def _wait_for_relaxed_limits(http: aiohttp.ClientSession, token: str) -> None:
    # The gateway caches the settings for 1 s; measuring before it re-reads them would hit the defaults.
    headers = {"Authorization": f"Bearer {token}"}
    limit = str(RELAXED["limit"])
    seen = None
    for _ in range(50):
        async with http.get(GATEWAY_URL + PATH, headers=headers) as response:
            body = await response.text()
            seen = response.headers.get("X-RateLimit-Limit")
            if response.status == 200 and seen == limit:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"gateway did not apply the relaxed limits: X-RateLimit-Limit={seen}, body {body}")


@dataclass
class Sample:
    target: str
    round: int
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    responses_incl_warmup: int
    errors: int
    error_samples: list[str]


async def measure(target: str, round_no: int, url: str, token: str) -> Sample:
    """Drive `url` with CONCURRENCY workers; warm up, then measure for MEASURE_SECONDS."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies_ms: list[float] = []
    responses = 0
    errors = 0
    error_samples: list[str] = []
    started_at = time.perf_counter()
    measure_from = started_at + WARMUP_SECONDS
    stop_at = measure_from + MEASURE_SECONDS

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal responses, errors
        while (started := time.perf_counter()) < stop_at:
            try:
                async with http.get(url, headers=headers) as response:
                    body = await response.read()
                    status = response.status
            except aiohttp.ClientError as error:
                status, body = 0, repr(error).encode()
            finished = time.perf_counter()
            responses += 1
            if status != 200:
                errors += 1
                if len(error_samples) < 5:
                    error_samples.append(f"{status}: {body[:500].decode(errors='replace')}")
            elif started >= measure_from:
                latencies_ms.append((finished - started) * 1000)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    # Every counted request started and finished between measure_from and now.
    measured_seconds = time.perf_counter() - measure_from
    if not latencies_ms:
        raise RuntimeError(f"{target}: no successful request; first bodies: {error_samples}")
    return Sample(
        target=target,
        round=round_no,
        requests_per_s=round(len(latencies_ms) / measured_seconds, 1),
        p50_ms=round(statistics.median(latencies_ms), 3),
        p90_ms=round(percentile(latencies_ms, 0.90), 3),
        p99_ms=round(percentile(latencies_ms, 0.99), 3),
        requests=len(latencies_ms),
        responses_incl_warmup=responses,
        errors=errors,
        error_samples=error_samples,
    )


async def _measure_all(baseline_url: str, token: str) -> list[Sample]:
    samples: list[Sample] = []
    for round_no in range(1, ROUNDS + 1):
        for target, url in (("baseline", baseline_url), ("gateway", GATEWAY_URL + PATH)):
            print(
                f"  round {round_no}: {target}, {CONCURRENCY} workers, "
                f"{WARMUP_SECONDS:g} s warm-up + {MEASURE_SECONDS:g} s …",
                flush=True,
            )
            sample = await measure(target, round_no, url, token)
            print(f"    {_summary(sample)}", flush=True)
            samples.append(sample)
            if sample.errors > MAX_ERROR_RATE * sample.responses_incl_warmup:
                raise RuntimeError(
                    f"{target} failed: {sample.errors} of {sample.responses_incl_warmup} responses "
                    f"were not 200; first bodies: {sample.error_samples}"
                )
    return samples


def _summary(sample: Sample) -> dict[str, object]:
    return {k: v for k, v in asdict(sample).items() if k != "target"}


def _best(samples: list[Sample], target: str) -> Sample:
    # Whole samples are compared by throughput, so a kept p99 belongs to the kept rps.
    return max((s for s in samples if s.target == target), key=lambda s: s.requests_per_s)


async def run() -> dict[str, object]:
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            f"auth_session needs the local stack's environment ({', '.join(missing)} unset): "
            "set -a; source .stack/env; set +a"
        )
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    redis = Redis.from_url(env["REDIS_URL"])
    previous_settings = await redis.get(SETTINGS_KEY)
    started: list[ServiceProcess] = []
    try:
        await redis.set(SETTINGS_KEY, json.dumps(BENCH_RATE_LIMITS))
        with tempfile.TemporaryDirectory(prefix="bench-auth-session-") as run_dir:
            try:
                await asyncio.to_thread(_start_processes, env, Path(run_dir), started)
                baseline_url = f"{started[-1].url}{PATH}"
                async with aiohttp.ClientSession() as http:
                    token = await _sign_up(http)
                    await _wait_for_relaxed_limits(http, token)
                samples = await _measure_all(baseline_url, token)
            finally:
                await asyncio.to_thread(_stop_processes, started)
    finally:
        # Leave the developer's limits as they were, even when the benchmark failed.
        if previous_settings is None:
            await redis.delete(SETTINGS_KEY)
        else:
            await redis.set(SETTINGS_KEY, previous_settings)
        await redis.aclose()

    baseline, gateway = _best(samples, "baseline"), _best(samples, "gateway")
    ratio = {
        "throughput_ratio": round(gateway.requests_per_s / baseline.requests_per_s, 4),
        "p99_ratio": round(gateway.p99_ms / baseline.p99_ms, 2),
    }
    print(f"  best baseline: {_summary(baseline)}", flush=True)
    print(f"  best gateway : {_summary(gateway)}", flush=True)
    print(f"  ratio        : {ratio}", flush=True)
    return {
        "baseline_aiohttp": _summary(baseline),
        "gateway": _summary(gateway),
        "ratio_to_baseline": ratio,
        "samples": [asdict(s) for s in samples],
        "settings": {
            "concurrency": CONCURRENCY,
            "warmup_s": WARMUP_SECONDS,
            "measure_s": MEASURE_SECONDS,
            "rounds": ROUNDS,
            "best_of": "highest requests_per_s per target",
        },
    }
