"""`/api/admin/studio/*`: the admin AI studio, every route a declared forward — chats and messages to tasks,
the models the prompt bar offers to providers. Replies stream on `GET /api/stream` (see `domain.sse`).

The routes of one chat or message are open to any signed-in caller and tasks answers 404 to anyone but
the chat's admin (and, to read, a super admin): a plain user learns no more of a chat than another admin
does. The lists and creation are for admins (403 otherwise)."""

from __future__ import annotations

from funmagic_contracts.api.studio import (
    Chat,
    ChatCreate,
    ChatPage,
    ChatQuery,
    ChatUpdate,
    Message,
    MessagePage,
    MessagePost,
    MessageQuery,
    PostedMessage,
    ProjectList,
    StudioProviderList,
)
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, operations
from funmagic_kit.api import Operation

__all__ = ["studio_operations"]

# `Business rule:` marks what refuses a request its schema allows, for the fuzz test.
_MODEL_RULE = (
    "Business rule: `provider` must be an active studio provider and `model` one of its chat (or, for "
    "`kind: image`, image) models, as `GET /api/admin/studio/providers` lists them (422 `unknown_model`, "
    "`unknown_provider`)."
)
_BATCH_RULE = (
    "Business rule: a batch — a `kind: image` message quoting 2–8 images, or any message to a `utility` "
    "model (fal's `fal-ai/clarity-upscaler`, `fal-ai/bria/background/remove`) — applies the prompt to each "
    "image on its own: one reply per image, each its own job with that one image, in the order quoted. A "
    "batch takes `variants: 1` (422 `batch_variants`: variants × images would multiply the jobs); one "
    "quoted image (or none) keeps `variants`. A utility model needs at least one image (422 "
    "`image_required`) and takes only its options (`upscale_factor` 1–4, `creativity` and `resemblance` "
    "0–1; 422 naming the option). More than 8 images: 422 (`too_many_images`)."
)


def studio_operations(tasks: ServiceClient, providers: ServiceClient) -> list[Operation]:
    tag, public, internal = "admin: studio", "/api/admin/studio", "/v1/admin/studio"
    chat, internal_chat = public + "/chats/{chat_id}", internal + "/chats/{chat_id}"
    return operations(
        Forward("GET", public + "/providers", providers, internal + "/providers",
                "The studio's providers and the models each offers", tag, "studio_providers",
                access="admin", reply=StudioProviderList,
                description="The active studio providers (and the built-in `local` one), each with its chat "
                            "and image models and their options, for the prompt bar."),
        Forward("GET", public + "/projects", tasks, internal + "/projects",
                "My projects (names that group my chats) with their chat counts", tag, "studio_projects",
                access="admin", reply=ProjectList),
        Forward("GET", public + "/chats", tasks, internal + "/chats",
                "My chats, most recently active first", tag, "list_chats", access="admin", query=ChatQuery,
                reply=ChatPage,
                description="`all=true` lists every admin's chats (super admins only). " + CURSOR_RULE),
        Forward("POST", public + "/chats", tasks, internal + "/chats",
                "Start a chat", tag, "create_chat", access="admin", body=ChatCreate, reply=Chat,
                status=201, errors=(409, 422), description=_MODEL_RULE, idempotent=True),
        Forward("GET", chat, tasks, internal_chat,
                "One of my chats", tag, "get_chat", access="user", owner="admin", reply=Chat, errors=(404,)),
        Forward("PATCH", chat, tasks, internal_chat,
                "Rename, move, archive or re-prompt a chat", tag, "update_chat", access="user",
                owner="admin", body=ChatUpdate, dump="exclude_unset", reply=Chat, errors=(404, 422),
                description="Only the fields sent change. " + _MODEL_RULE),
        Forward("DELETE", chat, tasks, internal_chat,
                "Delete a chat, its messages and the images its replies made", tag, "delete_chat",
                access="user", owner="admin", status=204, errors=(404,),
                description="A reply still running is cancelled first."),
        Forward("GET", chat + "/messages", tasks, internal_chat + "/messages",
                "A chat's messages, newest first", tag, "list_messages", access="user", owner="admin",
                query=MessageQuery, reply=MessagePage, errors=(404,), description=CURSOR_RULE),
        Forward("POST", chat + "/messages", tasks, internal_chat + "/messages",
                "Send a prompt; the replies run in the background (send an Idempotency-Key to retry safely)",
                tag, "post_message", access="user", owner="admin", body=MessagePost, reply=PostedMessage,
                status=202, errors=(404, 409, 422), idempotent=True,
                description="`kind: text` continues the conversation (409 while a reply of the chat still "
                            "runs); `kind: image` asks for `variants` images, each its own job. Replies "
                            "stream on `GET /api/stream` as `reply_*` events. " + _MODEL_RULE
                            + " Quoted images must be outputs of this chat or the admin's uploads. "
                            + _BATCH_RULE),
        Forward("POST", public + "/messages/{message_id}/cancel", tasks,
                internal + "/messages/{message_id}/cancel",
                "Cancel a running reply", tag, "cancel_reply", access="user", owner="admin", reply=Message,
                errors=(404,)),
    )  # fmt: skip
