"""The admin AI studio: a chat and its messages as aggregates, and the transitions of a reply.

Pure: no I/O. The application locks the chat (or the message), calls one transition, saves what the change
holds and publishes its events in one transaction. A reply is work like a task step: posting asks providers
for one `StepRequested` of scope `admin` per reply (`task_id` = the reply's id), and the step events that
come back drive the reply:

    post_message ──► user message (completed) + replies: pending ──start_reply──► running
                                                   │                              │
                                                   │            complete_reply ───┼──► completed
                                                   │            fail_reply ───────┼──► failed
                                                   └────── cancel_reply ──────────┴──► cancelled

News about a reply that already ended (a late StepCompleted after a cancel, a redelivery) changes nothing.
A text reply continues the chat's conversation: it is sent with the chat's last turn
(`previous_response_id`) and, once completed, its own turn becomes the chat's last — so a chat runs one
text reply at a time (`one_text_reply_at_a_time`). Image replies do not chain and run side by side (a batch
is up to `MAX_VARIANTS` of them, each its own job).

Batches (`replies_of`, as the original's batch route): an image message quoting two or more images — or a
`utility` model's message (fal's upscaler, its background removal), whatever it quotes — is one prompt
applied to each image on its own: one reply per image, each a job with that one image, in the order
quoted, at most `MAX_BATCH_IMAGES` (`too_many_images`). Such a batch asks for one variant per image
(`batch_variants`): variants × images would multiply the jobs behind the admin's back. An image message
quoting one image (or none) keeps `variants`. A utility model works on images only: without one it is
refused (`image_required`), and it reads only its own options (`UTILITY_OPTIONS`, numbers in range).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.tasks.events import (
    StepInput,
    StepRequested,
    StudioChatDeleted,
    StudioReplyCancelled,
    StudioReplyCompleted,
    StudioReplyFailed,
    StudioUsage,
)
from funmagic_kit.errors import Conflict, Forbidden, NotFound, Refused
from funmagic_tasks.domain.json_values import JsonObject, JsonValue

__all__ = [
    "ACTIVE_REPLY_STATUSES",
    "DEFAULT_TITLE",
    "MAX_BATCH_IMAGES",
    "MAX_ERROR_LENGTH",
    "MAX_VARIANTS",
    "STUDIO_CHAT_STEP",
    "Chat",
    "ChatNotFound",
    "ChatSettings",
    "InvariantViolated",
    "Message",
    "MessageKind",
    "MessageNotFound",
    "MessageRequest",
    "MessageStatus",
    "ModelKind",
    "OnlySuperAdmins",
    "ReplyOutput",
    "ReplyStillRunning",
    "StudioChange",
    "StudioEvent",
    "StudioRefused",
    "Usage",
    "cancel_reply",
    "check_invariants",
    "complete_reply",
    "delete_chat",
    "fail_reply",
    "history_of",
    "is_batch",
    "new_chat",
    "one_text_reply_at_a_time",
    "post_message",
    "replies_of",
    "reply_output",
    "start_reply",
    "update_chat",
    "visible_to",
]

DEFAULT_TITLE = "New chat"
MAX_VARIANTS = 8
MAX_BATCH_IMAGES = 8  # the original's batch: one prompt × 1–8 images
MAX_ERROR_LENGTH = 1000
REPLY_DEADLINE = timedelta(minutes=10)
# Past its deadline, providers has ended the reply's job (or never had one: its request dead-lettered); the
# studio gives up on a reply this long after the deadline, as tasks does on a step.
REPLY_GIVE_UP_AFTER = REPLY_DEADLINE + timedelta(seconds=30)
STUDIO_CHAT_STEP = "studio-chat"  # a chat model (its image tool when asked for an image)
IMAGE_STEP = "image-gen"  # an image model
UTILITY_STEP = "studio-utility"  # a utility model (upscale, background removal) on one quoted image
REPLY_STEP_ID = "reply"

MessageKind = Literal["text", "image"]
ModelKind = Literal["text", "image", "utility"]
MessageStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
ACTIVE_REPLY_STATUSES: frozenset[MessageStatus] = frozenset({"pending", "running"})
# The options a prompt bar may send, by what reads them; anything else is refused.
_IMAGE_OPTION_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]{0,31}")
IMAGE_OPTIONS = ("size", "quality", "output_format", "background", "moderation", "aspectRatio", "imageSize")
# An image model's reply carries the chat's earlier turns (Gemini talks on from them; others ignore them):
# at most this many, the latest.
MAX_HISTORY_TURNS = 20
# Images of earlier turns sent back at most (the newest): each is a whole image in the request.
MAX_HISTORY_IMAGES = 6
# A utility model's options (fal's clarity-upscaler reads them), each a number within its range.
UTILITY_OPTIONS: Mapping[str, tuple[float, float]] = {
    "upscale_factor": (1, 4),
    "creativity": (0, 1),
    "resemblance": (0, 1),
}

StudioEvent = (
    StepRequested | StudioReplyCompleted | StudioReplyFailed | StudioReplyCancelled | StudioChatDeleted
)


class StudioRefused(Refused, code="studio_refused"):
    """A request the studio's rules refuse (422); `code` and `field` say why."""


class ReplyStillRunning(Conflict, code="reply_running"):
    """A text message while the chat's previous reply runs (409): the next turn chains from it."""

    def __init__(self) -> None:
        super().__init__("the chat's previous reply is still running; wait for it or cancel it")


class OnlySuperAdmins(Forbidden, code="forbidden"):
    """Listing every admin's chats is for super admins."""


class InvariantViolated(AssertionError):
    """A state a studio message must never reach."""


class ChatNotFound(NotFound):
    """No such chat for this admin (another admin's chat looks exactly like a missing one)."""


class MessageNotFound(NotFound):
    """No such message for this admin."""


@dataclass(frozen=True)
class ChatSettings:
    title: str
    project: str | None
    provider: str
    model: str
    system_prompt: str | None
    store: bool


@dataclass(frozen=True)
class Chat:
    id: str
    admin_id: str
    title: str
    project: str | None
    provider: str
    model: str
    system_prompt: str | None
    store: bool
    last_response_id: str | None
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class Message:
    id: str
    chat_id: str
    admin_id: str
    role: Literal["user", "assistant"]
    kind: MessageKind
    content: str
    quoted_image_ids: tuple[str, ...]
    provider: str
    model: str
    options: JsonObject
    images: tuple[OutputAsset, ...]
    status: MessageStatus
    batch_id: str | None
    variant: int | None
    response_id: str | None
    usage: Usage | None
    error_code: str | None
    error_message: str | None
    idempotency_key: str | None
    created_at: datetime
    finished_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_REPLY_STATUSES


@dataclass(frozen=True)
class MessageRequest:
    """What the admin sent, with the provider and model resolved (the chat's when not named) and what kind
    of model that is (the providers service's catalogue says)."""

    content: str
    kind: MessageKind
    provider: str
    model: str
    model_kind: ModelKind
    quoted_image_ids: tuple[str, ...] = ()
    variants: int = 1
    options: Mapping[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplyOutput:
    """What providers reported for a finished reply (`StepCompleted.output`)."""

    text: str
    images: tuple[OutputAsset, ...]
    response_id: str | None
    usage: Usage


@dataclass(frozen=True)
class StudioChange:
    chat: Chat | None = None  # the chat as it is now, when this change touched it
    messages: tuple[Message, ...] = ()  # messages added or changed
    events: tuple[StudioEvent, ...] = ()


# --- rules --------------------------------------------------------------------------------------------


def visible_to(chat: Chat, admin_id: str, *, super_admin: bool) -> bool:
    """An admin's chats are theirs; a super admin sees every chat."""
    return chat.admin_id == admin_id or super_admin


def one_text_reply_at_a_time(kind: MessageKind, replies: Iterable[Message]) -> bool:
    """May a message of `kind` be posted while these replies of the chat exist? A text turn chains from the
    previous text turn, so it waits for it; images never chain."""
    return kind == "image" or not any(r.kind == "text" and r.active for r in replies)


def check_invariants(message: Message) -> None:
    """Raises InvariantViolated naming the broken invariant (raised even under `python -O`)."""
    broken = [
        (message.role == "user" and message.status != "completed", "a prompt is complete when sent"),
        ((message.finished_at is None) != message.active, "a reply is finished exactly when it ended"),
        (message.status != "completed" and bool(message.images), "only a completed reply has images"),
        ((message.error_code is None) != (message.status != "failed"), "a failed reply says why, only it"),
        (
            message.variant is not None and not 0 <= message.variant < MAX_VARIANTS,
            f"a batch has at most {MAX_VARIANTS} replies",
        ),
    ]
    for is_broken, invariant in broken:
        if is_broken:
            raise InvariantViolated(f"{invariant} (message {message.id})")


# --- chats --------------------------------------------------------------------------------------------


def new_chat(chat_id: str, admin_id: str, settings: ChatSettings, now: datetime) -> Chat:
    return Chat(
        id=chat_id,
        admin_id=admin_id,
        title=settings.title,
        project=settings.project,
        provider=settings.provider,
        model=settings.model,
        system_prompt=settings.system_prompt,
        store=settings.store,
        last_response_id=None,
        archived_at=None,
        created_at=now,
        updated_at=now,
    )


def update_chat(chat: Chat, changes: Mapping[str, object], now: datetime) -> Chat:
    """`changes` holds only the fields the admin sent (`archived` archives or restores)."""
    updated = chat
    for name in ("title", "project", "provider", "model", "system_prompt"):
        if name in changes:
            updated = replace(updated, **{name: changes[name]})
    if "archived" in changes:
        archived = bool(changes["archived"])
        updated = replace(updated, archived_at=(chat.archived_at or now) if archived else None)
    if updated.provider != chat.provider:  # another provider cannot continue this one's stored turns
        updated = replace(updated, last_response_id=None)
    return replace(updated, updated_at=now) if updated != chat else chat


def delete_chat(chat: Chat, messages: Sequence[Message], *, by: str, now: datetime) -> StudioChange:
    """The chat goes with its messages; running replies are cancelled first, and storage is told to delete
    the images the replies made."""
    cancelled = [cancel_reply(m, by=by, now=now) for m in messages if m.active]
    return StudioChange(
        chat=chat,
        messages=tuple(m for change in cancelled for m in change.messages),
        events=(
            *(e for change in cancelled for e in change.events),
            StudioChatDeleted(
                chat_id=chat.id, admin_id=chat.admin_id, message_ids=tuple(m.id for m in messages), by=by
            ),
        ),
    )


# --- posting: a prompt and its replies ----------------------------------------------------------------


def post_message(
    chat: Chat,
    request: MessageRequest,
    *,
    message_id: str,
    reply_ids: Sequence[str],
    active_replies: Iterable[Message],
    idempotency_key: str | None,
    now: datetime,
    history: Sequence[Message] = (),
) -> StudioChange:
    """The admin's message and its pending replies (`replies_of`: one per variant, or one per image of a
    batch), each asked of providers as an admin step. `history` is the chat's messages so far, oldest
    first: an image model's step gets their text as `history` (`history_of`)."""
    _check_request(request, reply_ids)
    if chat.archived_at is not None:
        raise StudioRefused("the chat is archived; restore it to continue", code="chat_archived")
    if not one_text_reply_at_a_time(request.kind, active_replies):
        raise ReplyStillRunning()
    options = _options_of(request)
    prompt = Message(
        id=message_id,
        chat_id=chat.id,
        admin_id=chat.admin_id,
        role="user",
        kind=request.kind,
        content=request.content,
        quoted_image_ids=request.quoted_image_ids,
        provider=request.provider,
        model=request.model,
        options=options,
        images=(),
        status="completed",
        batch_id=None,
        variant=None,
        response_id=None,
        usage=None,
        error_code=None,
        error_message=None,
        idempotency_key=idempotency_key,
        created_at=now,
        finished_at=None,
    )
    replies = tuple(
        replace(
            prompt,
            id=reply_id,
            role="assistant",
            content="",
            status="pending",
            batch_id=message_id,
            quoted_image_ids=images,
            variant=index if request.kind == "image" else None,
            idempotency_key=None,
        )
        for index, (reply_id, images) in enumerate(zip(reply_ids, _reply_images(request), strict=True))
    )
    prompt = replace(prompt, finished_at=now)
    turns = history_of(history)
    events = tuple(_step_requested(chat, request, reply, now, turns) for reply in replies)
    if request.kind == "text":  # the chat talks on with the model it last talked with
        kept_turn = chat.last_response_id if request.provider == chat.provider else None
        updated_chat = replace(
            chat, provider=request.provider, model=request.model, last_response_id=kept_turn, updated_at=now
        )
    else:
        updated_chat = replace(chat, updated_at=now)
    return StudioChange(chat=updated_chat, messages=(prompt, *replies), events=events)


def is_batch(request: MessageRequest) -> bool:
    """One prompt applied to each image on its own: a utility model's message, or an image message
    quoting two or more images."""
    return request.model_kind == "utility" or (request.kind == "image" and len(request.quoted_image_ids) > 1)


def replies_of(request: MessageRequest) -> int:
    """How many replies (jobs) a message asks for: one per image of a batch, else one per variant."""
    return len(request.quoted_image_ids) if is_batch(request) else request.variants


def _reply_images(request: MessageRequest) -> list[tuple[str, ...]]:
    """The images each reply works on: its own one in a batch, all of them otherwise."""
    if is_batch(request):
        return [(image,) for image in request.quoted_image_ids]
    return [request.quoted_image_ids] * request.variants


def _check_request(request: MessageRequest, reply_ids: Sequence[str]) -> None:
    if not 1 <= request.variants <= MAX_VARIANTS:
        raise StudioRefused(f"variants must be 1 to {MAX_VARIANTS}", field="variants")
    if request.kind == "text" and request.variants != 1:
        raise StudioRefused("a text message gets one reply; ask for variants of an image", field="variants")
    if request.kind == "text" and request.model_kind != "text":
        raise StudioRefused(f"{request.model} makes images; choose a chat model to talk", field="model")
    if len(request.quoted_image_ids) > MAX_BATCH_IMAGES:
        raise StudioRefused(
            f"a message takes at most {MAX_BATCH_IMAGES} images", code="too_many_images",
            field="quoted_image_ids",
        )  # fmt: skip
    if request.model_kind == "utility" and not request.quoted_image_ids:
        raise StudioRefused(
            f"{request.model} works on images: quote or upload at least one", code="image_required",
            field="quoted_image_ids",
        )  # fmt: skip
    if is_batch(request) and request.variants != 1:
        raise StudioRefused(
            "a batch makes one reply per image; ask for variants of one image at a time",
            code="batch_variants", field="variants",
        )  # fmt: skip
    if len(reply_ids) != replies_of(request):
        raise ValueError("one reply id per variant (per image of a batch)")
    allowed = UTILITY_OPTIONS if request.model_kind == "utility" else IMAGE_OPTIONS
    unknown = sorted(set(request.options) - set(allowed))
    if unknown:
        raise StudioRefused(f"unknown option {unknown[0]!r}", field=f"options.{unknown[0]}")
    if request.options and request.kind == "text":
        raise StudioRefused("options apply to images only", field="options")
    if request.model_kind != "utility":
        for name, value in request.options.items():
            # A model's own choice ("1024x1024", "high", "16:9", "2K"): refused here, not deep in the job.
            if not isinstance(value, str) or not _IMAGE_OPTION_VALUE.fullmatch(value):
                raise StudioRefused(
                    f"{name} must be one of the model's choices, like 1024x1024 or high",
                    field=f"options.{name}",
                )
    if request.model_kind == "utility":
        for name, value in request.options.items():
            low, high = UTILITY_OPTIONS[name]
            number = _number(value)
            if number is None or not low <= number <= high:
                raise StudioRefused(
                    f"{name} must be a number from {low:g} to {high:g}", field=f"options.{name}"
                )


def _number(value: JsonValue) -> float | None:
    """A number, or a string that is one (the prompt bar offers its choices as strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _options_of(request: MessageRequest) -> JsonObject:
    if request.model_kind == "utility":  # sent on as numbers, as the model takes them
        return {k: _number(request.options[k]) for k in UTILITY_OPTIONS if k in request.options}
    return {k: request.options[k] for k in IMAGE_OPTIONS if k in request.options}


def history_of(messages: Iterable[Message]) -> list[JsonValue]:
    """The chat's completed turns as an image model's `history` option: the admin's prompts with the images
    they quoted (by asset id: the step reads them, `history_images`) and the replies' text, oldest first
    (the replies' images are not sent back: the original dropped them too)."""
    turns: list[JsonValue] = []
    for message in messages:
        if message.role == "user" and message.content:
            turn: dict[str, JsonValue] = {"role": "user", "text": message.content}
            if message.quoted_image_ids:
                turn["images"] = list(message.quoted_image_ids)
            turns.append(turn)
        elif message.role == "assistant" and message.status == "completed" and message.content:
            turns.append({"role": "model", "text": message.content})
    return turns[-MAX_HISTORY_TURNS:]


def history_images(history: Sequence[JsonValue]) -> tuple[str, ...]:
    """The images a `history` names, the newest `MAX_HISTORY_IMAGES`, oldest first, each once."""
    named = [
        image
        for turn in history
        if isinstance(turn, dict)
        for image in (turn.get("images") if isinstance(turn.get("images"), list) else ())
        if isinstance(image, str)
    ]
    return tuple(dict.fromkeys(named))[-MAX_HISTORY_IMAGES:]


def _step_requested(
    chat: Chat, request: MessageRequest, reply: Message, now: datetime, history: list[JsonValue]
) -> StepRequested:
    # A batch's variants differ by their seed (a provider without seeds draws each anew anyway); a batch
    # of images differs by its images.
    seeded = bool(reply.variant) and not is_batch(request)
    image_options = {**reply.options, "seed": reply.variant} if seeded else dict(reply.options)
    if request.model_kind == "utility":
        step_type, options = UTILITY_STEP, dict(reply.options)
    elif request.kind == "image" and request.model_kind == "image":
        step_type, options = IMAGE_STEP, image_options
        if history:
            options["history"] = history
    else:
        step_type = STUDIO_CHAT_STEP
        options = {"store": chat.store}
        if chat.system_prompt:
            options["instructions"] = chat.system_prompt
        if request.kind == "text":
            if chat.last_response_id and chat.provider == request.provider:
                options["previous_response_id"] = chat.last_response_id
        else:
            options["image_generation"] = image_options
    return StepRequested(
        task_id=reply.id,
        user_id=chat.admin_id,
        step_id=REPLY_STEP_ID,
        step_type=step_type,
        provider=request.provider,
        model=request.model,
        scope="admin",
        input=StepInput(
            asset_ids=reply.quoted_image_ids,
            history_asset_ids=history_images(options.get("history") or ()) if step_type == IMAGE_STEP else (),
            prompt=request.content,
            options=options,
        ),
        attempt=1,
        deadline_at=now + REPLY_DEADLINE,
    )


# --- a reply's life -----------------------------------------------------------------------------------


def start_reply(reply: Message) -> StudioChange:
    if reply.status != "pending":
        return StudioChange()
    return StudioChange(messages=(replace(reply, status="running"),))


def complete_reply(reply: Message, chat: Chat | None, output: ReplyOutput, now: datetime) -> StudioChange:
    """The reply is done. A text turn becomes the chat's last (the next one chains from it)."""
    if not reply.active:
        return StudioChange()
    done = replace(
        reply,
        status="completed",
        content=output.text,
        images=output.images,
        response_id=output.response_id,
        usage=output.usage,
        finished_at=now,
    )
    updated_chat = None
    if chat is not None and reply.kind == "text" and output.response_id and chat.provider == reply.provider:
        updated_chat = replace(chat, last_response_id=output.response_id, updated_at=now)
    event = StudioReplyCompleted(
        message_id=reply.id,
        chat_id=reply.chat_id,
        admin_id=reply.admin_id,
        content=output.text,
        images=output.images,
        response_id=output.response_id,
        usage=StudioUsage(
            input_tokens=output.usage.input_tokens,
            output_tokens=output.usage.output_tokens,
            total_tokens=output.usage.total_tokens,
        ),
    )
    return StudioChange(chat=updated_chat, messages=(done,), events=(event,))


def fail_reply(reply: Message, *, error_code: str, error_message: str, now: datetime) -> StudioChange:
    if not reply.active:
        return StudioChange()
    message = error_message[:MAX_ERROR_LENGTH]
    failed = replace(reply, status="failed", error_code=error_code, error_message=message, finished_at=now)
    event = StudioReplyFailed(
        message_id=reply.id,
        chat_id=reply.chat_id,
        admin_id=reply.admin_id,
        error_code=error_code,
        error_message=message,
    )
    return StudioChange(messages=(failed,), events=(event,))


def time_out_reply(reply: Message, *, now: datetime) -> StudioChange:
    """A reply still pending or running well past its step's deadline fails: no answer can come any more
    (the events that would have brought one were lost, or dead-lettered), and a stuck text reply would block
    the chat's next turn."""
    if not reply.active or now < reply.created_at + REPLY_GIVE_UP_AFTER:
        return StudioChange()
    minutes = int(REPLY_DEADLINE.total_seconds() // 60)
    return fail_reply(
        reply, error_code="reply_timeout", error_message=f"no answer came within {minutes} minutes", now=now
    )


def cancel_reply(reply: Message, *, by: str, now: datetime) -> StudioChange:
    """Cancelling an ended reply changes nothing (it is answered as it is)."""
    if reply.role != "assistant" or not reply.active:
        return StudioChange()
    cancelled = replace(reply, status="cancelled", finished_at=now)
    event = StudioReplyCancelled(message_id=reply.id, chat_id=reply.chat_id, admin_id=reply.admin_id, by=by)
    return StudioChange(messages=(cancelled,), events=(event,))


def reply_output(assets: Iterable[OutputAsset], metadata: Mapping[str, JsonValue]) -> ReplyOutput:
    """A StepCompleted's output as a reply: the text, the turn's id and the tokens the adapter reported."""
    usage = metadata.get("usage")
    counts = usage if isinstance(usage, dict) else {}
    text = metadata.get("text")
    response_id = metadata.get("responseId")
    return ReplyOutput(
        text=text if isinstance(text, str) else "",
        images=tuple(a for a in assets if a.role == "image"),
        response_id=response_id if isinstance(response_id, str) and response_id else None,
        usage=Usage(
            input_tokens=_count(counts.get("inputTokens")),
            output_tokens=_count(counts.get("outputTokens")),
            total_tokens=_count(counts.get("totalTokens")),
        ),
    )


def _count(value: JsonValue) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
