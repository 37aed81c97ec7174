"""Task progress as Server-Sent Events: which events become which SSE entries, and the wire format.

Pure rules, no I/O: the Redis streams live in `adapters.task_streams`, the HTTP side in
`entrypoints.sse_routes`. Differences from the original (ORIGINAL.md §1.3, `GET /api/stream`) are deliberate:
- every event is a real SSE frame (`id:`, `event:`, `data:`), so `EventSource` resumes by itself with
  `Last-Event-ID`; the original sent bare `data:` lines with the stream id hidden in the JSON;
- terminal events carry references to the output (asset ids and API URLs), never the output itself;
- one logical event is appended once (the original often sent `failed` twice), and nothing follows a
  terminal event on a task's stream.

Studio replies share the machinery: a reply's stream is keyed by its message id (step events of scope
`admin` carry it as their task id) and its entries are `reply_*` types with `messageId`; their live pieces
(text deltas, partial images) come from the Redis live channel (`project_live`), their final state from
tasks' `StudioReply*` events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from funmagic_contracts.base import IntegrationEvent, OutputAsset
from funmagic_contracts.live import LiveReplyPiece
from funmagic_contracts.providers.events import StepCompleted, StepDelayed, StepProgressed, StepStarted
from funmagic_contracts.tasks.events import (
    StudioReplyCancelled,
    StudioReplyCompleted,
    StudioReplyFailed,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
)
from funmagic_contracts.topics import PROVIDERS_EVENTS, TASKS_EVENTS

__all__ = [
    "HEARTBEAT_FRAME",
    "PROJECTED_EVENT_TYPES",
    "RETRY_FRAME",
    "RETRY_MILLISECONDS",
    "TERMINAL_TYPES",
    "InvalidLastEventId",
    "JsonObject",
    "Projection",
    "SseEntry",
    "connected_frame",
    "event_frame",
    "parse_last_event_id",
    "project",
    "project_live",
    "session_ended_frame",
]

JsonObject = dict[str, JsonValue]
"""An SSE event's data (and a step's metadata): a JSON object."""

RETRY_MILLISECONDS = 3000
"""How long a browser waits before reconnecting a dropped stream (the `retry:` field)."""

RETRY_FRAME = f"retry: {RETRY_MILLISECONDS}\n\n"
HEARTBEAT_FRAME = ": heartbeat\n\n"
"""A comment: clients ignore it; it keeps proxies and idle timers from closing a quiet connection."""

TERMINAL_TYPES = frozenset(
    {"completed", "failed", "cancelled", "reply_completed", "reply_failed", "reply_cancelled"}
)
"""SSE types that end a task (or a studio reply): nothing is appended to its stream after one, and its
stream ends there."""

PROJECTED_EVENT_TYPES: dict[str, tuple[str, ...]] = {
    TASKS_EVENTS.name: (
        TaskCompleted.EVENT_TYPE,
        TaskFailed.EVENT_TYPE,
        TaskCancelled.EVENT_TYPE,
        StudioReplyCompleted.EVENT_TYPE,
        StudioReplyFailed.EVENT_TYPE,
        StudioReplyCancelled.EVENT_TYPE,
    ),
    PROVIDERS_EVENTS.name: (
        StepStarted.EVENT_TYPE,
        StepProgressed.EVENT_TYPE,
        StepDelayed.EVENT_TYPE,
        StepCompleted.EVENT_TYPE,
    ),
}
"""The event types the projector turns into SSE entries, per topic; every other type is ignored."""

# A Redis stream entry id: <milliseconds>-<sequence>, both 64-bit unsigned (at most 20 digits). ASCII
# digits only: `\d` would also match other scripts' digits, which Redis refuses.
_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


@dataclass(frozen=True)
class SseEntry:
    """One SSE event as stored in a stream: `{"type": ..., "data": {...camelCase...}}`.

    `logical_key` names the logical event, so a redelivered Kafka message (or the same step completion
    reported twice, see `project`) is appended at most once per stream.
    """

    type: str
    data: JsonObject
    logical_key: str

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES

    def to_json(self) -> str:
        return _dumps({"type": self.type, "data": self.data})


@dataclass(frozen=True)
class Projection:
    """The entries one integration event adds to its task's stream and to its owner's stream, in order."""

    task_id: str
    user_id: str
    entries: tuple[SseEntry, ...]


class InvalidLastEventId(ValueError):
    """A `Last-Event-ID` that is not a Redis stream entry id (`<ms>-<seq>`)."""


# --- events → entries ----------------------------------------------------------------------------


class _StepReference(BaseModel):
    """One element of `TaskCompleted.output.metadata["steps"]`, as the tasks service writes it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    step_id: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    assets: tuple[OutputAsset, ...] = ()
    metadata: JsonObject = Field(default_factory=dict)


def project(event_id: str, event: IntegrationEvent) -> Projection | None:
    """The SSE entries of one integration event (`event_id` is its envelope id), or None to ignore it."""
    if (
        isinstance(event, StepStarted | StepProgressed | StepDelayed | StepCompleted)
        and event.scope == "admin"
    ):
        return _project_reply_step(event_id, event)
    match event:
        case StepStarted():
            entry = _step_started(event.task_id, event.step_id, event.attempt)
        case StepProgressed():
            entry = SseEntry(
                "progress",
                {
                    "taskId": event.task_id,
                    "stepId": event.step_id,
                    "progress": event.progress,
                    "message": event.message,
                },
                event_id,
            )
        case StepDelayed():
            entry = SseEntry(
                "delayed",
                {
                    "taskId": event.task_id,
                    "stepId": event.step_id,
                    "reason": event.reason,
                    "retryAt": _iso(event.retry_at.isoformat()),
                },
                event_id,
            )
        case StepCompleted():
            entry = _step_completed(
                event.task_id, event.step_id, event.attempt, event.output.assets, dict(event.output.metadata)
            )
        case TaskCompleted():
            # tasks.events and providers.events are consumed independently, so this may arrive before the
            # step events it follows (and after it a task's stream takes nothing more): the steps it lists
            # come first, started and completed (same logical keys, so the late real ones are duplicates),
            # and the story stays step_started → … → step_completed → completed.
            steps = tuple(
                entry
                for step in _listed_steps(event.output.metadata)
                for entry in (
                    _step_started(event.task_id, step.step_id, step.attempt),
                    _step_completed(event.task_id, step.step_id, step.attempt, step.assets, step.metadata),
                )
            )
            completed = SseEntry(
                "completed",
                {
                    "taskId": event.task_id,
                    "output": {"assets": _assets(event.output.assets)},
                    "chargedCredits": event.charged_credits,
                },
                event_id,
            )
            return Projection(event.task_id, event.user_id, (*steps, completed))
        case TaskFailed():
            entry = SseEntry(
                "failed",
                {
                    "taskId": event.task_id,
                    "error": event.error_message,
                    "code": event.error_code,
                    "chargedCredits": event.charged_credits,
                },
                event_id,
            )
        case TaskCancelled():
            entry = SseEntry(
                "cancelled", {"taskId": event.task_id, "chargedCredits": event.charged_credits}, event_id
            )
        case StudioReplyCompleted():
            data: JsonObject = {
                "messageId": event.message_id,
                "chatId": event.chat_id,
                "content": event.content,
                "images": _assets(event.images, "/api/admin/assets/"),
                "usage": event.usage.model_dump(),
            }
            return Projection(
                event.message_id, event.admin_id, (SseEntry("reply_completed", data, event_id),)
            )
        case StudioReplyFailed():
            data = {
                "messageId": event.message_id,
                "chatId": event.chat_id,
                "error": event.error_message,
                "code": event.error_code,
            }
            return Projection(event.message_id, event.admin_id, (SseEntry("reply_failed", data, event_id),))
        case StudioReplyCancelled():
            data = {"messageId": event.message_id, "chatId": event.chat_id}
            return Projection(
                event.message_id, event.admin_id, (SseEntry("reply_cancelled", data, event_id),)
            )
        case _:
            return None
    return Projection(event.task_id, event.user_id, (entry,))


def _project_reply_step(
    event_id: str, event: StepStarted | StepProgressed | StepDelayed | StepCompleted
) -> Projection | None:
    """A studio reply's step news: started and delayed are worth showing; its progress and completion are
    not (the live pieces show the progress, `StudioReplyCompleted` the result)."""
    match event:
        case StepStarted():
            entry = SseEntry(
                "reply_started",
                {"messageId": event.task_id, "attempt": event.attempt},
                step_key("reply_started", event.task_id, event.step_id, event.attempt),
            )
        case StepDelayed():
            entry = SseEntry(
                "reply_delayed",
                {
                    "messageId": event.task_id,
                    "reason": event.reason,
                    "retryAt": _iso(event.retry_at.isoformat()),
                },
                event_id,
            )
        case _:
            return None
    return Projection(event.task_id, event.user_id, (entry,))


def project_live(piece: LiveReplyPiece) -> Projection:
    """A live piece of a studio reply: `reply_delta {messageId, run, text}` or `reply_partial_image
    {messageId, run, index, image}` (a `data:` URL), keyed by its place in its run so a redelivered piece is
    dropped. A new `run` (the provider called again after an error) means the text starts over."""
    key = f"live:{piece.message_id}:{piece.run}:{piece.seq}"
    data: JsonObject = {"messageId": piece.message_id, "run": piece.run}
    if piece.kind == "text_delta":
        return Projection(
            piece.message_id,
            piece.user_id,
            (SseEntry("reply_delta", {**data, "text": piece.text or ""}, key),),
        )
    image = {**data, "index": piece.index or 0, "image": piece.image or ""}
    return Projection(piece.message_id, piece.user_id, (SseEntry("reply_partial_image", image, key),))


def _step_started(task_id: str, step_id: str, attempt: int) -> SseEntry:
    # Keyed by task, step and attempt (not the envelope id): TaskCompleted may report the same start.
    return SseEntry(
        "step_started",
        {"taskId": task_id, "stepId": step_id, "stepName": step_id, "attempt": attempt},
        step_key("step_started", task_id, step_id, attempt),
    )


def _step_completed(
    task_id: str, step_id: str, attempt: int, assets: Iterable[OutputAsset], metadata: JsonObject
) -> SseEntry:
    # Keyed by task, step and attempt, not by envelope id: TaskCompleted reports the same completion (see
    # project). The task id matters: a user's stream dedupes across all of that user's tasks.
    return SseEntry(
        "step_completed",
        {
            "taskId": task_id,
            "stepId": step_id,
            "output": {"assets": _assets(assets), "metadata": metadata},
        },
        step_key("step_completed", task_id, step_id, attempt),
    )


def step_key(kind: str, task_id: str, step_id: str, attempt: int) -> str:
    return f"{kind}:{task_id}:{step_id}:{attempt}"


def _assets(assets: Iterable[OutputAsset], api: str = "/api/assets/") -> list[JsonValue]:
    return [
        {"assetId": a.asset_id, "role": a.role, "url": f"{api}{quote(a.asset_id, safe='')}"} for a in assets
    ]


def _listed_steps(metadata: JsonObject) -> list[_StepReference]:
    """The steps a TaskCompleted lists; malformed elements are left out (the StepCompleted still counts)."""
    listed = metadata.get("steps")
    if not isinstance(listed, list):
        return []
    steps = []
    for item in listed:
        try:
            steps.append(_StepReference.model_validate(item))
        except ValidationError:
            continue
    return steps


def _iso(value: str) -> str:
    # UtcDatetime values are UTC: written with `Z`, as the contracts serialise them.
    return value[: -len("+00:00")] + "Z" if value.endswith("+00:00") else value


# --- the wire format -----------------------------------------------------------------------------


def event_frame(entry_id: str, type_: str, data: JsonObject) -> str:
    """One SSE event: `id:` (the Redis stream entry id, what the client resumes from), `event:`, `data:`."""
    return f"id: {entry_id}\nevent: {type_}\ndata: {_dumps(data)}\n\n"


def session_ended_frame(reason: str) -> str:
    """The last event of a stream whose caller's session ended (signed out, disabled, token expired); no
    `id:`. The client reconnects with a fresh token, or learns with a 401 that it is signed out."""
    return f"event: session_ended\ndata: {_dumps({'reason': reason})}\n\n"


def connected_frame(data: JsonObject) -> str:
    """The first event of every stream; no `id:`, so it never moves the client's resume point."""
    return f"event: connected\ndata: {_dumps(data)}\n\n"


def parse_last_event_id(values: Sequence[str | None]) -> str | None:
    """The resume point: the first non-empty of (the `Last-Event-ID` header, the `lastEventId` query).

    None replays from the start; a value that is not `<ms>-<seq>` raises `InvalidLastEventId`.
    """
    for value in values:
        if value is None or value.strip() == "":
            continue
        value = value.strip()
        if not _STREAM_ID.fullmatch(value):
            raise InvalidLastEventId("Last-Event-ID must be a stream entry id such as 1718000000000-0")
        return value
    return None


def _dumps(value: JsonValue) -> str:
    # Compact and ASCII: CR, LF and every other character some reader might take for a line break (NEL,
    # U+2028…) are escaped, so a value can never end a `data:` line.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)
