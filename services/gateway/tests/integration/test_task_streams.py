"""Task progress over SSE against the real local Redis: the projector's appends, and the SSE endpoints
served by a real aiohttp server (no handler cancellation, as in production) to a real HTTP client."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from funmagic_contracts.base import IntegrationEvent, OutputAsset
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import (
    StepCompleted,
    StepDelayed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import (
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskOutput,
    TaskStarted,
)
from funmagic_gateway.adapters.task_streams import (
    Outcome,
    ReadInterrupt,
    StoredEntry,
    StreamWakeups,
    TaskStreams,
    create_stream_read_client,
    task_stream_key,
    user_stream_key,
)
from funmagic_gateway.domain.sse import project
from funmagic_gateway.entrypoints.edge import cors_middleware, security_headers_middleware
from funmagic_gateway.entrypoints.kafka import SseProjector
from funmagic_gateway.entrypoints.sse_routes import SessionCheck, SseRoutes
from funmagic_kit.http import problem_middleware
from funmagic_kit.metrics import Metrics
from funmagic_kit.redis import create_redis
from funmagic_kit.request_keys import PRINCIPAL_KEY, Principal
from funmagic_kit.testing import (
    InMemoryConsumer,
    OwnRedisServer,
    RoundTripConnection,
    in_memory_consumer,
    wait_until,
)

# Databases 0, 3 and 9 belong to other suites; this one is ours alone.
SSE_REDIS_DB = 11
ORIGIN = "https://app.funmagic.test"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Overrides the folder's fixture: the same server, our own database."""
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is unset: start the local stack (`make stack-up`) and source .stack/env")
    # The database is the URL's path; from_url prefers it to a db= argument, so it is replaced here.
    return urlunsplit(urlsplit(url)._replace(path=f"/{SSE_REDIS_DB}"))


# --- fixtures ------------------------------------------------------------------------------------


@dataclass
class Ids:
    """Fresh task and user ids for one test; their keys are deleted afterwards."""

    used: list[str] = field(default_factory=list)

    def task(self) -> str:
        return self._new("task")

    def user(self) -> str:
        return self._new("user")

    def _new(self, kind: str) -> str:
        value = str(uuid.uuid4())
        self.used.append(f"sse:{{{kind}:{value}}}:*")
        return value


@pytest.fixture
async def ids(redis: Redis) -> AsyncIterator[Ids]:
    created = Ids()
    yield created
    for pattern in created.used:
        keys = [key async for key in redis.scan_iter(match=pattern)]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
async def reads(redis_url: str) -> AsyncIterator[Redis]:
    client = create_stream_read_client(redis_url, max_connections=16, block_seconds=30)
    yield client
    await client.aclose()


@pytest.fixture
def streams(redis: Redis, reads: Redis) -> TaskStreams:
    assert redis.connection_pool.connection_kwargs["db"] == SSE_REDIS_DB
    return TaskStreams(redis, reads)


@asynccontextmanager
async def projecting(streams: TaskStreams) -> AsyncIterator[InMemoryConsumer]:
    """The projector's subscriptions on the kit's consumer (fed without Kafka)."""
    async with in_memory_consumer("gateway", SseProjector(streams).subscriptions()) as consumer:
        yield consumer


@pytest.fixture
async def projector(streams: TaskStreams) -> AsyncIterator[InMemoryConsumer]:
    async with projecting(streams) as consumer:
        yield consumer


async def publish(projector: InMemoryConsumer, event: IntegrationEvent) -> Envelope:
    """One Kafka message through the consumer to the projector's handler (which must have handled it)."""
    return await projector.deliver_event(event)


async def redeliver(projector: InMemoryConsumer, envelope: Envelope) -> None:
    """The same message again (Kafka delivers at least once): the gateway has no inbox, so it is handled."""
    assert await projector.deliver(envelope) == "handled"


async def stream_types(redis: Redis, key: str) -> list[str]:
    return [json.loads(fields[b"event"])["type"] for _id, fields in await redis.xrange(key)]


async def stream_ids(redis: Redis, key: str) -> list[str]:
    return [entry_id.decode() for entry_id, _fields in await redis.xrange(key)]


def started(task: str, user: str, step: str = "image-gen", attempt: int = 1) -> StepStarted:
    return StepStarted(task_id=task, user_id=user, step_id=step, provider="openai", attempt=attempt)


def progressed(task: str, user: str, progress: int, step: str = "image-gen") -> StepProgressed:
    return StepProgressed(
        task_id=task, user_id=user, step_id=step, attempt=1, progress=progress, message=f"{progress}%"
    )


def step_completed(
    task: str, user: str, asset: str, step: str = "image-gen", attempt: int = 1
) -> StepCompleted:
    output = StepOutput(assets=(OutputAsset(asset_id=asset, role="image"),), metadata={"w": 1})
    return StepCompleted(task_id=task, user_id=user, step_id=step, attempt=attempt, output=output)


def task_completed(
    task: str, user: str, asset: str, step: str = "image-gen", attempt: int = 1
) -> TaskCompleted:
    steps = [{"step_id": step, "attempt": attempt, "assets": [{"asset_id": asset, "role": "image"}]}]
    output = TaskOutput(assets=(OutputAsset(asset_id=asset, role="image"),), metadata={"steps": steps})
    return TaskCompleted(task_id=task, user_id=user, output=output, charged_credits=10)


def task_failed(task: str, user: str) -> TaskFailed:
    return TaskFailed(
        task_id=task, user_id=user, error_code="provider_error", error_message="It broke", charged_credits=0
    )


# --- the projector -------------------------------------------------------------------------------


async def test_a_redelivered_event_is_appended_once_to_each_stream(
    redis: Redis, streams: TaskStreams, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    envelope = Envelope.wrap(progressed(task, user, 10))

    for _delivery in range(3):
        await redeliver(projector, envelope)

    assert await stream_types(redis, task_stream_key(task)) == ["progress"]
    assert await stream_types(redis, user_stream_key(user)) == ["progress"]
    again = await streams.append(project(str(envelope.id), progressed(task, user, 10)))  # type: ignore[arg-type]
    assert again.task == again.user == (Outcome.DUPLICATE,)


async def test_a_run_of_events_is_appended_in_order_in_two_round_trips(
    redis_url: str, redis: Redis, reads: Redis, ids: Ids
) -> None:
    """A fetch of several projected events (two tasks of one user, one of them ending) reaches Redis as two
    pipelines — the task streams', then the user's — and leaves the streams as one event at a time would."""
    writes = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    streams = TaskStreams(writes, reads)
    first, second, user = ids.task(), ids.task(), ids.user()
    run = [
        started(first, user),
        started(second, user),
        progressed(first, user, 50),
        task_completed(first, user, "asset-1"),
        progressed(second, user, 20),
        progressed(first, user, 99),  # after the terminal entry: dropped from both streams
    ]
    try:
        async with projecting(streams) as projector:
            await projector.deliver(Envelope.wrap(started(ids.task(), user)))  # the script is loaded
            RoundTripConnection.sends = 0
            outcomes = await projector.deliver_batch([Envelope.wrap(event) for event in run])
            round_trips = RoundTripConnection.sends
    finally:
        await writes.aclose()

    assert outcomes == ["handled"] * len(run)
    assert round_trips == 2
    # A task's outcome brings its step's completion along when that has not come yet.
    ended = ["step_started", "progress", "step_completed", "completed"]
    assert await stream_types(redis, task_stream_key(first)) == ended
    assert await stream_types(redis, task_stream_key(second)) == ["step_started", "progress"]
    assert (await stream_types(redis, user_stream_key(user)))[1:] == [
        "step_started",
        "step_started",
        "progress",
        "step_completed",
        "completed",
        "progress",
    ]


async def test_a_run_is_appended_after_redis_forgot_the_script(
    redis: Redis, streams: TaskStreams, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, started(task, user))
    await redis.script_flush()  # as a restarted Redis would

    outcomes = await projector.deliver_batch(
        [Envelope.wrap(progressed(task, user, 30)), Envelope.wrap(progressed(task, user, 60))]
    )

    assert outcomes == ["handled", "handled"]
    assert await stream_types(redis, task_stream_key(task)) == ["step_started", "progress", "progress"]
    assert await stream_types(redis, user_stream_key(user)) == ["step_started", "progress", "progress"]


async def test_an_event_that_breaks_its_contract_is_dead_lettered_and_appends_nothing(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    good = Envelope.wrap(progressed(task, user, 10))
    forged = good.model_copy(update={"data": {**good.data, "progress": "most of it"}})

    assert await projector.deliver(forged) == "dead_lettered"
    assert await redis.exists(task_stream_key(task), user_stream_key(user)) == 0


async def test_events_the_projector_does_not_show_are_skipped(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    started_task = Envelope.wrap(TaskStarted(task_id=task, user_id=user, reservation_id="r"))

    assert await projector.deliver(started_task) == "skipped"
    assert await redis.exists(task_stream_key(task), user_stream_key(user)) == 0


async def test_completed_before_the_late_step_completed_keeps_the_story_in_order(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, started(task, user))
    await publish(projector, progressed(task, user, 30))
    await publish(projector, progressed(task, user, 90))
    # tasks.events overtakes providers.events: the outcome is projected before the step's completion.
    await publish(projector, task_completed(task, user, "asset-1"))
    late = await publish(projector, step_completed(task, user, "asset-1"))
    await redeliver(projector, late)  # and it is redelivered, too

    expected = ["step_started", "progress", "progress", "step_completed", "completed"]
    assert await stream_types(redis, task_stream_key(task)) == expected
    assert await stream_types(redis, user_stream_key(user)) == expected


async def test_the_step_completed_that_came_first_is_not_repeated_by_completed(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, started(task, user))
    await publish(projector, step_completed(task, user, "asset-1"))
    await publish(projector, task_completed(task, user, "asset-1"))

    entries = await redis.xrange(task_stream_key(task))
    assert [json.loads(f[b"event"])["type"] for _, f in entries] == [
        "step_started",
        "step_completed",
        "completed",
    ]
    # The step's own event won: it has the provider's metadata, which TaskCompleted does not repeat.
    assert json.loads(entries[1][1][b"event"])["data"]["output"]["metadata"] == {"w": 1}


async def test_nothing_follows_a_terminal_entry(
    redis: Redis, streams: TaskStreams, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, started(task, user))
    await publish(projector, task_failed(task, user))
    await publish(projector, progressed(task, user, 99))
    await publish(projector, step_completed(task, user, "asset-1"))
    await publish(projector, TaskCancelled(task_id=task, user_id=user, charged_credits=0))

    assert await stream_types(redis, task_stream_key(task)) == ["step_started", "failed"]
    assert await stream_types(redis, user_stream_key(user)) == ["step_started", "failed"]
    terminal_id = (await stream_ids(redis, task_stream_key(task)))[-1]
    assert await streams.terminal_entry_id(task) == terminal_id


async def test_the_user_stream_holds_every_task_of_its_user_only(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    user, someone_else = ids.user(), ids.user()
    first, second, theirs = ids.task(), ids.task(), ids.task()
    await publish(projector, started(first, user))
    await publish(projector, started(second, user))
    await publish(projector, started(theirs, someone_else))
    await publish(projector, progressed(first, user, 50))
    await publish(projector, task_failed(second, user))

    entries = await redis.xrange(user_stream_key(user))
    seen = [(json.loads(f[b"event"])["type"], json.loads(f[b"event"])["data"]["taskId"]) for _, f in entries]
    assert seen == [
        ("step_started", first),
        ("step_started", second),
        ("progress", first),
        ("failed", second),
    ]
    assert await stream_types(redis, user_stream_key(someone_else)) == ["step_started"]


async def test_the_same_step_of_two_tasks_reaches_the_user_stream_twice(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    user = ids.user()
    first, second = ids.task(), ids.task()
    for task in (first, second):
        await publish(projector, started(task, user))
        await publish(projector, step_completed(task, user, "asset-" + task[:4]))
    seen = await stream_types(redis, user_stream_key(user))
    assert seen == ["step_started", "step_completed", "step_started", "step_completed"]


async def test_completed_before_any_step_event_tells_the_whole_story_once(
    redis: Redis, projector: InMemoryConsumer, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, task_completed(task, user, "asset-1"))
    await publish(projector, started(task, user))
    await publish(projector, step_completed(task, user, "asset-1"))
    assert await stream_types(redis, task_stream_key(task)) == ["step_started", "step_completed", "completed"]


async def test_streams_are_capped_and_expire_with_their_companions(
    redis: Redis, reads: Redis, ids: Ids
) -> None:
    streams = TaskStreams(redis, reads, task_maxlen=10, user_maxlen=20, retention_seconds=3600)
    task, user = ids.task(), ids.user()
    async with projecting(streams) as projector:
        for percent in range(300):
            await publish(projector, progressed(task, user, percent % 101))
        await publish(projector, task_failed(task, user))

    task_key, user_key = task_stream_key(task), user_stream_key(user)
    # MAXLEN ~ trims whole macro nodes (100 entries by default): close to the cap, never far past it.
    assert await redis.xlen(task_key) <= 10 + 100
    assert await redis.xlen(user_key) <= 20 + 100
    assert await redis.zcard(f"sse:{{task:{task}}}:seen") == 20
    assert await redis.zcard(f"sse:{{user:{user}}}:seen") == 40
    for key in (task_key, f"sse:{{task:{task}}}:seen", f"sse:{{task:{task}}}:terminal", user_key):
        assert 3500 < await redis.ttl(key) <= 3600, key


# --- waiting readers woken by the appends' announcements ---------------------------------------------


@pytest.fixture
async def wakeups(redis: Redis) -> AsyncIterator[StreamWakeups]:
    hub = StreamWakeups(redis, ping_interval=0.05)
    running = asyncio.create_task(hub.run())

    async def listening() -> bool:
        return hub.listening

    await wait_until(listening, timeout=10, what="the wakeups to listen")
    yield hub
    hub.stop()
    await asyncio.wait_for(running, timeout=10)


async def test_many_waiting_readers_hold_no_connection_and_each_wakes_on_its_own_append(
    redis: Redis, redis_url: str, ids: Ids, wakeups: StreamWakeups
) -> None:
    # Two connections for 50 readers: blocking XREADs would queue behind each other for a heartbeat each.
    reads = create_stream_read_client(redis_url, max_connections=2, block_seconds=30)
    streams = TaskStreams(redis, reads, wakeups=wakeups)
    user = ids.user()
    tasks = [ids.task() for _ in range(50)]
    try:
        readers = [
            asyncio.create_task(streams.read(task_stream_key(task), None, block_seconds=30)) for task in tasks
        ]

        async def all_waiting() -> bool:
            return sum(len(w) for w in wakeups._waiters.values()) == len(tasks)

        await wait_until(all_waiting, timeout=10, what="every reader to wait")
        async with projecting(streams) as projector:
            for task in tasks:
                await publish(projector, started(task, user))
            read = await asyncio.wait_for(asyncio.gather(*readers), timeout=10)
    finally:
        await reads.aclose()

    assert [[entry.type for entry in entries] for entries in read] == [["step_started"]] * len(tasks)
    assert wakeups._waiters == {}


async def test_a_reader_that_has_read_everything_waits_without_asking_redis_until_its_key_is_announced(
    redis: Redis, redis_url: str, ids: Ids, wakeups: StreamWakeups
) -> None:
    reads = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    streams = TaskStreams(redis, reads, wakeups=wakeups)
    task, user = ids.task(), ids.user()
    key = task_stream_key(task)
    before = wakeups.mark(key)
    try:
        async with projecting(streams) as projector:
            await publish(projector, started(task, user))

            async def announced() -> bool:
                return wakeups.mark(key) != before

            await wait_until(announced, timeout=10, what="the append's announcement")
            (first,) = await streams.read(key, None, block_seconds=5)
            RoundTripConnection.sends = 0
            waiting = asyncio.create_task(streams.read(key, first.id, block_seconds=10))

            async def waiting_in_memory() -> bool:
                return key in wakeups._waiters

            await wait_until(waiting_in_memory, timeout=10, what="the reader to wait")
            asked_while_waiting = RoundTripConnection.sends
            await publish(projector, progressed(task, user, 40))
            (second,) = await asyncio.wait_for(waiting, timeout=10)
    finally:
        await reads.aclose()

    assert asked_while_waiting == 0
    assert (first.type, second.type) == ("step_started", "progress")


async def test_a_reader_that_found_nothing_waits_again_without_asking_redis_until_its_key_is_announced(
    redis: Redis, redis_url: str, ids: Ids, wakeups: StreamWakeups
) -> None:
    # A quiet stream comes back after every heartbeat: ten thousand of them must not each ask Redis again.
    reads = Redis.from_url(redis_url, connection_class=RoundTripConnection)
    streams = TaskStreams(redis, reads, wakeups=wakeups)
    key = task_stream_key(ids.task())
    try:
        assert await streams.read(key, None, block_seconds=0.05) == []
        RoundTripConnection.sends = 0
        again = await streams.read(key, None, block_seconds=0.05)
        asked_again = RoundTripConnection.sends
    finally:
        await reads.aclose()

    assert again == []
    assert asked_again == 0


async def test_an_interrupted_reader_returns_nothing_at_once_and_stops_waiting(
    redis: Redis, reads: Redis, ids: Ids, wakeups: StreamWakeups
) -> None:
    streams = TaskStreams(redis, reads, wakeups=wakeups)
    key = task_stream_key(ids.task())
    interrupt = ReadInterrupt()
    reader = asyncio.create_task(streams.read(key, None, block_seconds=30, interrupt=interrupt))

    async def waiting_in_memory() -> bool:
        return key in wakeups._waiters

    await wait_until(waiting_in_memory, timeout=10, what="the reader to wait")
    interrupt.interrupt()

    assert await asyncio.wait_for(reader, timeout=5) == []
    assert key not in wakeups._waiters


async def test_an_interrupt_while_the_reader_is_not_waiting_ends_its_next_wait_at_once(
    redis: Redis, reads: Redis, ids: Ids, wakeups: StreamWakeups
) -> None:
    # Given while the reader reads Redis or between two reads (here: before this one began): not lost
    # until the read's own 30 s timeout — the read returns nothing at once, as when interrupted waiting.
    streams = TaskStreams(redis, reads, wakeups=wakeups)
    key = task_stream_key(ids.task())
    interrupt = ReadInterrupt()
    interrupt.interrupt()

    assert (
        await asyncio.wait_for(streams.read(key, None, block_seconds=30, interrupt=interrupt), timeout=5)
        == []
    )
    assert key not in wakeups._waiters
    # Taken by that read: the next one waits as usual (and gets nothing when nothing comes in time).
    assert interrupt._pending is False


async def test_a_waiting_reader_gets_nothing_when_nothing_is_appended_in_time(
    redis: Redis, reads: Redis, ids: Ids, wakeups: StreamWakeups
) -> None:
    streams = TaskStreams(redis, reads, wakeups=wakeups)

    assert await streams.read(task_stream_key(ids.task()), None, block_seconds=0.2) == []


async def test_without_a_current_subscription_reads_block_on_redis_as_before(
    redis: Redis, reads: Redis, ids: Ids
) -> None:
    silent = StreamWakeups(redis)  # never run: it cannot prove it is current
    streams = TaskStreams(redis, reads, wakeups=silent)
    task, user = ids.task(), ids.user()
    reader = asyncio.create_task(streams.read(task_stream_key(task), None, block_seconds=10))
    async with projecting(streams) as projector:
        await publish(projector, started(task, user))

    entries = await asyncio.wait_for(reader, timeout=10)

    assert [entry.type for entry in entries] == ["step_started"]
    assert silent._waiters == {}


async def test_reads_go_on_after_a_redis_restart(tmp_path: Path) -> None:
    """A restarted Redis leaves every pooled connection of the read client dead: the next reads are sent
    again on fresh connections instead of ending each open stream (StreamUnavailable)."""
    server = OwnRedisServer(tmp_path)
    await server.start()
    writes = await create_redis(server.url)
    reads = create_stream_read_client(server.url, max_connections=4, block_seconds=1)
    streams = TaskStreams(writes, reads)
    task, user = str(uuid.uuid4()), str(uuid.uuid4())
    key = task_stream_key(task)
    try:
        # Four blocking reads at once: four pooled connections, all of which die with the server.
        readers = [streams.read(key, None, block_seconds=0.05) for _ in range(4)]
        assert await asyncio.gather(*readers) == [[]] * 4
        server.kill()
        await server.start()

        readers = [streams.read(key, None, block_seconds=0.05) for _ in range(4)]
        assert await asyncio.gather(*readers) == [[]] * 4
        async with projecting(streams) as projector:
            await publish(projector, started(task, user))
        assert [entry.type for entry in await streams.read(key, None, block_seconds=1)] == ["step_started"]
    finally:
        await reads.aclose()
        await writes.aclose()
        server.stop()


# --- the HTTP endpoints --------------------------------------------------------------------------


Frame = list[str]


class SseReader:
    """A minimal SSE parser over a live response: frames are the lines up to a blank line."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def frame(self, timeout: float = 5.0) -> Frame | None:
        """The next frame's lines (without line ends), or None at the end of the stream."""
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            while True:
                raw = await self._response.content.readline()
                if not raw:
                    assert not lines, f"stream ended inside a frame: {lines}"
                    return None
                line = raw.decode().removesuffix("\n")
                if line == "":
                    return lines
                lines.append(line)

    async def frames_until_end(self, timeout: float = 5.0) -> list[Frame]:
        frames = []
        while (frame := await self.frame(timeout)) is not None:
            frames.append(frame)
        return frames


def data_of(frame: Frame) -> dict:
    (data,) = [line for line in frame if line.startswith("data: ")]
    return json.loads(data.removeprefix("data: "))


@dataclass
class Gateway:
    routes: SseRoutes
    session: aiohttp.ClientSession
    owned: dict[str, str]  # task id → owner user id

    @asynccontextmanager
    async def get(
        self, path: str, user: str | None, headers: dict[str, str] | None = None, role: str = "user"
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        sent = dict(headers or {})
        if user is not None:
            sent |= {"X-Test-User": user, "X-Test-Role": role}
        async with self.session.get(path, headers=sent) as response:
            yield response


@web.middleware
async def fake_auth(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Stands in for the auth middleware: `X-Test-User: <id>` signs the request in."""
    user = request.headers.get("X-Test-User")
    if user:
        request[PRINCIPAL_KEY] = Principal(
            user_id=user,
            session_id="s",
            role=request.headers.get("X-Test-Role", "user"),  # type: ignore[arg-type]
            email="",
            name="",
            email_verified=True,
            issued_at=0,
            expires_at=float(request.headers.get("X-Test-Expires", "inf")),
            token=f"token-of-{user}",
        )
    return await handler(request)


@pytest.fixture
def serve(streams: TaskStreams) -> Callable[..., AbstractAsyncContextManager[Gateway]]:
    @asynccontextmanager
    async def start(
        *,
        heartbeat_seconds: float = 30.0,
        disconnect_poll_seconds: float = 0.05,
        session_check: SessionCheck | None = None,
        session_check_seconds: float = 5.0,
        served: TaskStreams | None = None,
    ) -> AsyncIterator[Gateway]:
        owned: dict[str, str] = {}

        async def may_listen(request: web.Request, task_id: str) -> bool:
            principal = request[PRINCIPAL_KEY]
            return owned.get(task_id) == principal.user_id or principal.has_role("admin")

        routes = SseRoutes(
            served or streams,
            may_listen,
            heartbeat_seconds=heartbeat_seconds,
            disconnect_poll_seconds=disconnect_poll_seconds,
            session_check=session_check,
            session_check_seconds=session_check_seconds,
        )
        app = web.Application(
            middlewares=[
                problem_middleware(Metrics("gateway-test")),
                security_headers_middleware(hsts=False),
                cors_middleware([ORIGIN]),
                fake_auth,
            ]
        )
        app.add_routes([op.route() for op in routes.operations()])
        # As in production (funmagic_kit.runtime): no handler cancellation when a client disconnects.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
                yield Gateway(routes, session, owned)
        finally:
            await runner.cleanup()

    return start


async def test_a_finished_task_replays_its_whole_story_and_the_stream_ends(
    redis: Redis, projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, started(task, user))
    await publish(projector, progressed(task, user, 50))
    await publish(projector, task_completed(task, user, "asset-1"))
    entry_ids = await stream_ids(redis, task_stream_key(task))

    async with serve() as gateway:
        gateway.owned[task] = user
        async with gateway.get(f"/api/tasks/{task}/stream", user, {"Origin": ORIGIN}) as response:
            assert response.status == 200
            frames = await SseReader(response).frames_until_end()

    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    # Every middleware decorated the stream, as any other answer.
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Request-Id"]
    asset = {"assetId": "asset-1", "role": "image", "url": "/api/assets/asset-1"}
    assert frames == [
        ["retry: 3000"],
        ["event: connected", f'data: {{"taskId":"{task}"}}'],
        [
            f"id: {entry_ids[0]}",
            "event: step_started",
            f'data: {{"taskId":"{task}","stepId":"image-gen","stepName":"image-gen","attempt":1}}',
        ],
        [
            f"id: {entry_ids[1]}",
            "event: progress",
            f'data: {{"taskId":"{task}","stepId":"image-gen","progress":50,"message":"50%"}}',
        ],
        [
            f"id: {entry_ids[2]}",
            "event: step_completed",
            "data: "
            + json.dumps(
                {"taskId": task, "stepId": "image-gen", "output": {"assets": [asset], "metadata": {}}},
                separators=(",", ":"),
            ),
        ],
        [
            f"id: {entry_ids[3]}",
            "event: completed",
            "data: "
            + json.dumps(
                {"taskId": task, "output": {"assets": [asset]}, "chargedCredits": 10}, separators=(",", ":")
            ),
        ],
    ]


async def test_a_connected_client_receives_events_as_they_happen(
    projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    async with serve() as gateway:
        gateway.owned[task] = user
        async with gateway.get(f"/api/tasks/{task}/stream", user) as response:
            reader = SseReader(response)
            assert await reader.frame() == ["retry: 3000"]
            assert (await reader.frame())[0] == "event: connected"  # type: ignore[index]

            await publish(projector, started(task, user))
            frame = await reader.frame()
            assert frame is not None
            assert frame[1:] == [
                "event: step_started",
                f'data: {{"taskId":"{task}","stepId":"image-gen","stepName":"image-gen","attempt":1}}',
            ]

            retry_at = datetime.now(UTC) + timedelta(seconds=30)
            delay = StepDelayed(
                task_id=task,
                user_id=user,
                step_id="image-gen",
                attempt=1,
                reason="provider_429",
                retry_at=retry_at,
            )
            await publish(projector, delay)
            delayed = await reader.frame()
            assert delayed is not None
            assert delayed[1] == "event: delayed"
            assert data_of(delayed)["reason"] == "provider_429"

            await publish(projector, task_failed(task, user))
            failed = await reader.frame()
            assert failed is not None
            assert failed[1:] == [
                "event: failed",
                f'data: {{"taskId":"{task}","error":"It broke","code":"provider_error","chargedCredits":0}}',
            ]
            assert await reader.frame() is None  # the stream ended after the terminal event


async def test_last_event_id_resumes_after_exactly_that_entry(
    redis: Redis, projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    for percent in (10, 20, 30):
        await publish(projector, progressed(task, user, percent))
    await publish(projector, task_failed(task, user))
    entry_ids = await stream_ids(redis, task_stream_key(task))

    async with serve() as gateway:
        gateway.owned[task] = user
        path = f"/api/tasks/{task}/stream"
        async with gateway.get(path, user, {"Last-Event-ID": entry_ids[1]}) as response:
            frames = await SseReader(response).frames_until_end()
        # A polyfill's query parameter does the same.
        async with gateway.get(f"{path}?lastEventId={entry_ids[2]}&_=123", user) as response:
            from_query = await SseReader(response).frames_until_end()

    assert [f[0] for f in frames[2:]] == [f"id: {entry_ids[2]}", f"id: {entry_ids[3]}"]
    assert data_of(frames[2])["progress"] == 30
    assert [f[0] for f in from_query[2:]] == [f"id: {entry_ids[3]}"]


async def test_reconnecting_after_the_end_is_told_to_stop(
    redis: Redis, projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    await publish(projector, task_failed(task, user))
    (terminal_id,) = await stream_ids(redis, task_stream_key(task))

    async with serve() as gateway:
        gateway.owned[task] = user
        async with gateway.get(f"/api/tasks/{task}/stream", user, {"Last-Event-ID": terminal_id}) as response:
            # 204 is what makes EventSource stop reconnecting.
            assert response.status == 204


async def test_a_quiet_stream_gets_heartbeats(projector: InMemoryConsumer, serve: Callable, ids: Ids) -> None:
    task, user = ids.task(), ids.user()
    async with serve(heartbeat_seconds=0.2) as gateway:
        gateway.owned[task] = user
        async with gateway.get(f"/api/tasks/{task}/stream", user) as response:
            reader = SseReader(response)
            assert await reader.frame() == ["retry: 3000"]
            assert (await reader.frame())[0] == "event: connected"  # type: ignore[index]
            assert await reader.frame(timeout=2) == [": heartbeat"]
            assert await reader.frame(timeout=2) == [": heartbeat"]
            await publish(projector, progressed(task, user, 5))
            frame = await reader.frame(timeout=2)
            while frame == [": heartbeat"]:
                frame = await reader.frame(timeout=2)
            assert frame is not None
            assert frame[1] == "event: progress"


async def test_a_client_that_leaves_ends_the_server_loop_at_once(
    serve: Callable, ids: Ids, wait_for: Callable
) -> None:
    user = ids.user()
    # Heartbeats far apart: only the disconnect check can notice the client left within the wait.
    async with serve(heartbeat_seconds=60) as gateway:
        response = await gateway.session.get("/api/stream", headers={"X-Test-User": user})
        reader = SseReader(response)
        assert await reader.frame() == ["retry: 3000"]
        assert await reader.frame() == ["event: connected", f'data: {{"userId":"{user}"}}']
        assert gateway.routes.open_streams == 1

        response.close()

        async def loop_ended() -> bool:
            return gateway.routes.open_streams == 0

        await wait_for(loop_ended, timeout=5, what="the server's stream loop to end")


async def test_the_user_stream_multiplexes_every_task_and_does_not_end(
    redis: Redis, projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    user = ids.user()
    first, second = ids.task(), ids.task()
    await publish(projector, started(first, user))
    await publish(projector, started(second, user))
    await publish(projector, task_completed(first, user, "asset-1"))
    entry_ids = await stream_ids(redis, user_stream_key(user))

    async with serve(heartbeat_seconds=0.2) as gateway:
        async with gateway.get("/api/stream", user) as response:
            reader = SseReader(response)
            assert await reader.frame() == ["retry: 3000"]
            assert await reader.frame() == ["event: connected", f'data: {{"userId":"{user}"}}']
            replayed = [await reader.frame() for _ in entry_ids]
            # `completed` of one task does not end the user's stream: it goes on with heartbeats.
            assert await reader.frame(timeout=2) == [": heartbeat"]
            await publish(projector, progressed(second, user, 70))
            live = await reader.frame(timeout=2)
            while live == [": heartbeat"]:
                live = await reader.frame(timeout=2)

        async with gateway.get("/api/stream", user, {"Last-Event-ID": entry_ids[1]}) as response:
            reader = SseReader(response)
            resumed = [await reader.frame() for _ in range(4)]

    assert [(f[0], f[1], data_of(f)["taskId"]) for f in replayed] == [  # type: ignore[index]
        (f"id: {entry_ids[0]}", "event: step_started", first),
        (f"id: {entry_ids[1]}", "event: step_started", second),
        (f"id: {entry_ids[2]}", "event: step_completed", first),
        (f"id: {entry_ids[3]}", "event: completed", first),
    ]
    assert live is not None
    assert (live[1], data_of(live)["taskId"]) == ("event: progress", second)
    assert [f[1] for f in resumed[2:]] == ["event: step_completed", "event: completed"]  # type: ignore[index]


async def test_someone_elses_task_is_not_found(
    projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, owner, stranger, admin = ids.task(), ids.user(), ids.user(), ids.user()
    await publish(projector, task_failed(task, owner))

    async with serve() as gateway:
        gateway.owned[task] = owner
        async with gateway.get(f"/api/tasks/{task}/stream", stranger) as response:
            assert response.status == 404
            assert response.headers["Content-Type"].startswith("application/problem+json")
            body = await response.json(content_type=None)
        async with gateway.get(f"/api/tasks/{uuid.uuid4()}/stream", stranger) as missing:
            assert missing.status == 404
            assert await missing.json(content_type=None) == body
        async with gateway.get("/api/tasks/not-a-uuid/stream", stranger) as malformed:
            assert malformed.status == 404
        async with gateway.get(f"/api/tasks/{task}/stream", admin, role="admin") as response:
            assert response.status == 200
            frames = await SseReader(response).frames_until_end()

    assert body["title"] == "Not Found"
    assert task not in json.dumps(body)
    assert frames[-1][1] == "event: failed"


async def test_a_malformed_last_event_id_is_a_400_problem(serve: Callable, ids: Ids) -> None:
    task, user = ids.task(), ids.user()
    async with serve() as gateway:
        gateway.owned[task] = user
        async with gateway.get(f"/api/tasks/{task}/stream", user, {"Last-Event-ID": "abc"}) as response:
            assert response.status == 400
            assert response.headers["Content-Type"].startswith("application/problem+json")
        async with gateway.get("/api/stream?lastEventId=1-2-3", user) as response:
            # The query parameter is checked by its schema (a pattern): 422 with its field.
            assert response.status == 422
        assert gateway.routes.open_streams == 0


async def test_streams_need_a_signed_in_user(serve: Callable, ids: Ids) -> None:
    async with serve() as gateway:
        for path in (f"/api/tasks/{ids.task()}/stream", "/api/stream"):
            async with gateway.get(path, None) as response:
                assert response.status == 401


async def test_closing_ends_every_open_stream_for_a_quick_shutdown(
    projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    async with serve(heartbeat_seconds=60) as gateway:
        gateway.owned[task] = user
        async with (
            gateway.get("/api/stream", user) as mine,
            gateway.get(f"/api/tasks/{task}/stream", user) as one_task,
        ):
            readers = [SseReader(mine), SseReader(one_task)]
            for reader in readers:
                assert await reader.frame() == ["retry: 3000"]
                assert (await reader.frame())[0] == "event: connected"  # type: ignore[index]

            gateway.routes.close()

            for reader in readers:
                assert await reader.frame(timeout=5) is None
        assert gateway.routes.open_streams == 0


async def test_a_stream_ends_when_its_callers_session_is_signed_out(
    projector: InMemoryConsumer, serve: Callable, ids: Ids
) -> None:
    task, user = ids.task(), ids.user()
    signed_out: set[str] = set()
    asked: list[str] = []

    async def session_check(principal: Principal) -> str | None:
        asked.append(principal.token)
        return "session has been signed out or revoked" if principal.user_id in signed_out else None

    # Heartbeats far apart: only the session check can end the stream within the wait.
    async with serve(heartbeat_seconds=60, session_check=session_check, session_check_seconds=0.1) as gateway:
        gateway.owned[task] = user
        async with (
            gateway.get("/api/stream", user) as mine,
            gateway.get(f"/api/tasks/{task}/stream", user) as one_task,
        ):
            readers = [SseReader(mine), SseReader(one_task)]
            for reader in readers:
                assert await reader.frame() == ["retry: 3000"]
                assert (await reader.frame())[0] == "event: connected"  # type: ignore[index]
            await publish(projector, progressed(task, user, 5))
            assert [(await reader.frame())[1] for reader in readers] == ["event: progress"] * 2  # type: ignore[index]

            signed_out.add(user)

            ends = [await reader.frames_until_end() for reader in readers]
        assert gateway.routes.open_streams == 0

    # A last frame without an id (it never moves the resume point), then the end.
    assert (
        ends == [[["event: session_ended", 'data: {"reason":"session has been signed out or revoked"}']]] * 2
    )
    assert set(asked) == {f"token-of-{user}"}


class CountingStreams(TaskStreams):
    """The real streams, counting the reads the SSE routes start."""

    reads_started = 0

    async def read(self, *args: Any, **kwargs: Any) -> list[StoredEntry]:
        self.reads_started += 1
        return await super().read(*args, **kwargs)


async def test_a_session_check_that_finds_the_session_holding_leaves_the_streams_read_waiting(
    redis: Redis, reads: Redis, serve: Callable, ids: Ids
) -> None:
    counting = CountingStreams(redis, reads)
    asked: list[str] = []

    async def session_check(principal: Principal) -> str | None:
        asked.append(principal.token)
        return None

    async with (
        serve(
            heartbeat_seconds=60, session_check=session_check, session_check_seconds=0.05, served=counting
        ) as gateway,
        gateway.get("/api/stream", ids.user()) as response,
    ):
        reader = SseReader(response)
        assert await reader.frame() == ["retry: 3000"]
        assert (await reader.frame())[0] == "event: connected"  # type: ignore[index]

        async def checked_five_times() -> bool:
            return len(asked) >= 5

        await wait_until(checked_five_times, timeout=10, what="five session checks")

        assert counting.reads_started == 1


async def test_a_stream_ends_when_its_token_expires_without_asking_anyone(serve: Callable, ids: Ids) -> None:
    user = ids.user()
    asked: list[str] = []

    async def session_check(principal: Principal) -> str | None:
        asked.append(principal.token)
        return None

    expires = datetime.now(UTC).timestamp() + 0.5
    async with (
        serve(heartbeat_seconds=60, session_check=session_check, session_check_seconds=60) as gateway,
        gateway.get("/api/stream", user, {"X-Test-Expires": str(expires)}) as response,
    ):
        reader = SseReader(response)
        assert await reader.frame() == ["retry: 3000"]
        assert (await reader.frame())[0] == "event: connected"  # type: ignore[index]
        ended = await reader.frames_until_end(timeout=5)

    assert ended == [["event: session_ended", 'data: {"reason":"token has expired"}']]
    assert datetime.now(UTC).timestamp() >= expires
    assert asked == []  # expiry is known locally; the revocation check was not due
