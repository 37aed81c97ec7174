"""Presigned uploads through the real gateway and storage, against signing a URL with aiobotocore alone.

Identity, storage and the gateway run as separate processes on ports from `PORT_BASE` (storage on a
scratch database, migrated at start and dropped at the end, so the dev database is left alone). One user
signs up (mode=token); the gateway's rate limits for the categories hit here (global_api, user_api,
upload) are raised in Redis for the run and restored afterwards, even on failure.

1. Issuance: `CONCURRENCY` workers `POST /api/assets/uploads` (gateway: token check, three rate-limit
   counters, relay; storage: checks, one presigned PUT, one insert) for a warm-up and a measured window.
2. Confirmation: `CONFIRM_UPLOADS` of the uploads issued in 1 get the bytes of a tiny valid PNG, PUT with
   plain HTTP to their presigned URLs (untimed). Then the same workers `POST
   /api/assets/uploads/{id}/complete` (storage: read the upload, one ranged GET on S3 — sent with aiohttp to
   a URL storage signs itself — for size, type and the PNG signature, then lock the upload, insert the asset,
   outbox row, presigned GET for the answer), each upload once, for at most the measured window; the first
   `CONFIRM_WARMUP` are not counted.
3. Baselines, in this process: `generate_presigned_url("put_object", …)` of aiobotocore with the same
   parameters, called back to back (signing is local computation: this is the ceiling of issuance on one
   core), and the S3 checks as aiobotocore makes them (`head_object` + a 32-byte ranged `get_object`, what
   a confirmation once sent) with the same concurrency on the uploaded objects (issue 16's baseline).

The machine may be shared and the gateway path spans three processes plus Postgres, Redis and S3: compare
ratios across runs rather than absolute rates. The objects written are removed at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import statistics
import struct
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from yarl import URL

from funmagic_kit.s3 import open_s3_client
from funmagic_kit.settings import S3Settings, load_settings
from funmagic_kit.testing import scratch_database

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))

import run_services
from run_services import ServiceProcess

PORT_BASE = 19200
GATEWAY_URL = f"http://127.0.0.1:{PORT_BASE}"
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))
WARMUP_SECONDS = 1.0
MEASURE_SECONDS = float(os.environ.get("BENCH_MEASURE_SECONDS", "6"))
CONFIRM_UPLOADS = int(os.environ.get("BENCH_CONFIRM_UPLOADS", "2000"))
CONFIRM_WARMUP = 100
BASELINE_SECONDS = 2.0
MAX_ERROR_RATE = 0.001
MODULE = "bench"
SETTINGS_KEY = "ratelimit:settings"
RELAXED = {"limit": 1_000_000, "window_seconds": 60}
BENCH_RATE_LIMITS = {
    "global_api": RELAXED,
    "user_api": RELAXED,
    "task_creation": {"limit": 10, "window_seconds": 60},
    "upload": RELAXED,
    "auth_session": {"limit": 60, "window_seconds": 60},
    "auth_action": {"limit": 10, "window_seconds": 60},
}
REQUIRED_ENV = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "POSTGRES_URL",
    "IDENTITY_DATABASE_URL",
    "INTERNAL_API_TOKEN",
    "SECRET_KEY",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "CDN_URL",
)
STORAGE_MIGRATIONS = ("storage", "funmagic_storage.migrations")


def tiny_png() -> bytes:
    """A valid 1 × 1 PNG (67 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()
_names = itertools.count()


def upload_body() -> dict[str, Any]:
    # A name per upload: storage keys are {user}/{module}/{ms}_{name}, so one name would collide.
    return {
        "filename": f"bench-{next(_names)}.png",
        "content_type": "image/png",
        "size": len(PNG),
        "module": MODULE,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Sample:
    target: str
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    ops: int
    errors: int
    seconds: float
    error_samples: list[str] = field(default_factory=list)


def _sample(
    target: str, latencies_ms: list[float], seconds: float, errors: int, samples: list[str]
) -> Sample:
    if not latencies_ms:
        raise RuntimeError(f"{target}: nothing succeeded; first errors: {samples}")
    return Sample(
        target=target,
        ops_per_s=round(len(latencies_ms) / seconds, 1),
        p50_ms=round(statistics.median(latencies_ms), 3),
        p99_ms=round(percentile(latencies_ms, 0.99), 3),
        ops=len(latencies_ms),
        errors=errors,
        seconds=round(seconds, 3),
        error_samples=samples,
    )


def _check_errors(sample: Sample, attempts: int) -> None:
    if sample.errors > MAX_ERROR_RATE * max(attempts, 1):
        raise RuntimeError(
            f"{sample.target} failed: {sample.errors} of {attempts} calls went wrong; "
            f"first: {sample.error_samples}"
        )


def _summary(sample: Sample) -> dict[str, object]:
    return {k: v for k, v in asdict(sample).items() if k != "target"}


# --- processes and setup --------------------------------------------------------------------------------


def _start_processes(env: dict[str, str], run_dir: Path, started: list[ServiceProcess]) -> None:
    """Start identity, storage and gateway; `started` is filled as they start, for the caller to stop."""
    for name in ("identity", "storage", "gateway"):
        started.append(run_services.start_service(name, env, PORT_BASE, run_dir))
    for process in started:
        # The gateway's /health/all would also check the services this benchmark does not start.
        run_services.wait_until_healthy(process, path="/health")
        print(f"  {process.name} is up on port {process.port}", flush=True)


def _stop_processes(started: list[ServiceProcess]) -> None:
    for process in reversed(started):
        run_services.stop_service(process)


async def _sign_up(http: aiohttp.ClientSession) -> str:
    payload = {
        "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
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


async def _wait_for_relaxed_limits(http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
    # The gateway caches the settings for 1 s; measuring before it re-reads them would hit the defaults.
    seen = body = None
    for _ in range(50):
        async with http.get(f"{GATEWAY_URL}/api/assets", headers=headers) as response:
            body = await response.text()
            seen = response.headers.get("X-RateLimit-Limit")
            if response.status == 200 and seen == str(RELAXED["limit"]):
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"gateway did not apply the relaxed limits: X-RateLimit-Limit={seen}, body {body}")


# --- the gateway paths ----------------------------------------------------------------------------------


async def measure_issuance(http: aiohttp.ClientSession, headers: dict[str, str]) -> tuple[Sample, list[dict]]:
    """`POST /api/assets/uploads` for WARMUP_SECONDS + MEASURE_SECONDS; returns the tickets as well."""
    latencies_ms: list[float] = []
    tickets: list[dict[str, Any]] = []
    errors, attempts, error_samples = 0, 0, []
    measure_from = time.perf_counter() + WARMUP_SECONDS
    stop_at = measure_from + MEASURE_SECONDS

    async def worker() -> None:
        nonlocal errors, attempts
        while (started := time.perf_counter()) < stop_at:
            try:
                async with http.post(
                    f"{GATEWAY_URL}/api/assets/uploads", json=upload_body(), headers=headers
                ) as response:
                    body = await response.read()
                    status = response.status
            except aiohttp.ClientError as error:
                status, body = 0, repr(error).encode()
            finished = time.perf_counter()
            attempts += 1
            if status != 201:
                errors += 1
                if len(error_samples) < 5:
                    error_samples.append(f"{status}: {body[:300].decode(errors='replace')}")
                continue
            tickets.append(json.loads(body))
            if started >= measure_from:
                latencies_ms.append((finished - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    seconds = time.perf_counter() - measure_from
    sample = _sample("gateway_issuance", latencies_ms, seconds, errors, error_samples)
    _check_errors(sample, attempts)
    return sample, tickets


async def put_bytes(http: aiohttp.ClientSession, tickets: list[dict[str, Any]]) -> float:
    """PUT the PNG to every ticket's presigned URL with plain HTTP (not measured); returns the seconds."""
    queue = list(reversed(tickets))
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            ticket = queue.pop()
            async with http.put(
                URL(ticket["url"], encoded=True), data=PNG, headers=ticket["headers"]
            ) as response:
                if response.status != 200:
                    raise RuntimeError(f"PUT to S3 answered {response.status}: {await response.text()}")

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def measure_confirmation(
    http: aiohttp.ClientSession, headers: dict[str, str], tickets: list[dict[str, Any]]
) -> tuple[Sample, set[str], int]:
    """Complete each upload once; the first CONFIRM_WARMUP are a warm-up, the rest are timed."""
    queue = list(reversed(tickets))
    latencies_ms: list[float] = []
    asset_ids: set[str] = set()
    errors, attempts, error_samples = 0, 0, []
    done = 0
    measure_from: float | None = None
    deadline = time.perf_counter() + WARMUP_SECONDS + MEASURE_SECONDS

    async def worker() -> None:
        nonlocal errors, attempts, done, measure_from
        while queue and time.perf_counter() < deadline:
            ticket = queue.pop()
            counted = done >= CONFIRM_WARMUP
            if counted and measure_from is None:
                measure_from = time.perf_counter()
            started = time.perf_counter()
            url = f"{GATEWAY_URL}/api/assets/uploads/{ticket['upload_id']}/complete"
            try:
                async with http.post(url, headers=headers) as response:
                    body = await response.read()
                    status = response.status
            except aiohttp.ClientError as error:
                status, body = 0, repr(error).encode()
            finished = time.perf_counter()
            attempts += 1
            done += 1
            if status != 201:
                errors += 1
                if len(error_samples) < 5:
                    error_samples.append(f"{status}: {body[:300].decode(errors='replace')}")
                continue
            asset_ids.add(json.loads(body)["id"])
            if counted:
                latencies_ms.append((finished - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    if measure_from is None:
        raise RuntimeError("confirmation: no upload left after the warm-up; raise BENCH_CONFIRM_UPLOADS")
    sample = _sample(
        "gateway_confirmation", latencies_ms, time.perf_counter() - measure_from, errors, error_samples
    )
    _check_errors(sample, attempts)
    return sample, asset_ids, attempts - errors


# --- baselines ------------------------------------------------------------------------------------------


async def measure_raw_presign(presigner: Any, bucket: str) -> Sample:
    """aiobotocore's `generate_presigned_url` with the storage service's parameters, back to back."""

    async def sign(i: int) -> str:
        url: str = await presigner.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": bucket,
                "Key": f"bench-baseline/{MODULE}/{i}_bench.png",
                "ContentType": "image/png",
                "ContentLength": len(PNG),
            },
            ExpiresIn=900,
        )
        return url

    warm_until = time.perf_counter() + 0.5
    i = 0
    while time.perf_counter() < warm_until:
        await sign(i)
        i += 1
    latencies_ms: list[float] = []
    measure_from = time.perf_counter()
    stop_at = measure_from + BASELINE_SECONDS
    while (started := time.perf_counter()) < stop_at:
        await sign(i)
        latencies_ms.append((time.perf_counter() - started) * 1000)
        i += 1
    return _sample("raw_presign", latencies_ms, time.perf_counter() - measure_from, 0, [])


async def measure_raw_checks(client: Any, objects: list[tuple[str, str]]) -> Sample:
    """The S3 part of a confirmation: `head_object`, then a ranged `get_object` of 32 bytes."""

    async def check(bucket: str, key: str) -> None:
        await client.head_object(Bucket=bucket, Key=key)
        response = await client.get_object(Bucket=bucket, Key=key, Range="bytes=0-31")
        async with response["Body"] as body:
            await body.read()

    return await _timed_calls("raw_s3_checks", objects, check)


async def _timed_calls(
    target: str, items: list[tuple[str, str]], call: Callable[[str, str], Awaitable[None]]
) -> Sample:
    latencies_ms: list[float] = []
    errors, error_samples = 0, []
    index = 0
    measure_from = time.perf_counter() + WARMUP_SECONDS / 2
    stop_at = measure_from + BASELINE_SECONDS

    async def worker() -> None:
        nonlocal index, errors
        while (started := time.perf_counter()) < stop_at:
            bucket, key = items[index % len(items)]
            index += 1
            try:
                await call(bucket, key)
            except Exception as error:
                errors += 1
                if len(error_samples) < 5:
                    error_samples.append(repr(error)[:300])
                continue
            if started >= measure_from:
                latencies_ms.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    sample = _sample(target, latencies_ms, time.perf_counter() - measure_from, errors, error_samples)
    _check_errors(sample, len(latencies_ms) + errors)
    return sample


async def _remove_objects(client: Any, bucket: str, prefix: str) -> int:
    removed = 0
    paginator = client.get_paginator("list_objects_v2")
    async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [item["Key"] for item in page.get("Contents", [])]
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            await client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch]})
            removed += len(batch)
    return removed


def _object_of(ticket: dict[str, Any]) -> tuple[str, str]:
    _, bucket, key = URL(ticket["url"], encoded=True).path.split("/", 2)
    return bucket, key


# --- the run --------------------------------------------------------------------------------------------


async def _measure(s3: S3Settings, client: Any, presigner: Any) -> dict[str, Any]:
    results: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 2)
    async with aiohttp.ClientSession(connector=connector) as http:
        token = await _sign_up(http)
        headers = {"Authorization": f"Bearer {token}"}
        await _wait_for_relaxed_limits(http, headers)

        window = f"{WARMUP_SECONDS:g} s + {MEASURE_SECONDS:g} s"
        print(f"  issuance: {CONCURRENCY} workers, {window} …", flush=True)
        issuance, tickets = await measure_issuance(http, headers)
        print(f"    {_summary(issuance)}", flush=True)
        results["issuance"] = issuance

        tickets = tickets[:CONFIRM_UPLOADS]
        while len(tickets) < CONFIRM_UPLOADS:  # a slow machine issued fewer than needed
            async with http.post(
                f"{GATEWAY_URL}/api/assets/uploads", json=upload_body(), headers=headers
            ) as r:
                if r.status != 201:
                    raise RuntimeError(f"creating an upload answered {r.status}: {await r.text()}")
                tickets.append(await r.json())
        prefix = f"{_object_of(tickets[0])[1].split('/', 1)[0]}/{MODULE}/"
        results["prefix"] = prefix
        seconds = await put_bytes(http, tickets)
        print(f"  PUT {len(tickets)} PNGs of {len(PNG)} bytes to S3 in {seconds:.1f} s (untimed)", flush=True)

        print(f"  confirmation: {CONCURRENCY} workers, up to {len(tickets)} uploads …", flush=True)
        confirmation, asset_ids, successes = await measure_confirmation(http, headers, tickets)
        if len(asset_ids) != successes:  # each upload was confirmed once: one new asset each
            raise RuntimeError(f"{successes} confirmations made {len(asset_ids)} distinct assets")
        print(f"    {_summary(confirmation)}", flush=True)
        results["confirmation"] = confirmation

    print(f"  baseline: generate_presigned_url, back to back, {BASELINE_SECONDS:g} s …", flush=True)
    raw_presign = await measure_raw_presign(presigner, s3.s3_bucket_private)
    print(f"    {_summary(raw_presign)}", flush=True)
    results["raw_presign"] = raw_presign

    print(f"  baseline: S3 head_object + ranged get_object, {CONCURRENCY} workers …", flush=True)
    raw_checks = await measure_raw_checks(client, [_object_of(t) for t in tickets])
    print(f"    {_summary(raw_checks)}", flush=True)
    results["raw_checks"] = raw_checks
    return results


async def run() -> dict[str, object]:
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            f"storage_presign needs the local stack's environment ({', '.join(missing)} unset): "
            "set -a; source .stack/env; set +a"
        )
    s3 = load_settings(S3Settings)
    redis = Redis.from_url(os.environ["REDIS_URL"])
    previous_settings = await redis.get(SETTINGS_KEY)
    started: list[ServiceProcess] = []
    removed = 0
    try:
        await redis.set(SETTINGS_KEY, json.dumps(BENCH_RATE_LIMITS))
        async with (
            scratch_database(os.environ["POSTGRES_URL"], "bench_storage", STORAGE_MIGRATIONS) as storage_db,
            AsyncExitStack() as stack,
        ):
            client = await open_s3_client(s3, stack)
            presigner = await open_s3_client(s3, stack, endpoint=s3.s3_public_endpoint or s3.s3_endpoint)
            env = {**os.environ, "LOG_LEVEL": "WARNING", "STORAGE_DATABASE_URL": storage_db}
            with tempfile.TemporaryDirectory(prefix="bench-storage-presign-") as run_dir:
                results: dict[str, Any] = {}
                try:
                    await asyncio.to_thread(_start_processes, env, Path(run_dir), started)
                    results = await _measure(s3, client, presigner)
                finally:
                    await asyncio.to_thread(_stop_processes, started)
                    if "prefix" in results:
                        removed = await _remove_objects(client, s3.s3_bucket_private, results["prefix"])
    finally:
        # Leave the developer's limits as they were, even when the benchmark failed.
        if previous_settings is None:
            await redis.delete(SETTINGS_KEY)
        else:
            await redis.set(SETTINGS_KEY, previous_settings)
        await redis.aclose()

    issuance, confirmation = results["issuance"], results["confirmation"]
    raw_presign, raw_checks = results["raw_presign"], results["raw_checks"]
    ratio = {
        "issuance_throughput_vs_raw_presign": round(issuance.ops_per_s / raw_presign.ops_per_s, 4),
        "issuance_p50_vs_raw_presign": round(issuance.p50_ms / raw_presign.p50_ms, 1),
        "issuance_p99_vs_raw_presign": round(issuance.p99_ms / raw_presign.p99_ms, 1),
        "confirmation_throughput_vs_raw_s3_checks": round(confirmation.ops_per_s / raw_checks.ops_per_s, 4),
        "confirmation_p99_vs_raw_s3_checks": round(confirmation.p99_ms / raw_checks.p99_ms, 2),
        "confirmation_vs_issuance_throughput": round(confirmation.ops_per_s / issuance.ops_per_s, 4),
    }
    print(f"  ratio        : {ratio}", flush=True)
    print(f"  removed {removed} objects from {s3.s3_bucket_private}/{results['prefix']}", flush=True)
    return {
        "gateway_issuance": _summary(issuance),
        "gateway_confirmation": _summary(confirmation),
        "baseline_raw_presign": _summary(raw_presign),
        "baseline_raw_s3_checks": _summary(raw_checks),
        "ratio_to_baseline": ratio,
        "settings": {
            "concurrency": CONCURRENCY,
            "warmup_s": WARMUP_SECONDS,
            "measure_s": MEASURE_SECONDS,
            "confirm_uploads": CONFIRM_UPLOADS,
            "confirm_warmup": CONFIRM_WARMUP,
            "baseline_s": BASELINE_SECONDS,
            "png_bytes": len(PNG),
        },
        "objects_removed": removed,
    }
