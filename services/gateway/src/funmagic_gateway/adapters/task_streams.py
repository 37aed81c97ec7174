"""Task progress in Redis streams: the projector's idempotent appends and the SSE endpoints' reads.

Keys (the braces are Redis Cluster hash tags, so every script touches one slot):

    sse:{task:<task_id>}:events    stream, one entry per SSE event (field `event`: {"type", "data"} JSON)
    sse:{task:<task_id>}:seen      sorted set of the logical keys appended (score: entry time in ms)
    sse:{task:<task_id>}:terminal  the id of the task's terminal entry, once there is one
    sse:{user:<user_id>}:events / :seen   the same, for every task of one user

Kafka delivers at least once and the gateway has no inbox, so each append is one Lua script that checks the
logical key and appends atomically. A task's stream is frozen after its terminal entry; the user's stream
receives exactly what the task's stream accepted (checked first, since the two keys live in different
slots). Streams are capped (XADD MAXLEN ~) and expire `retention_seconds` after their last entry — for a
task stream that is its terminal entry — together with their seen set and marker.

Each append also announces the stream's key on the `sse:appended` channel (in the same script), and
`StreamWakeups` (one subscription per gateway process) wakes the readers waiting on that key. A waiting
reader therefore holds no Redis connection: it reads without blocking, then waits in memory until its key is
announced or the heartbeat is due, so thousands of open streams cost thousands of small coroutines, not
thousands of connections. When the subscription cannot prove it is current (Redis slow or down, a
reconnect), reads fall back to a blocking XREAD on their own client (`create_stream_read_client`), which
holds a connection for up to a heartbeat interval and must not starve the gateway's other Redis use.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import NoScriptError, RedisError

from funmagic_gateway.domain.sse import Projection, SseEntry
from funmagic_kit.announcements import Announcements
from funmagic_kit.errors import TransientError
from funmagic_kit.redis import PlatformRedis

__all__ = [
    "AppendResult",
    "Outcome",
    "ReadInterrupt",
    "StoredEntry",
    "StreamUnavailable",
    "StreamWakeups",
    "TaskStreams",
    "create_stream_read_client",
    "stream_messages",
    "task_stream_key",
    "user_stream_key",
]

log = logging.getLogger(__name__)

TASK_STREAM_MAXLEN = 1000
USER_STREAM_MAXLEN = 10_000
RETENTION_SECONDS = 7 * 24 * 3600
START = "0-0"
APPENDED_CHANNEL = "sse:appended"  # also named in _APPEND_LUA
_ANNOUNCED_KEPT = 100_000

# KEYS[1] stream, KEYS[2] seen set, KEYS[3] (task streams only) terminal marker.
# ARGV[1] MAXLEN, ARGV[2] TTL in s, ARGV[3] how many logical keys to remember, then per entry:
# logical key, entry JSON, "1" if terminal. Returns per entry its new id, "duplicate" or "dropped".
# The seen set is trimmed to its newest keys (redeliveries come soon after the original; an unbounded
# set would grow with a busy user's every progress event for as long as the stream lives).
_APPEND_LUA = """
local stream, seen, marker = KEYS[1], KEYS[2], KEYS[3]
local maxlen, ttl, remember = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local results = {}
local appended = false
for i = 4, #ARGV, 3 do
  local key = ARGV[i]
  if redis.call('ZSCORE', seen, key) then
    results[#results + 1] = 'duplicate'
  elseif marker and redis.call('EXISTS', marker) == 1 then
    results[#results + 1] = 'dropped'
  else
    local id = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', ARGV[i + 1])
    redis.call('ZADD', seen, tonumber(string.match(id, '^(%d+)')), key)
    if marker and ARGV[i + 2] == '1' then
      redis.call('SET', marker, id)
    end
    appended = true
    results[#results + 1] = id
  end
end
if appended then
  redis.call('PUBLISH', 'sse:appended', stream)
  redis.call('ZREMRANGEBYRANK', seen, 0, -(remember + 1))
  redis.call('EXPIRE', stream, ttl)
  redis.call('EXPIRE', seen, ttl)
  if marker then
    redis.call('EXPIRE', marker, ttl)
  end
end
return results
"""


def task_stream_key(task_id: str) -> str:
    return f"sse:{{task:{task_id}}}:events"


def user_stream_key(user_id: str) -> str:
    return f"sse:{{user:{user_id}}}:events"


def _companion_key(stream_key: str, suffix: str) -> str:
    return stream_key.removesuffix(":events") + f":{suffix}"


class StreamUnavailable(TransientError):
    """Redis did not answer a stream append or read."""


class Outcome(StrEnum):
    APPENDED = "appended"
    DUPLICATE = "duplicate"  # this logical event is already in the stream
    DROPPED = "dropped"  # the task's stream already ended (a terminal entry came first)


@dataclass(frozen=True)
class AppendResult:
    """What happened to each entry of a projection, in order, on the task's and on the user's stream."""

    task: tuple[Outcome, ...]
    user: tuple[Outcome, ...]


@dataclass(frozen=True)
class StoredEntry:
    id: str
    type: str
    data: dict[str, Any]


def create_stream_read_client(
    url: str, *, max_connections: int, block_seconds: float, wait_for_connection_seconds: float = 5.0
) -> Redis:
    """A client for blocking stream reads: a pool that waits for a free connection rather than failing
    (redis-py's default asyncio pool raises "Too many connections"), a socket timeout longer than the
    longest XREAD BLOCK, and the kit's retry of a read on a fresh connection after a Redis restart (one
    dead pooled connection would otherwise end an open stream)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=wait_for_connection_seconds,
        socket_timeout=block_seconds + 10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return PlatformRedis.from_pool(pool)


class ReadInterrupt:
    """Lets another task end a `TaskStreams.read` early while it waits in memory: the read then returns
    nothing, and its caller looks at what it must (a client gone, a session to check) and reads again.

    One per reader for as long as it reads: a waiting read holds a future and a timer, not a task of its own,
    which is what keeps thousands of open streams cheap (and their garbage small, see `funmagic_kit.gc`).
    """

    __slots__ = ("_pending", "_wake")

    def __init__(self) -> None:
        self._wake: asyncio.Future[str] | None = None
        self._pending = False

    def interrupt(self) -> None:
        if self._wake is None:
            # Not waiting now (reading Redis, or between two reads): the read's next wait ends at once,
            # rather than this interrupt being lost until the read's own timeout.
            self._pending = True
        else:
            _wake(self._wake, _INTERRUPTED)

    def _waiting_on(self, wake: asyncio.Future[str]) -> bool:
        """Whether the read may wait on `wake`: False (and the interrupt taken) when one is pending."""
        if self._pending:
            self._pending = False
            return False
        self._wake = wake
        return True


class StreamWakeups:
    """Wakes the readers waiting on a stream when an append to it is announced (see the module)."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_staleness: float = 2.0,
        ping_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_staleness = max_staleness
        self._waiters: dict[str, set[asyncio.Future[str]]] = {}
        # The number of the latest announcement per key (newest keys kept), to tell a reader that nothing
        # was announced for its key since it last read. A key forgotten here answers `_forgotten_upto`,
        # the latest number forgotten, which is never lower than its own was.
        self._announced: OrderedDict[str, int] = OrderedDict()
        self._count = 0
        self._forgotten_upto = 0
        self._gaps = 0
        self._announcements = Announcements(
            redis,
            APPENDED_CHANNEL,
            on_message=self._appended,
            on_gap=self._wake_all,
            ping_interval=ping_interval,
            # Always pinging (unlike the revocation view): a read that finds the channel not current falls
            # back to a blocking XREAD holding a pooled connection, and a burst of new streams after a
            # quiet spell would queue on that pool.
            idle_after=None,
            clock=clock,
        )

    @property
    def listening(self) -> bool:
        return self._announcements.current(self._max_staleness)

    def watch(self, stream_key: str, wake: asyncio.Future[str]) -> None:
        """Complete `wake` when `stream_key` is announced (or announcements may have been missed), until
        `unwatch`."""
        waiters = self._waiters.get(stream_key)
        if waiters is None:
            waiters = self._waiters[stream_key] = set()
        waiters.add(wake)

    def unwatch(self, stream_key: str, wake: asyncio.Future[str]) -> None:
        waiters = self._waiters.get(stream_key)
        if waiters is not None:
            waiters.discard(wake)
            if not waiters:
                del self._waiters[stream_key]

    def mark(self, stream_key: str) -> tuple[int, int]:
        """What has been announced for `stream_key` so far: equal marks mean nothing was in between."""
        return self._gaps, self._announced.get(stream_key, self._forgotten_upto)

    async def run(self) -> None:
        await self._announcements.run()

    def stop(self) -> None:
        self._announcements.stop()

    def _appended(self, stream_key: str) -> None:
        self._count += 1
        self._announced[stream_key] = self._count
        self._announced.move_to_end(stream_key)
        if len(self._announced) > _ANNOUNCED_KEPT:
            _, self._forgotten_upto = self._announced.popitem(last=False)
        for wake in self._waiters.get(stream_key, ()):
            _wake(wake, _ANNOUNCED)

    def _wake_all(self) -> None:
        self._gaps += 1
        # Appends may have gone unannounced: every reader reads again (and blocks on Redis if need be).
        for waiters in self._waiters.values():
            for wake in waiters:
                _wake(wake, _ANNOUNCED)


_ANNOUNCED, _TIMED_OUT, _INTERRUPTED = "announced", "timed out", "interrupted"
# A read that can be interrupted blocks on Redis (no current announcements) at most this long at a time.
_INTERRUPTIBLE_BLOCK_SECONDS = 1.0


def _wake(wake: asyncio.Future[str] | None, why: str) -> None:
    if wake is not None and not wake.done():
        wake.set_result(why)


class TaskStreams:
    def __init__(
        self,
        redis: Redis,
        reads: Redis,
        *,
        task_maxlen: int = TASK_STREAM_MAXLEN,
        user_maxlen: int = USER_STREAM_MAXLEN,
        retention_seconds: int = RETENTION_SECONDS,
        wakeups: StreamWakeups | None = None,
    ) -> None:
        self._redis = redis
        self._reads = reads
        self._wakeups = wakeups
        # (stream key, last entry id read) -> the wakeups' mark just before that read: a reader coming back
        # for what follows skips its first XREAD when nothing was announced since (newest kept).
        self._caught_up: OrderedDict[tuple[str, str], tuple[int, int]] = OrderedDict()
        self._task_maxlen = task_maxlen
        self._user_maxlen = user_maxlen
        self._retention_seconds = retention_seconds
        # Registered once: redis-py calls EVALSHA and loads the script only when Redis lacks it.
        self._append = redis.register_script(_APPEND_LUA)

    async def append(self, projection: Projection) -> AppendResult:
        """Append a projection's entries to the task's stream, then what it accepted to the user's.

        Idempotent: run again with the same projection (a redelivery), it appends nothing new — and after
        a failure between the two scripts, it completes the user's stream.
        """
        (result,) = await self.append_all([projection])
        return result

    async def append_all(self, projections: Sequence[Projection]) -> list[AppendResult]:
        """`append` for several projections in order, in two round trips whatever their number: every task
        stream's script in one pipeline, then every user stream's (which needs the task streams' answers:
        an entry a task stream dropped is not added to its user's)."""
        task_scripts = []
        for projection in projections:
            task_key = task_stream_key(projection.task_id)
            task_scripts.append(
                self._script_call(
                    task_key,
                    projection.entries,
                    maxlen=self._task_maxlen,
                    terminal_marker=_companion_key(task_key, "terminal"),
                )
            )
        task_outcomes = await self._run_in_order(task_scripts)
        # "duplicate" on the task stream still goes on: the previous delivery may have stopped before the
        # user's stream (whose own seen set then says duplicate too).
        accepted = [
            [entry for entry, outcome in zip(p.entries, task, strict=True) if outcome != Outcome.DROPPED]
            for p, task in zip(projections, task_outcomes, strict=True)
        ]
        user_outcomes = await self._run_in_order(
            [
                self._script_call(user_stream_key(p.user_id), entries, maxlen=self._user_maxlen)
                for p, entries in zip(projections, accepted, strict=True)
            ]
        )
        results = []
        for task, user in zip(task_outcomes, user_outcomes, strict=True):
            user_left = iter(user)
            results.append(
                AppendResult(
                    task, tuple(Outcome.DROPPED if t == Outcome.DROPPED else next(user_left) for t in task)
                )
            )
        return results

    def _script_call(
        self, stream_key: str, entries: Sequence[SseEntry], *, maxlen: int, terminal_marker: str | None = None
    ) -> _ScriptCall | None:
        """The append script's keys and arguments for `entries` (None: nothing to append)."""
        if not entries:
            return None
        keys = [stream_key, _companion_key(stream_key, "seen")]
        if terminal_marker is not None:
            keys.append(terminal_marker)
        args: list[str | int] = [maxlen, self._retention_seconds, 2 * maxlen]
        for entry in entries:
            args += [entry.logical_key, entry.to_json(), "1" if entry.terminal else "0"]
        return _ScriptCall(keys, args)

    async def _run_in_order(self, calls: Sequence[_ScriptCall | None]) -> list[tuple[Outcome, ...]]:
        """Run the append script once per call, in order, in one round trip (EVALSHA by hand: redis-py's
        pipeline would ask SCRIPT EXISTS first). If Redis lacks the script (restarted, flushed), the calls
        from the first refused one on run again through the registered script, which loads it; the appends
        are idempotent, so one that had run answers `duplicate` the second time."""
        present = [call for call in calls if call is not None]
        replies: list[Any] = []
        if present:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for call in present:
                        pipe.evalsha(self._append.sha, len(call.keys), *call.keys, *call.args)
                    replies = await pipe.execute(raise_on_error=False)
                refused = next(
                    (i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)), None
                )
                if refused is not None:
                    for i in range(refused, len(present)):
                        replies[i] = await self._append(keys=present[i].keys, args=present[i].args)
            except (RedisError, OSError) as error:
                raise StreamUnavailable(f"cannot append to the task streams: {error}") from error
            failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
            if failed is not None:
                raise StreamUnavailable(f"cannot append to the task streams: {failed}") from failed
        answered = iter(replies)
        return [() if call is None else tuple(map(_outcome, next(answered))) for call in calls]

    async def terminal_entry_id(self, task_id: str) -> str | None:
        """The id of the task's terminal entry, or None while the task runs (or once it expired)."""
        marker = _companion_key(task_stream_key(task_id), "terminal")
        try:
            value = await self._redis.get(marker)
        except (RedisError, OSError) as error:
            raise StreamUnavailable(f"cannot read {marker}: {error}") from error
        return value.decode() if isinstance(value, bytes) else value

    async def read(
        self,
        stream_key: str,
        after: str | None,
        *,
        block_seconds: float,
        count: int = 100,
        interrupt: ReadInterrupt | None = None,
    ) -> list[StoredEntry]:
        """Entries after `after` (exclusive; None: from the start), waiting up to `block_seconds` for one.

        An empty list means nothing arrived in time, or `interrupt` was used.
        """
        wakeups = self._wakeups
        if wakeups is None or not wakeups.listening:
            return await self._blocking_xread(stream_key, after, count, block_seconds, interrupt)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_seconds
        position = (stream_key, after or START)
        # Nothing announced for the key since this position was last read up to: Redis has nothing new.
        quiet = self._caught_up.get(position) == wakeups.mark(stream_key)
        while True:
            wake: asyncio.Future[str] = loop.create_future()
            # Watching before reading: an append after the read is announced to this waiter, never lost.
            wakeups.watch(stream_key, wake)
            try:
                if not quiet:
                    mark = wakeups.mark(stream_key)
                    entries = await self._xread(stream_key, after, count=count, block_seconds=None)
                    self._remember_caught_up(stream_key, entries[-1].id if entries else after or START, mark)
                    if entries:
                        return entries
                quiet = False
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                if not wakeups.listening:
                    return await self._blocking_xread(stream_key, after, count, remaining, interrupt)
                if interrupt is not None and not interrupt._waiting_on(wake):
                    return []
                timer = loop.call_at(deadline, _wake, wake, _TIMED_OUT)
                try:
                    why = await wake
                finally:
                    timer.cancel()
                    if interrupt is not None:
                        interrupt._wake = None
                if why != _ANNOUNCED:
                    return []
            finally:
                wakeups.unwatch(stream_key, wake)

    def _remember_caught_up(self, stream_key: str, entry_id: str, mark: tuple[int, int]) -> None:
        self._caught_up[(stream_key, entry_id)] = mark
        self._caught_up.move_to_end((stream_key, entry_id))
        if len(self._caught_up) > _ANNOUNCED_KEPT:
            self._caught_up.popitem(last=False)

    async def _blocking_xread(
        self,
        stream_key: str,
        after: str | None,
        count: int,
        block_seconds: float,
        interrupt: ReadInterrupt | None,
    ) -> list[StoredEntry]:
        # A blocking XREAD cannot be interrupted: one that may be blocks briefly, then the caller looks.
        if interrupt is not None:
            block_seconds = min(block_seconds, _INTERRUPTIBLE_BLOCK_SECONDS)
        return await self._xread(stream_key, after, count=count, block_seconds=block_seconds)

    async def _xread(
        self, stream_key: str, after: str | None, *, count: int, block_seconds: float | None
    ) -> list[StoredEntry]:
        """XREAD, blocking up to `block_seconds` (None: not at all)."""
        block_ms = None if block_seconds is None else max(1, round(block_seconds * 1000))  # BLOCK 0: forever
        try:
            reply = await self._reads.xread({stream_key: after or START}, count=count, block=block_ms)
        except (RedisError, OSError) as error:
            raise StreamUnavailable(f"cannot read {stream_key}: {error}") from error
        return [entry for entry in map(_stored_entry, stream_messages(reply)) if entry is not None]


@dataclass(frozen=True)
class _ScriptCall:
    keys: list[str]
    args: list[str | int]


def _outcome(reply: bytes | str) -> Outcome:
    text = reply.decode() if isinstance(reply, bytes) else reply
    if text == "duplicate":
        return Outcome.DUPLICATE
    if text == "dropped":
        return Outcome.DROPPED
    return Outcome.APPENDED


def stream_messages(reply: Any) -> list[tuple[Any, dict[Any, Any]]]:
    # One stream was asked for: RESP2 answers [[key, messages]], RESP3 {key: [messages]}; None on timeout.
    if not reply:
        return []
    if isinstance(reply, dict):
        return [message for messages in reply.values() for message in messages]
    return [message for _key, messages in reply for message in messages]


def _stored_entry(message: tuple[Any, dict[Any, Any]]) -> StoredEntry | None:
    raw_id, fields = message
    entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
    raw = fields.get(b"event", fields.get("event"))
    try:
        value = json.loads(raw)
        return StoredEntry(entry_id, str(value["type"]), dict(value["data"]))
    except (TypeError, ValueError, KeyError):
        # Written by nothing of ours: skipped rather than ending every stream that replays it.
        log.warning("unreadable stream entry skipped", extra={"entry_id": entry_id})
        return None
