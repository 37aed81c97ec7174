"""The admin AI studio's use cases (DESIGN §13): chats and messages over HTTP, then the reactions to the
step events of replies (scope `admin`), in the shape of the task use cases: lock → decide
(`domain/studio.py`) → save → publish, one unit of work.

Who may do what: a chat is its admin's — another admin gets 404 for it. A super admin reads every chat
(lists with `all`, reads messages) but writes only their own: posting spends the chat owner's provider
quota and continues their conversation, which nobody else should do in their name.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepStarted
from funmagic_kit.clock import Clock
from funmagic_kit.logs import get_logger
from funmagic_kit.request_once import RequestKey
from funmagic_tasks.application.ports import Assets, StudioModels, TasksUnitOfWork, UnitOfWorkFactory
from funmagic_tasks.application.sweeping import sweep
from funmagic_tasks.domain import studio as rules
from funmagic_tasks.domain.json_values import JsonObject, JsonValue
from funmagic_tasks.domain.studio import (
    DEFAULT_TITLE,
    Chat,
    ChatNotFound,
    ChatSettings,
    Message,
    MessageKind,
    MessageNotFound,
    MessageRequest,
    StudioChange,
    StudioRefused,
)
from funmagic_tasks.domain.tasks import IdempotencyKeyReused

__all__ = ["Caller", "StudioService", "chat_view", "message_view"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    admin_id: str
    super_admin: bool = False


@dataclass(frozen=True, kw_only=True)
class StudioService:
    uow: UnitOfWorkFactory
    assets: Assets
    models: StudioModels
    clock: Clock

    # --- chats ---------------------------------------------------------------------------------------

    async def create_chat(
        self, caller: Caller, fields: Mapping[str, object], *, key: RequestKey | None = None
    ) -> JsonObject:
        """With `key`, once: a retry answers with the chat its first request created, as it is now."""
        provider, model = str(fields.get("provider") or "local"), str(fields.get("model") or "local-chat")
        if await self.models.model_kind(provider, model) != "text":
            raise StudioRefused(
                f"{provider} has no chat model {model!r}", code="unknown_model", field="model"
            )
        settings = ChatSettings(
            title=str(fields.get("title") or DEFAULT_TITLE),
            project=_text_or_none(fields.get("project")),
            provider=provider,
            model=model,
            system_prompt=_text_or_none(fields.get("system_prompt")),
            store=bool(fields.get("store", True)),
        )
        chat = rules.new_chat(str(uuid.uuid4()), caller.admin_id, settings, self.clock.now())
        async with self.uow() as uow:
            if key is not None and (earlier := await uow.claim(key)) is not None:
                created = await uow.studio.chat(earlier)
                if created is None:
                    raise ChatNotFound("the chat this request created was deleted since")
                return chat_view(created)
            chat = await uow.studio.add_chat(chat)
            if key is not None:
                uow.created(key, chat.id)
        return chat_view(chat)

    async def get_chat(self, caller: Caller, chat_id: str) -> JsonObject:
        async with self.uow() as uow:
            return chat_view(await self._readable(uow, caller, chat_id))

    async def update_chat(self, caller: Caller, chat_id: str, changes: Mapping[str, object]) -> JsonObject:
        if "provider" in changes or "model" in changes:
            async with self.uow() as uow:
                current = await self._writable(uow, caller, chat_id)
            provider = str(changes.get("provider") or current.provider)
            model = str(changes.get("model") or current.model)
            if await self.models.model_kind(provider, model) != "text":
                raise StudioRefused(
                    f"{provider} has no chat model {model!r}", code="unknown_model", field="model"
                )
        async with self.uow() as uow:
            chat = await self._writable(uow, caller, chat_id, lock=True)
            updated = rules.update_chat(chat, changes, self.clock.now())
            if updated != chat:
                chat = await uow.studio.save_chat(updated)
        return chat_view(chat)

    async def delete_chat(self, caller: Caller, chat_id: str) -> None:
        async with self.uow() as uow:
            chat = await self._writable(uow, caller, chat_id, lock=True)
            messages = await uow.studio.messages_of(chat_id)
            change = rules.delete_chat(chat, messages, by=caller.admin_id, now=self.clock.now())
            for event in change.events:
                uow.publish(event)
            await uow.studio.delete_chat(chat_id)
        log.info("studio chat deleted", extra={"chat_id": chat_id, "messages": len(messages)})

    async def list_chats(
        self,
        caller: Caller,
        *,
        project: str | None,
        archived: bool,
        every_admin: bool,
        limit: int,
        cursor: str | None,
    ) -> JsonObject:
        if every_admin and not caller.super_admin:
            raise rules.OnlySuperAdmins("only super admins list every admin's chats", field="all")
        async with self.uow() as uow:
            chats, next_cursor = await uow.studio.chats_page(
                admin_id=None if every_admin else caller.admin_id,
                archived=archived,
                project=project or None,
                by_project=project is not None,
                limit=limit,
                cursor=cursor,
            )
        return {"items": [chat_view(c) for c in chats], "next_cursor": next_cursor}

    async def projects(self, caller: Caller) -> JsonObject:
        async with self.uow() as uow:
            projects = await uow.studio.projects(caller.admin_id)
        return {"items": [{"name": name, "chats": count} for name, count in projects]}

    # --- messages ------------------------------------------------------------------------------------

    async def messages(self, caller: Caller, chat_id: str, *, limit: int, cursor: str | None) -> JsonObject:
        async with self.uow() as uow:
            await self._readable(uow, caller, chat_id)
            messages, next_cursor = await uow.studio.messages_page(chat_id, limit=limit, cursor=cursor)
        return {"items": [message_view(m) for m in messages], "next_cursor": next_cursor}

    async def post_message(
        self, caller: Caller, chat_id: str, fields: Mapping[str, object], idempotency_key: str | None
    ) -> tuple[JsonObject, bool]:
        """(the prompt with its replies, created?) — a retry with the same key gets the same messages."""
        if idempotency_key:
            async with self.uow() as uow:
                existing = await uow.studio.by_idempotency_key(caller.admin_id, idempotency_key)
            if existing:
                return _replayed(existing, chat_id, fields), False
        async with self.uow() as uow:
            chat = await self._writable(uow, caller, chat_id)
        request = await self._request(chat, fields)
        for asset_id in request.quoted_image_ids:
            if not await self.assets.owns(chat.admin_id, asset_id):
                raise StudioRefused(
                    "no such image of yours", code="asset_not_found", field="quoted_image_ids"
                )
        async with self.uow() as uow:
            chat = await self._writable(uow, caller, chat_id, lock=True)
            if idempotency_key and (
                existing := await uow.studio.by_idempotency_key(caller.admin_id, idempotency_key)
            ):
                return _replayed(existing, chat_id, fields), False
            change = rules.post_message(
                chat,
                request,
                message_id=str(uuid.uuid4()),
                reply_ids=[str(uuid.uuid4()) for _ in range(rules.replies_of(request))],
                active_replies=await uow.studio.active_replies(chat_id),
                idempotency_key=idempotency_key,
                now=self.clock.now(),
                history=await uow.studio.messages_of(chat_id) if request.model_kind == "image" else (),
            )
            await _apply(uow, change, None)
        log.info(
            "studio message posted",
            extra={
                "chat_id": chat_id,
                "kind": request.kind,
                "provider": request.provider,
                "replies": rules.replies_of(request),
            },
        )
        return _posted(list(change.messages)), True

    async def cancel_reply(self, caller: Caller, message_id: str) -> JsonObject:
        async with self.uow() as uow:
            reply = await uow.studio.message(message_id, lock=True)
            if reply is None or reply.admin_id != caller.admin_id:
                raise MessageNotFound("no such message")
            change = rules.cancel_reply(reply, by=caller.admin_id, now=self.clock.now())
            await _apply(uow, change, None)
        return message_view(change.messages[0] if change.messages else reply)

    async def sweep_overdue_replies(self, limit: int = 100) -> int:
        """Fail replies that can no longer end by themselves (`rules.time_out_reply`); how many it ended."""
        now = self.clock.now()
        async with self.uow() as uow:
            overdue = await uow.studio.overdue_replies(now - rules.REPLY_GIVE_UP_AFTER, limit)
        ended = await sweep(overdue, lambda reply_id: self._time_out(reply_id, now), what="studio reply")
        if ended:
            log.warning("overdue studio replies failed", extra={"count": ended})
        return ended

    async def _time_out(self, reply_id: str, now: datetime) -> bool:
        """One overdue reply failed, in a transaction of its own; whether it changed."""
        async with self.uow() as uow:
            reply = await uow.studio.message(reply_id, lock=True)
            if reply is None:
                return False
            change = rules.time_out_reply(reply, now=now)
            await _apply(uow, change, None)
        return bool(change.messages)

    async def _request(self, chat: Chat, fields: Mapping[str, object]) -> MessageRequest:
        kind: MessageKind = "image" if fields.get("kind") == "image" else "text"
        provider = str(fields.get("provider") or chat.provider)
        model = str(fields.get("model") or chat.model)
        model_kind = await self.models.model_kind(provider, model)
        if model_kind is None:
            raise StudioRefused(f"{provider} has no model {model!r}", code="unknown_model", field="model")
        options = fields.get("options")
        quoted = fields.get("quoted_image_ids")
        return MessageRequest(
            content=str(fields.get("content") or ""),
            kind=kind,
            provider=provider,
            model=model,
            model_kind=model_kind,
            quoted_image_ids=tuple(str(q) for q in quoted) if isinstance(quoted, list) else (),
            variants=int(fields.get("variants") or 1),  # type: ignore[call-overload]
            options=dict(options) if isinstance(options, dict) else {},
        )

    # --- reactions to step events of scope admin (in the consumer's unit of work) ---------------------

    async def reply_started(self, event: StepStarted, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        reply = await uow.studio.message(event.task_id, lock=True)
        if reply is not None:
            await _apply(uow, rules.start_reply(reply), envelope)

    async def reply_completed(self, event: StepCompleted, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        reply = await uow.studio.message(event.task_id, lock=True)
        if reply is None:
            return
        chat = await uow.studio.chat(reply.chat_id, lock=True) if reply.kind == "text" else None
        output = rules.reply_output(event.output.assets, event.output.metadata)
        await _apply(uow, rules.complete_reply(reply, chat, output, self.clock.now()), envelope)

    async def reply_failed(self, event: StepFailed, envelope: Envelope, uow: TasksUnitOfWork) -> None:
        reply = await uow.studio.message(event.task_id, lock=True)
        if reply is not None:
            change = rules.fail_reply(
                reply, error_code=event.error_code, error_message=event.error_message, now=self.clock.now()
            )
            await _apply(uow, change, envelope)

    # --- who may see and change a chat ---------------------------------------------------------------

    async def _readable(self, uow: TasksUnitOfWork, caller: Caller, chat_id: str) -> Chat:
        chat = await uow.studio.chat(chat_id)
        if chat is None or not rules.visible_to(chat, caller.admin_id, super_admin=caller.super_admin):
            raise ChatNotFound("no such chat")
        return chat

    async def _writable(
        self, uow: TasksUnitOfWork, caller: Caller, chat_id: str, *, lock: bool = False
    ) -> Chat:
        chat = await uow.studio.chat(chat_id, lock=lock)
        if chat is None or chat.admin_id != caller.admin_id:
            raise ChatNotFound("no such chat")
        return chat


async def _apply(uow: TasksUnitOfWork, change: StudioChange, caused_by: Envelope | None) -> None:
    for message in change.messages:
        rules.check_invariants(message)
    if change.chat is not None:
        await uow.studio.save_chat(change.chat)
    if change.messages:
        await uow.studio.save_messages(change.messages)
    for event in change.events:
        uow.publish(event, caused_by=caused_by)


def _replayed(messages: list[Message], chat_id: str, fields: Mapping[str, object]) -> JsonObject:
    """The messages a key made before, for a retry of the same post: the same chat and prompt. A key sent
    again with another chat or prompt is a client's mistake, refused rather than answered with another
    chat's messages."""
    prompt = next(m for m in messages if m.role == "user")
    if prompt.chat_id != chat_id or prompt.content != str(fields.get("content") or ""):
        raise IdempotencyKeyReused()
    return _posted(messages)


def _posted(messages: list[Message]) -> JsonObject:
    prompt = next(m for m in messages if m.role == "user")
    replies: list[JsonValue] = [message_view(m) for m in messages if m.role == "assistant"]
    return {"message": message_view(prompt), "replies": replies}


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def chat_view(chat: Chat) -> JsonObject:
    return {
        "id": chat.id,
        "admin_id": chat.admin_id,
        "title": chat.title,
        "project": chat.project,
        "provider": chat.provider,
        "model": chat.model,
        "system_prompt": chat.system_prompt,
        "store": chat.store,
        "last_response_id": chat.last_response_id,
        "archived_at": _iso(chat.archived_at),
        "created_at": _iso(chat.created_at),
        "updated_at": _iso(chat.updated_at),
    }


def message_view(message: Message) -> JsonObject:
    usage = message.usage
    return {
        "id": message.id,
        "chat_id": message.chat_id,
        "role": message.role,
        "kind": message.kind,
        "content": message.content,
        "quoted_image_ids": list(message.quoted_image_ids),
        "provider": message.provider,
        "model": message.model,
        "options": dict(message.options),
        "images": [{"asset_id": a.asset_id, "role": a.role} for a in message.images],
        "status": message.status,
        "batch_id": message.batch_id,
        "variant": message.variant,
        "response_id": message.response_id,
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
        "error_code": message.error_code,
        "error_message": message.error_message,
        "created_at": _iso(message.created_at),
        "finished_at": _iso(message.finished_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
