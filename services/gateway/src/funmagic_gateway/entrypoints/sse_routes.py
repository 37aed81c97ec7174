"""`GET /api/tasks/{task_id}/stream` and `GET /api/stream`: task progress as Server-Sent Events.

Every replica serves every client: the events are in Redis streams (see `adapters.task_streams`), written
by the projector in `entrypoints.kafka`. A client gets, in order:

    retry: 3000                                 (once)
    event: connected / data: {...}              (no id: it never moves the resume point)
    id: <stream entry id> / event: <type> / data: <json>    per event: history first, then live
    : heartbeat                                 (a comment, after each quiet `heartbeat_seconds`)

and resumes after `Last-Event-ID` (header, or `?lastEventId=` for polyfills). A task's stream ends after
its terminal event (`completed`, `failed`, `cancelled`); a reconnect past that point is answered 204, which
tells `EventSource` to stop reconnecting. `/api/stream` (all the caller's tasks on one connection: browsers
allow six per site) never ends by itself.

A stream lives no longer than its caller's session: when the access token expires, or the session is signed
out, revoked or its user disabled (checked every `session_check_seconds`), the stream sends
`event: session_ended` and ends. The client reconnects with a fresh token (after a refresh), or learns from
the 401 that it is signed out.

The response is an `EventStreamResponse`: like aiohttp's `FileResponse`, it writes its body when aiohttp
prepares it, after the handler returned through every middleware, so CORS, security, rate-limit and
request-id headers decorate it as they do every other answer (a response prepared inside the handler would
have sent its headers before any middleware saw them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ConfigDict, Field

from funmagic_contracts.api import Request
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.adapters.task_streams import (
    ReadInterrupt,
    StoredEntry,
    StreamUnavailable,
    TaskStreams,
    task_stream_key,
    user_stream_key,
)
from funmagic_gateway.domain.sse import (
    HEARTBEAT_FRAME,
    RETRY_FRAME,
    TERMINAL_TYPES,
    InvalidLastEventId,
    connected_frame,
    event_frame,
    parse_last_event_id,
    session_ended_frame,
)
from funmagic_gateway.entrypoints.forwarding import forward
from funmagic_kit.api import Operation, path_uuid, read_query, require_principal
from funmagic_kit.auth import TokenVerifier
from funmagic_kit.errors import TransientError
from funmagic_kit.http import HttpProblem
from funmagic_kit.logs import bind_correlation_id
from funmagic_kit.request_keys import InvalidToken, Principal

__all__ = [
    "EventStreamResponse",
    "MayListen",
    "SessionCheck",
    "SseRoutes",
    "StreamQuery",
    "task_owner_check",
    "token_session_check",
]

log = logging.getLogger(__name__)

_SWEEP_SLICE = 500  # streams the sweeper looks at before it lets other work run

MayListen = Callable[[web.Request, str], Awaitable[bool]]
"""Whether the request's user may follow the task (its owner, or an admin)."""

SessionCheck = Callable[[Principal], Awaitable[str | None]]
"""Why the caller's session has ended (signed out, revoked, user disabled, token expired), or None."""

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # nginx and similar proxies would otherwise buffer the stream.
    "X-Accel-Buffering": "no",
}

_WIRE_FORMAT = (
    "`text/event-stream`. First `retry: 3000`, then `event: connected` (no `id:`), then one frame per "
    "event, `id: <stream entry id>`, `event: <type>`, `data: <JSON, camelCase>`: the history first "
    "(after `Last-Event-ID` when given), then live; a `: heartbeat` comment whenever nothing happened "
    "for 15 s. Types: `step_started {taskId, stepId, stepName, attempt}`, `progress {taskId, stepId, "
    "progress, message}`, `delayed {taskId, stepId, reason, retryAt}`, `step_completed {taskId, stepId, "
    "output: {assets: [{assetId, role, url}], metadata}}`, `completed {taskId, output: {assets}, "
    "chargedCredits}`, `failed {taskId, error, code, chargedCredits}`, `cancelled {taskId, "
    "chargedCredits}`; for an admin's studio replies (routed by `messageId`): `reply_started {messageId, "
    "attempt}`, `reply_delayed {messageId, reason, retryAt}`, `reply_delta {messageId, run, text}` (a new "
    "`run`: the text starts over), `reply_partial_image {messageId, run, index, image}` (a JPEG `data:` "
    "URL), `reply_completed {messageId, chatId, content, images: [{assetId, role, url}], usage}`, "
    "`reply_failed {messageId, chatId, error, code}`, `reply_cancelled {messageId, chatId}`. Resume with "
    "the `Last-Event-ID` header (EventSource sends it by itself) or `?lastEventId=`. When the caller's "
    "session ends (token expired, signed out, disabled) the stream sends `session_ended {reason}` (no "
    "`id:`) and ends: reconnect with a fresh token."
)


class StreamQuery(Request):
    # Polyfills add parameters of their own (cache busters): ignored rather than refused.
    model_config = ConfigDict(extra="ignore")

    last_event_id: str | None = Field(
        None,
        alias="lastEventId",
        # A stream entry id (`<ms>-<seq>`, as `domain.sse.parse_last_event_id` reads it), or empty: none.
        max_length=41,
        pattern=r"^([0-9]{1,20}-[0-9]{1,20})?$",
        description="For clients that cannot set `Last-Event-ID`: resume after this entry id (the header "
        "wins when both are sent).",
    )


def task_owner_check(tasks: ServiceClient) -> MayListen:
    """Ask the tasks service, with the caller's token: it answers 200 to the owner and to admins only."""

    async def may_listen(request: web.Request, task_id: str) -> bool:
        reply = await forward(tasks, request, "GET", f"/v1/tasks/{task_id}")
        if reply.ok:
            return True
        if reply.status in (403, 404):
            return False
        reply.raise_for_problem()  # 401, 503…: the caller sees the service's problem
        return False

    return may_listen


def token_session_check(verifier: TokenVerifier) -> SessionCheck:
    """The session ends when the caller's token would no longer be accepted: the same verification as a new
    request's (expiry, and the revocation marks of sign-out, role change and disable)."""

    async def session_ended(principal: Principal) -> str | None:
        try:
            await verifier.verify(principal.token)
        except InvalidToken as error:
            return error.reason
        except TransientError:
            # No verdict: a Redis outage ends the stream by itself (its reads fail), and the reconnect is
            # verified afresh.
            return None
        return None

    return session_ended


class _SessionEnded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class _SessionWatch:
    """Ends a stream with its caller's session: expiry is seen locally at once; the rest (sign-out,
    disable) by asking `check` at most every `interval` seconds. The sweeper asks (`check_now`) while the
    stream's read goes on waiting, and interrupts the read only when the session ended: an answer that
    the session holds — nearly every answer — costs the stream nothing."""

    principal: Principal
    check: SessionCheck
    interval: float
    # Why the session ended, once a check said so.
    ended: str | None = field(init=False, default=None)
    _next_check: float = field(init=False)

    def __post_init__(self) -> None:
        self._next_check = time.monotonic() + self.interval

    def end_reason(self) -> str | None:
        """Why the stream must end now (a check found the session ended, or its token expired), or None."""
        if self.ended is not None:
            return self.ended
        if time.time() >= self.principal.expires_at:
            return "token has expired"
        return None

    def check_due(self) -> bool:
        return self.ended is None and time.monotonic() >= self._next_check

    async def check_now(self) -> bool:
        """Ask `check`; whether the session ended."""
        self._next_check = time.monotonic() + self.interval
        reason = await self.check(self.principal)
        if reason is not None:
            self.ended = reason
        return self.ended is not None

    def raise_if_ended(self) -> None:
        reason = self.end_reason()
        if reason is not None:
            raise _SessionEnded(reason)


@dataclass(eq=False)
class _Waiting:
    """An open stream, for the sweeper: `interrupt` ends its read while it waits, so that it looks up (its
    client left, the routes are closing, or its session is over)."""

    request: web.BaseRequest
    session: _SessionWatch | None
    interrupt: ReadInterrupt = field(default_factory=ReadInterrupt)


WriteEvents = Callable[["EventStreamResponse", web.BaseRequest], Awaitable[None]]


class EventStreamResponse(web.StreamResponse):
    """An SSE answer whose events are written when aiohttp prepares it (see the module's docstring)."""

    def __init__(self, write_events: WriteEvents) -> None:
        super().__init__(status=200, headers=SSE_HEADERS)
        self._write_events = write_events

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.prepared:
            return await super().prepare(request)
        writer = await super().prepare(request)
        await self._write_events(self, request)
        return writer


@dataclass(eq=False)
class SseRoutes:
    streams: TaskStreams
    may_listen: MayListen
    _: KW_ONLY
    heartbeat_seconds: float = 15.0
    disconnect_poll_seconds: float = 1.0
    # Whether the caller's session still holds, asked every `session_check_seconds` (None: never asked).
    session_check: SessionCheck | None = None
    session_check_seconds: float = 5.0
    # Streams being written now on this replica, and whether `close` asked them to end.
    _open: int = field(init=False, default=0)
    _closing: bool = field(init=False, default=False)
    # The waiting streams, and the one task that looks at all of them every `disconnect_poll_seconds`: a
    # timer per stream would wake 10,000 open streams 10,000 times a second.
    _waiting: set[_Waiting] = field(init=False, default_factory=set)
    _sweeper: asyncio.Task[None] | None = field(init=False, default=None)

    @property
    def open_streams(self) -> int:
        """Streams being written now on this replica."""
        return self._open

    def close(self) -> None:
        """End every open stream within `disconnect_poll_seconds` (clients resume on another replica).

        For a graceful shutdown: call it before the HTTP server waits for in-flight requests, or streams
        that never end by themselves (`/api/stream`) hold the shutdown for its whole grace period.
        """
        self._closing = True
        for waiting in self._waiting:
            waiting.interrupt.interrupt()

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/api/tasks/{task_id}/stream",
                self.stream_task_progress,
                "Follow one task's progress (Server-Sent Events)",
                "tasks",
                access="user",
                owner="caller_or_admin",
                query=StreamQuery,
                errors=(400, 404, 503),
                media_type="text/event-stream",
                description=f"The owner of the task, or an admin. {_WIRE_FORMAT} The stream ends after "
                "`completed`, `failed` or `cancelled`; a reconnect after that point gets 204.",
                extra_responses={204: "The task's stream already ended before `Last-Event-ID`."},
            ),
            Operation(
                "GET",
                "/api/stream",
                self.stream_my_tasks,
                "Follow all of my tasks on one connection (Server-Sent Events)",
                "tasks",
                access="user",
                query=StreamQuery,
                errors=(400, 503),
                media_type="text/event-stream",
                description=f"Every task of the caller, multiplexed (`taskId` in each event). {_WIRE_FORMAT} "
                "Never ends by itself.",
            ),
        ]

    async def stream_task_progress(self, request: web.Request) -> web.StreamResponse:
        task_id = path_uuid(request, "task_id", "task")
        after = _resume_point(request)
        if not await self.may_listen(request, task_id):
            # The same answer for someone else's task and for no task: ids reveal nothing.
            raise HttpProblem(404, "Not Found", "no such task")
        if after is not None and await self._ended_at_or_before(task_id, after):
            return web.Response(status=204)
        return self._event_stream(
            task_stream_key(task_id), after, {"taskId": task_id}, self._watch(request), ends_with_task=True
        )

    async def stream_my_tasks(self, request: web.Request) -> web.StreamResponse:
        principal = require_principal(request)
        after = _resume_point(request)
        return self._event_stream(
            user_stream_key(principal.user_id),
            after,
            {"userId": principal.user_id},
            self._watch(request),
            ends_with_task=False,
        )

    def _watch(self, request: web.Request) -> _SessionWatch | None:
        if self.session_check is None:
            return None
        return _SessionWatch(require_principal(request), self.session_check, self.session_check_seconds)

    async def _ended_at_or_before(self, task_id: str, after: str) -> bool:
        try:
            terminal = await self.streams.terminal_entry_id(task_id)
        except StreamUnavailable:
            raise HttpProblem(503, "Service Unavailable", "task progress is unavailable; retry") from None
        return terminal is not None and _id_key(after) >= _id_key(terminal)

    def _event_stream(
        self,
        key: str,
        after: str | None,
        connected: dict[str, str],
        session: _SessionWatch | None,
        *,
        ends_with_task: bool,
    ) -> EventStreamResponse:
        async def write_events(response: EventStreamResponse, request: web.BaseRequest) -> None:
            self._open += 1
            # The request's own id (set by the problem middleware) for the logs of the whole stream.
            with bind_correlation_id(response.headers.get("X-Request-Id") or key):
                try:
                    await response.write((RETRY_FRAME + connected_frame(connected)).encode())
                    await self._follow(response, request, key, after, session, ends_with_task)
                except _SessionEnded as ended:
                    with contextlib.suppress(ConnectionError):
                        await response.write(session_ended_frame(ended.reason).encode())
                except ConnectionError:
                    pass  # the client went away mid-write
                except StreamUnavailable as error:
                    # Ends the stream; the client reconnects after `retry` and resumes where it was.
                    log.warning("event stream ended: Redis unavailable", extra={"error": str(error)})
                finally:
                    self._open -= 1

        return EventStreamResponse(write_events)

    async def _follow(
        self,
        response: EventStreamResponse,
        request: web.BaseRequest,
        key: str,
        cursor: str | None,
        session: _SessionWatch | None,
        ends_with_task: bool,
    ) -> None:
        waiting = _Waiting(request, session)
        self._waiting.add(waiting)
        self._ensure_sweeper()
        try:
            while True:
                entries = await self._next_entries(waiting, key, cursor)
                if entries is None:
                    return  # the client went away
                if not entries:
                    await response.write(HEARTBEAT_FRAME.encode())
                    continue
                frames = []
                for entry in entries:
                    frames.append(event_frame(entry.id, entry.type, entry.data))
                    cursor = entry.id
                    if ends_with_task and entry.type in TERMINAL_TYPES:
                        await response.write("".join(frames).encode())
                        return
                await response.write("".join(frames).encode())
        finally:
            self._waiting.discard(waiting)

    async def _next_entries(
        self, waiting: _Waiting, key: str, cursor: str | None
    ) -> list[StoredEntry] | None:
        """The next entries (empty after a quiet heartbeat interval), or None once the client has gone
        (or `close` was called); raises `_SessionEnded` when the caller's session did.

        aiohttp does not cancel a handler when its client disconnects (`handler_cancellation` is off), and
        a waiting read would notice only at the next write: one sweeper looks at every waiting stream's
        connection each `disconnect_poll_seconds` and interrupts the read of one whose client left, so a
        closed tab ends (and frees what its read holds) within that time.
        """
        loop = asyncio.get_running_loop()
        heartbeat_at = loop.time() + self.heartbeat_seconds
        while True:
            if self._closing or _client_left(waiting.request):
                return None
            if waiting.session is not None:
                waiting.session.raise_if_ended()
            remaining = heartbeat_at - loop.time()
            entries = await self.streams.read(
                key, cursor, block_seconds=max(0.0, remaining), interrupt=waiting.interrupt
            )
            if entries or remaining <= 0:
                return entries

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep(), name="sse-sweeper")

    async def _sweep(self) -> None:
        """Interrupts the read of each stream whose client left or whose session is over (or of every one
        when closing), and runs the session checks that are due; ends when no stream is open."""
        while self._waiting:
            await asyncio.sleep(self.disconnect_poll_seconds)
            due: list[_Waiting] = []
            for looked_at, waiting in enumerate(list(self._waiting), start=1):
                session = waiting.session
                if (
                    self._closing
                    or _client_left(waiting.request)
                    or (session is not None and session.end_reason() is not None)
                ):
                    waiting.interrupt.interrupt()
                elif session is not None and session.check_due():
                    due.append(waiting)
                if looked_at % _SWEEP_SLICE == 0:
                    # 10,000 streams take milliseconds to look at: events due meanwhile go out in between.
                    await asyncio.sleep(0)
            # Concurrently, a slice at a time: with the revocation view current a check is a lookup in
            # memory, without it a Redis round trip each, and one slow answer must not hold up the rest.
            for start in range(0, len(due), _SWEEP_SLICE):
                await asyncio.gather(*(self._check_session(w) for w in due[start : start + _SWEEP_SLICE]))

    @staticmethod
    async def _check_session(waiting: _Waiting) -> None:
        assert waiting.session is not None
        if await waiting.session.check_now():
            waiting.interrupt.interrupt()


def _resume_point(request: web.Request) -> str | None:
    query = read_query(request, StreamQuery)
    try:
        return parse_last_event_id([request.headers.get("Last-Event-ID"), query.last_event_id])
    except InvalidLastEventId as error:
        raise HttpProblem(400, "Bad Request", str(error)) from None


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def _client_left(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()
