"""Internal HTTP API of tasks for the admin AI studio (`/v1/admin/studio/*`, admins only): chats, their
messages, posting a prompt and cancelling a reply. The bodies and queries are the public models of
`funmagic_contracts.api.studio`, so the gateway and this service refuse alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from funmagic_contracts.api.studio import ChatCreate, ChatQuery, ChatUpdate, MessagePost, MessageQuery
from funmagic_kit.api import (
    idempotency_key,
    path_uuid,
    read_body,
    read_query,
    request_key,
    require_principal,
    require_role,
)
from funmagic_kit.http import HttpProblem
from funmagic_tasks.application.studio import Caller, StudioService

__all__ = ["StudioApp"]


def _caller(request: web.Request) -> Caller:
    principal = require_role(request, "admin")
    return Caller(principal.user_id, super_admin=principal.has_role("super_admin"))


def _chat_caller(request: web.Request, what: str = "chat") -> Caller:
    """For the routes of one chat or message: anyone but an admin gets the answer of a chat not theirs."""
    principal = require_principal(request)
    if not principal.has_role("admin"):
        raise HttpProblem(404, "Not Found", f"no such {what}")
    return Caller(principal.user_id, super_admin=principal.has_role("super_admin"))


@dataclass(frozen=True)
class StudioApp:
    studio: StudioService

    def routes(self) -> Sequence[web.RouteDef]:
        base, chat = "/v1/admin/studio", "/v1/admin/studio/chats/{chat_id}"
        return [
            web.get(base + "/projects", self.projects),
            web.get(base + "/chats", self.list_chats),
            web.post(base + "/chats", self.create_chat),
            web.get(chat, self.get_chat),
            web.patch(chat, self.update_chat),
            web.delete(chat, self.delete_chat),
            web.get(chat + "/messages", self.messages),
            web.post(chat + "/messages", self.post_message),
            web.post(base + "/messages/{message_id}/cancel", self.cancel_reply),
        ]

    async def projects(self, request: web.Request) -> web.Response:
        return web.json_response(await self.studio.projects(_caller(request)))

    async def list_chats(self, request: web.Request) -> web.Response:
        caller = _caller(request)
        query = read_query(request, ChatQuery)
        return web.json_response(
            await self.studio.list_chats(
                caller, project=query.project if "project" in request.query else None,
                archived=query.archived, every_admin=query.all, limit=query.limit, cursor=query.cursor,
            )
        )  # fmt: skip

    async def create_chat(self, request: web.Request) -> web.Response:
        caller = _caller(request)
        body = await read_body(request, ChatCreate)
        # A retried request (same Idempotency-Key and body) creates once.
        key = request_key(request, "chats.create", body)
        chat = await self.studio.create_chat(caller, body.model_dump(), key=key)
        return web.json_response(chat, status=201)

    async def get_chat(self, request: web.Request) -> web.Response:
        caller = _chat_caller(request)
        return web.json_response(await self.studio.get_chat(caller, path_uuid(request, "chat_id", "chat")))

    async def update_chat(self, request: web.Request) -> web.Response:
        caller = _chat_caller(request)
        chat_id = path_uuid(request, "chat_id", "chat")
        body = await read_body(request, ChatUpdate)
        return web.json_response(
            await self.studio.update_chat(caller, chat_id, body.model_dump(exclude_unset=True))
        )

    async def delete_chat(self, request: web.Request) -> web.Response:
        caller = _chat_caller(request)
        await self.studio.delete_chat(caller, path_uuid(request, "chat_id", "chat"))
        return web.Response(status=204)

    async def messages(self, request: web.Request) -> web.Response:
        caller = _chat_caller(request)
        chat_id = path_uuid(request, "chat_id", "chat")
        query = read_query(request, MessageQuery)
        return web.json_response(
            await self.studio.messages(caller, chat_id, limit=query.limit, cursor=query.cursor)
        )

    async def post_message(self, request: web.Request) -> web.Response:
        caller = _chat_caller(request)
        chat_id = path_uuid(request, "chat_id", "chat")
        body = await read_body(request, MessagePost)
        posted, created = await self.studio.post_message(
            caller, chat_id, body.model_dump(), idempotency_key(request)
        )
        return web.json_response(posted, status=202 if created else 200)

    async def cancel_reply(self, request: web.Request) -> web.Response:
        caller = _chat_caller(request, "message")
        message_id = path_uuid(request, "message_id", "message")
        return web.json_response(await self.studio.cancel_reply(caller, message_id))
