"""Infrastructure faults with tasks in flight from several users: a part of the stack (Kafka, Postgres, Redis,
SeaweedFS) SIGKILLed and restarted on its data, a provider that hangs past its step's deadline, and an S3
that refuses writes (a full disk).

While a part is down, the API answers every call with a success or a 503 problem (with Retry-After) —
never a 500 — and `/health/<part>` names the part that is down. Afterwards every task has ended, every
balance is the bonus minus what was charged with nothing reserved, and `credits verify` finds nothing.
Each test restarts what it killed and waits for every service's `/health/all` to be green again, so the
tests after it find the stack as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import run_services
from clients import PASSWORD, bearer, browser, call, cookie, png, sign_in, upload
from faults import Fault
from openai_api import FakeOpenAI
from test_tasks import create_tool
from workload import (
    BONUS,
    PRICE,
    assert_ledgers_exact,
    every_task_ends,
    new_user,
    start_task,
    task_request,
)

from funmagic_kit.testing import wait_until

USERS = 3
TASKS_PER_USER = 4
CREATED_DURING_OUTAGE = 2  # at most, per user: with the tasks before, within the bonus and the running cap
PROBE_ROUNDS = 25  # at most: enough calls to meet the outage, not so many that they slow the restart
assert (TASKS_PER_USER + CREATED_DURING_OUTAGE) * PRICE <= BONUS
REPO = Path(__file__).resolve().parents[2]
STACK = Path(os.environ.get("FUNMAGIC_STACK_DIR", REPO / ".stack"))


# --- the stack's parts: SIGKILL, restart ------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields_after_name = text.rsplit(")", 1)[1].split()
    return fields_after_name[0], int(fields_after_name[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _part_processes(part: str) -> list[int]:
    """The part's process (from the stack's pid file) and its children: Postgres' server processes each
    run in a session of their own, so the postmaster's process group is not enough."""
    pid = int((STACK / "run" / f"{part}.pid").read_text().split()[0])
    assert _alive(pid), f"{part} (pid {pid}) is not running"
    children = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == pid
    ]
    return [pid, *children]


async def kill_part(part: str) -> None:
    """SIGKILL the part and everything it runs, at once: what an OOM kill or a crash of its host does."""
    pids = _part_processes(part)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    async def all_gone() -> bool:
        return not any(_alive(pid) for pid in pids)

    await wait_until(all_gone, timeout=15, what=f"{part} to die", interval=0.05)


async def restart_stack() -> float:
    """`stack.sh up`: starts the part that is not running on its data and waits until it answers; returns
    how long that took."""
    started = time.monotonic()
    result = await asyncio.to_thread(
        subprocess.run,
        [str(REPO / "deploy" / "local" / "stack.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return time.monotonic() - started


async def every_service_healthy(platform: dict, timeout: float = 90) -> None:
    await asyncio.gather(
        *(
            asyncio.to_thread(run_services.wait_until_healthy, service, "/health/all", timeout)
            for service in platform.values()
        )
    )


async def health_of(service: run_services.ServiceProcess, check: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"{service.url}/health/{check}") as response:
        return response.status, await response.json()


async def health_names_the_part_down(service: run_services.ServiceProcess, check: str) -> None:
    """`/health/<check>` of `service` turns red (503, ok false) while its part is down."""
    latest: list[object] = []

    async def red() -> bool:
        status, body = await health_of(service, check)
        latest[:] = [status, body]
        return status == 503 and body[check]["ok"] is False

    await wait_until(red, timeout=20, what=f"{service.name} /health/{check} to turn red", interval=0.2)
    status, body = await health_of(service, "all")
    assert status == 503, body
    assert body["checks"][check]["ok"] is False, body


# --- calls during an outage ---------------------------------------------------------------------------


@dataclass
class Answer:
    call: str
    status: int
    content_type: str
    retry_after: str | None
    body: object


@dataclass
class OutageProbe:
    """Calls the API, round after round, while a part is down, and keeps every answer: each must be a
    success or a 503 problem with Retry-After. A task it creates joins the workload; a creation answered
    503 is retried with its Idempotency-Key once the part is back (that is what a client does), so the
    set of tasks is known exactly afterwards."""

    users: list[dict]
    uploads: bool = False
    # Browsers signed in with cookies: each round renews their session; an outage must not end it.
    browsers: list[aiohttp.ClientSession] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    unanswered: list[tuple[dict, str]] = field(default_factory=list)  # (user, Idempotency-Key)
    rounds: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _refresh_refused: set[int] = field(default_factory=set)  # id() of the browsers answered other than 200

    async def run(self) -> None:
        per_user = dict.fromkeys((u["id"] for u in self.users), 0)
        while not self._stop.is_set() and self.rounds < PROBE_ROUNDS:
            # All of a round's calls at once: while Postgres is down each may wait out a pool checkout.
            calls = []
            for user in self.users:
                if per_user[user["id"]] < CREATED_DURING_OUTAGE:
                    per_user[user["id"]] += 1
                    calls.append(self._create(user))
                calls += [
                    self._call(user, "GET", "/api/tasks?limit=100"),
                    self._call(user, "GET", "/api/credits/balance"),
                    self._call(user, "GET", "/api/auth/session"),
                ]
                if self.rounds < 2:  # a sign-in hashes a password: a few are enough
                    calls.append(self._call(user, "POST", "/api/auth/sign-in/email", json=_credentials(user)))
                if self.uploads:
                    calls.append(self._upload(user))
            calls += [self._refresh(client) for client in self.browsers]
            await asyncio.gather(*calls)
            self.rounds += 1

    def stop(self) -> None:
        self._stop.set()

    async def _call(self, user: dict, method: str, path: str, **kwargs: object) -> tuple[int, object]:
        headers = bearer(user["token"]) | kwargs.pop("headers", {})  # type: ignore[operator]
        async with browser() as client:
            # A call may wait out a connection pool's checkout before its answer: a generous timeout.
            status, body, response = await call(
                client, method, path, headers=headers, timeout=aiohttp.ClientTimeout(total=60), **kwargs
            )
        self.answers.append(
            Answer(
                f"{method} {path.split('?')[0]}",
                status,
                response.headers.get("Content-Type", ""),
                response.headers.get("Retry-After"),
                body,
            )
        )
        return status, body

    async def _refresh(self, client: aiohttp.ClientSession) -> None:
        """A browser's session renewed with its cookies until the first answer that is not a renewal, which
        must be a 503 that keeps the cookies: the outage says nothing about the session. (Not after it: a
        renewal identity commits once the part is back, after the gateway gave up waiting, would make the
        browser's next try a reuse of a rotated token, which rightly ends the session.)"""
        if id(client) in self._refresh_refused:
            return
        status, body, response = await call(
            client, "POST", "/api/auth/refresh", csrf=True, timeout=aiohttp.ClientTimeout(total=60)
        )
        self.answers.append(
            Answer(
                "POST /api/auth/refresh (cookie)",
                status,
                response.headers.get("Content-Type", ""),
                response.headers.get("Retry-After"),
                body,
            )
        )
        if status != 200:
            self._refresh_refused.add(id(client))
            cleared = [c for c in response.headers.getall("Set-Cookie", []) if c.startswith("fm_refresh=")]
            assert not cleared, f"a {status} answer to a refresh cleared the session's cookies: {cleared}"

    async def _create(self, user: dict) -> None:
        key = str(uuid.uuid4())
        status, body = await self._call(
            user, "POST", "/api/tasks", json=task_request(user), headers={"Idempotency-Key": key}
        )
        if status == 202:
            self.created.append(body["id"])  # type: ignore[index]
        else:
            self.unanswered.append((user, key))

    async def _upload(self, user: dict) -> None:
        """The presigned upload flow: asking for a ticket and completing it are our calls (the PUT goes to
        S3 itself and may fail while it is down; completing a failed upload is then refused, 4xx)."""
        data = png(16, 16)
        ticket_request = {"filename": "probe.png", "content_type": "image/png", "size": len(data)}
        status, ticket = await self._call(
            user, "POST", "/api/assets/uploads", json=ticket_request | {"module": "uploads"}
        )
        if status != 201:
            return
        assert isinstance(ticket, dict)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                http.put(ticket["url"], data=data, headers=ticket["headers"]) as put,
            ):
                stored = put.status == 200
        except (aiohttp.ClientError, TimeoutError):
            stored = False
        status, _ = await self._call(user, "POST", f"/api/assets/uploads/{ticket['upload_id']}/complete")
        if not stored and 400 <= status < 500:
            self.answers[-1].status = 0  # a refusal of an upload that never happened: right, not counted

    def assert_never_a_server_error(self) -> None:
        assert self.answers, "no call was made during the outage"
        wrong = [
            a
            for a in self.answers
            if not (
                a.status == 0
                or 200 <= a.status < 300
                or (
                    a.status == 503
                    and a.content_type.startswith("application/problem+json")
                    and a.retry_after is not None
                )
            )
        ]
        assert not wrong, "\n".join(map(repr, wrong))

    async def settle_unanswered(self) -> None:
        """Retries each creation that was answered 503, with its key, until it is answered 202."""
        for user, key in self.unanswered:
            got: list[str] = []

            async def created(user: dict = user, key: str = key, got: list[str] = got) -> bool:
                async with browser() as client:
                    status, body, _ = await call(
                        client,
                        "POST",
                        "/api/tasks",
                        json=task_request(user),
                        headers=bearer(user["token"]) | {"Idempotency-Key": key},
                    )
                assert status in (202, 503), body
                if status == 202:
                    got.append(body["id"])
                return status == 202

            await wait_until(created, timeout=30, what="a retried task creation", interval=0.5)
            self.created.append(got[0])
        self.unanswered = []


def _credentials(user: dict) -> dict:
    return {"email": user["email"], "password": PASSWORD, "mode": "token"}


async def sign_in_works(user: dict) -> None:
    async with browser() as client:
        status, body = await sign_in(client, user["email"], mode="token")
    assert status in (200, 201), body


@pytest.fixture
async def workload(platform, seeded_tools) -> tuple[list[dict], list[str]]:
    """USERS users with TASKS_PER_USER background removals each, just started (in flight)."""
    users = list(await asyncio.gather(*(new_user("infra") for _ in range(USERS))))
    task_ids = list(await asyncio.gather(*(start_task(u) for u in users for _ in range(TASKS_PER_USER))))
    return users, task_ids


async def _through_an_outage(
    part: str, platform: dict, users: list[dict], *, health_service: str, uploads: bool = False
) -> tuple[OutageProbe, dict[str, float]]:
    """Kill `part`, call the API while it is down, restart it, wait until every service is green."""
    timings: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        browsers = [await stack.enter_async_context(browser()) for _ in users]
        for client, user in zip(browsers, users, strict=True):
            status, body = await sign_in(client, user["email"])
            assert status in (200, 201), body
            assert cookie(client, "fm_refresh"), "signed in with cookies"
        return await _probed_outage(part, platform, OutageProbe(users, uploads=uploads, browsers=browsers),
                                    health_service=health_service, timings=timings)  # fmt: skip


async def _probed_outage(
    part: str, platform: dict, probe: OutageProbe, *, health_service: str, timings: dict[str, float]
) -> tuple[OutageProbe, dict[str, float]]:
    started = time.monotonic()
    await kill_part(part)
    probing = asyncio.create_task(probe.run())
    try:
        await health_names_the_part_down(platform[health_service], {"postgres": "db"}.get(part, part))

        # Calls keep coming while the part stays down: at least two full rounds.
        async def two_rounds() -> bool:
            return probe.rounds >= 2

        await wait_until(two_rounds, timeout=120, what="two rounds of calls", interval=0.1)
        timings["down"] = time.monotonic() - started
    finally:
        # Whatever happened, the part comes back for the tests after this one.
        timings["restart"] = await restart_stack()
        try:
            await every_service_healthy(platform)
            timings["healthy_after_kill"] = time.monotonic() - started
        finally:
            probe.stop()
            await probing
    probe.assert_never_a_server_error()
    await probe.settle_unanswered()
    return probe, timings


async def _all_settled(users: list[dict], task_ids: list[str], service_command, timeout: float = 120) -> None:
    await every_task_ends(users, set(task_ids), timeout=timeout)
    await assert_ledgers_exact(users)
    verified = await asyncio.to_thread(service_command, "credits", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.fixture(autouse=True)
def _no_500_in_any_log(no_server_errors_so_far) -> Iterator[None]:
    yield
    no_server_errors_so_far()


# --- the parts of the stack -------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def postgres_keeps_acknowledged_commits(stack_env) -> None:
    """With synchronous_commit off, a killed Postgres forgets commits it acknowledged (a consumer then has
    committed the Kafka offset of an event whose handling is lost): no SIGKILL test means anything then."""
    import psycopg

    with psycopg.connect(stack_env["POSTGRES_URL"] + "/postgres") as conn:
        setting = conn.execute("SHOW synchronous_commit").fetchone()[0]
    assert setting == "on", "the stack's Postgres runs with synchronous_commit off: restart it (stack.sh)"


async def test_postgres_killed_and_restarted(platform, workload, service_command) -> None:
    users, task_ids = workload
    probe, timings = await _through_an_outage("postgres", platform, users, health_service="tasks")
    await _all_settled(users, task_ids + probe.created, service_command)
    print(f"postgres: {timings}, {len(probe.answers)} calls during the outage")


async def test_redis_killed_and_restarted(platform, workload, service_command, e2e_redis_settings) -> None:
    users, task_ids = workload
    try:
        probe, timings = await _through_an_outage("redis", platform, users, health_service="tasks")
    finally:
        # The local Redis keeps no journal: what the e2e session wrote there is gone with the process.
        e2e_redis_settings()
    # Identity's first requests after the restart (each touches Redis) meet pooled connections that died.
    await asyncio.gather(*(sign_in_works(u) for u in users))
    await _all_settled(users, task_ids + probe.created, service_command)
    print(f"redis: {timings}, {len(probe.answers)} calls during the outage")


async def test_kafka_killed_and_restarted(platform, workload, service_command) -> None:
    users, task_ids = workload
    probe, timings = await _through_an_outage("kafka", platform, users, health_service="tasks")
    # Creating a task needs no broker: the event waits in the outbox.
    assert any(a.call == "POST /api/tasks" and a.status == 202 for a in probe.answers), probe.answers
    await _all_settled(users, task_ids + probe.created, service_command)
    print(f"kafka: {timings}, {len(probe.answers)} calls during the outage")


async def test_s3_killed_and_restarted(platform, workload, service_command) -> None:
    users, task_ids = workload
    probe, timings = await _through_an_outage("s3", platform, users, health_service="storage", uploads=True)
    await _all_settled(users, task_ids + probe.created, service_command)
    # Uploads work again.
    await upload(users[0]["token"], png(8, 8))
    print(f"s3: {timings}, {len(probe.answers)} calls during the outage")


# --- an S3 that refuses writes --------------------------------------------------------------------------


def _weed_shell(command: str) -> str:
    """A `weed shell` command against the stack's SeaweedFS (its master and filer ports: stack.sh)."""
    master = os.environ.get("FUNMAGIC_S3_MASTER_PORT", "9333")
    filer = os.environ.get("FUNMAGIC_S3_FILER_PORT", "8335")
    weed = os.environ.get("FUNMAGIC_WEED") or str(REPO / ".venv" / "bin" / "weed")
    result = subprocess.run(
        [weed, "shell", f"-master=127.0.0.1:{master}", f"-filer=127.0.0.1:{filer}"],
        input=command + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _answers_503(log: Path) -> int:
    return sum('"status": 503' in line for line in log.read_text(errors="replace").splitlines())


async def test_s3_refusing_writes_like_a_full_disk(platform, seeded_tools, service_command) -> None:
    """The buckets turn read-only — what SeaweedFS does to a bucket over its quota (s3.bucket.quota.enforce)
    — while tasks need to store their outputs and users upload. The refused writes are 503s (SeaweedFS
    itself answers them 500 InternalError), and every task ends once writes are accepted again."""
    users = list(await asyncio.gather(*(new_user("full") for _ in range(USERS))))
    storage_log = platform["storage"].log_path
    refused_before = _answers_503(storage_log)
    probe = OutageProbe(users, uploads=True)
    started = time.monotonic()
    await asyncio.to_thread(_weed_shell, "fs.configure -locationPrefix=/buckets/ -readOnly -apply")
    try:
        task_ids = list(await asyncio.gather(*(start_task(u) for u in users for _ in range(2))))
        probing = asyncio.create_task(probe.run())
        try:

            async def outputs_refused() -> bool:
                # Storage answered 503 to a write S3 refused (an output, or a probe's upload).
                return _answers_503(storage_log) > refused_before and probe.rounds >= 2

            await wait_until(outputs_refused, timeout=60, what="storage to refuse a write", interval=0.2)
        finally:
            probe.stop()
            await probing
    finally:
        await asyncio.to_thread(_weed_shell, "fs.configure -locationPrefix=/buckets/ -delete -apply")
    refused_for = time.monotonic() - started
    probe.assert_never_a_server_error()
    await probe.settle_unanswered()
    await _all_settled(users, task_ids + probe.created, service_command)
    await upload(users[0]["token"], png(8, 8))
    print(f"s3 refusing writes: {refused_for:.1f}s read-only, {len(probe.answers)} calls meanwhile")


# --- a provider that hangs ----------------------------------------------------------------------------


async def test_a_provider_hanging_past_the_deadline_ends_its_tasks(
    platform, seeded_tools, admin_token, service_command
) -> None:
    step_timeout = 10  # the shortest a step may have
    async with FakeOpenAI(api_key="sk-e2e-hang-" + uuid.uuid4().hex) as fake:
        fake.faults.always("generations", Fault.timeout(seconds=120))
        async with browser() as client:
            provider = {
                "name": f"openai-hang-{uuid.uuid4().hex[:8]}", "type": "openai", "base_url": fake.url,
                "api_key": fake.api_key, "config": {"rateLimit": {"maxRetries": 1}},
            }  # fmt: skip
            status, created, _ = await call(
                client, "POST", "/api/admin/providers", json=provider, headers=bearer(admin_token)
            )
            assert status == 201, created
        slug = await create_tool(
            admin_token,
            [{"id": "paint", "name": "Paint", "type": "image-gen", "cost": PRICE,
              "timeoutSeconds": step_timeout,
              "provider": {"name": provider["name"], "model": "gpt-image-1", "options": {}},
              "input": {"image": "none", "prompt": "required"}}],
        )  # fmt: skip
        users = list(await asyncio.gather(*(new_user("hang") for _ in range(USERS))))
        started = time.monotonic()
        body = {"toolSlug": slug, "input": {"prompt": "a lighthouse that never comes"}}
        task_ids = list(await asyncio.gather(*(_start(u, body) for u in users for _ in range(2))))
        tasks = await every_task_ends(users, set(task_ids), timeout=step_timeout + 60)
        elapsed = time.monotonic() - started
        # Ended by the provider's deadline, not by the fake giving up (120 s) nor by tasks' own timeout
        # (the step's plus STEP_DEADLINE_GRACE_SECONDS, 30 s).
        assert elapsed < step_timeout + 25, elapsed
        assert fake.requests, "the provider was called"
    assert all(t["status"] == "failed" and t["charged_credits"] == 0 for t in tasks), tasks
    await assert_ledgers_exact(users)
    verified = await asyncio.to_thread(service_command, "credits", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(f"hanging provider: every task ended {elapsed:.1f}s after the first started")


async def _start(user: dict, body: dict) -> str:
    async with browser() as client:
        status, task, _ = await call(client, "POST", "/api/tasks", json=body, headers=bearer(user["token"]))
    assert status == 202, task
    return task["id"]
