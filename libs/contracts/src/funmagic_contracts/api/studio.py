"""`/api/admin/studio/*`: the admin AI studio's chats, messages and the models it can use.

Request models and the service route they are the body (or query) of — the same fields:

    ChatCreate            POST /v1/admin/studio/chats (tasks) → 201 Chat
    ChatUpdate            PATCH /v1/admin/studio/chats/{chat_id} → Chat (rename, move, archive, prompt)
    ChatQuery             GET /v1/admin/studio/chats (query) → ChatPage
    MessageQuery          GET /v1/admin/studio/chats/{chat_id}/messages (query) → MessagePage
    MessagePost           POST /v1/admin/studio/chats/{chat_id}/messages → 202 PostedMessage
    (no body)             POST /v1/admin/studio/messages/{message_id}/cancel → Message
    (no body)             DELETE /v1/admin/studio/chats/{chat_id} → 204
    (no query)            GET /v1/admin/studio/projects → ProjectList
    (no query)            GET /v1/admin/studio/providers (providers) → StudioProviderList

A chat is its admin's: another admin gets 404 for it; a super admin sees every chat (`all=true` lists
them). A message of `kind` `text` asks a chat model and continues the chat's conversation (only one reply
runs at a time in a chat: the next turn chains from it); `image` asks for `variants` images (1–8, each its
own job under the admin limiter), from an image model or from a chat model's image tool. An `image`
message quoting 2–8 images, or any message to a `utility` model (which needs at least one image), is a
batch: one reply per image, each its own job with that one image (`variants` must then be 1).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from funmagic_contracts.api.base import Reply, Request
from funmagic_contracts.api.catalog import AssetId

__all__ = [
    "MAX_QUOTED_IMAGES",
    "MAX_VARIANTS",
    "Chat",
    "ChatCreate",
    "ChatPage",
    "ChatQuery",
    "ChatUpdate",
    "Message",
    "MessageImage",
    "MessageKind",
    "MessagePage",
    "MessagePost",
    "MessageQuery",
    "MessageRole",
    "MessageStatus",
    "PostedMessage",
    "Project",
    "ProjectList",
    "StudioModel",
    "StudioProvider",
    "StudioProviderList",
    "Usage",
]

MAX_VARIANTS = 8
MAX_QUOTED_IMAGES = 8
MessageKind = Literal["text", "image"]
MessageRole = Literal["user", "assistant"]
MessageStatus = Literal["pending", "running", "completed", "failed", "cancelled"]

_PROJECT = Field(
    None, min_length=1, max_length=80, description="A name that groups chats (none: not in a project)."
)
_SYSTEM_PROMPT = Field(None, max_length=8000, description="Sent as the model's `instructions` on every turn.")


# --- requests -------------------------------------------------------------------------------------------


class ChatCreate(Request):
    title: str | None = Field(None, min_length=1, max_length=200, description="Default: “New chat”.")
    project: str | None = _PROJECT
    provider: str = Field("local", min_length=1, max_length=63, description="A studio provider's name.")
    model: str = Field("local-chat", min_length=1, max_length=100)
    system_prompt: str | None = _SYSTEM_PROMPT
    store: bool = Field(True, description="Whether the provider keeps the turns (needed to chain them).")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class ChatUpdate(Request):
    """Only the fields sent change; `project: null` takes the chat out of its project, `system_prompt: null`
    clears it. A chat always has a title, a provider and a model: those are never null."""

    # Defaults of None mean "not sent" (only the fields sent change); a null sent is refused, and the
    # document shows no default (null is not a value of these fields).
    title: str = Field(None, min_length=1, max_length=200, json_schema_extra=_no_default)  # type: ignore[assignment]
    project: str | None = _PROJECT
    provider: str = Field(None, min_length=1, max_length=63, json_schema_extra=_no_default)  # type: ignore[assignment]
    model: str = Field(None, min_length=1, max_length=100, json_schema_extra=_no_default)  # type: ignore[assignment]
    system_prompt: str | None = _SYSTEM_PROMPT
    archived: bool = Field(None, json_schema_extra=_no_default)  # type: ignore[assignment]


class ChatQuery(Request):
    project: str | None = Field(None, max_length=80, description="Only chats of this project.")
    archived: bool = Field(False, description="List archived chats instead of active ones.")
    all: bool = Field(False, description="Super admins: every admin's chats.")
    limit: int = Field(30, ge=1, le=100)
    cursor: str | None = Field(None, max_length=300, description="`next_cursor` of the previous page.")


class MessageQuery(Request):
    limit: int = Field(30, ge=1, le=100)
    cursor: str | None = Field(
        None, max_length=300, description="`next_cursor` of the previous page (older messages)."
    )


class MessagePost(Request):
    content: str = Field(min_length=1, max_length=16000, description="The prompt.")
    kind: MessageKind = "text"
    provider: str | None = Field(None, min_length=1, max_length=63, description="Default: the chat's.")
    model: str | None = Field(None, min_length=1, max_length=100, description="Default: the chat's.")
    quoted_image_ids: list[AssetId] = Field(
        default_factory=list,
        max_length=MAX_QUOTED_IMAGES,
        json_schema_extra={"uniqueItems": True},
        description="Images sent with the prompt: outputs of this chat or the admin's uploads (asset ids).",
    )
    variants: int = Field(
        1, ge=1, le=MAX_VARIANTS,
        description="`image` only: how many images, each a job (1 for a batch: one reply per quoted image).",
    )  # fmt: skip
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The model's options (`size`, `quality`, `output_format`, `background`, `moderation`; "
        "Gemini's `aspectRatio`, `imageSize`; "
        "a utility model's: `upscale_factor`, `creativity`, `resemblance`).",
    )

    @field_validator("quoted_image_ids")
    @classmethod
    def _canonical_ids(cls, values: list[str]) -> list[str]:
        canonical = []
        for value in values:
            try:
                canonical.append(str(uuid.UUID(value)))
            except ValueError:
                raise ValueError("each quoted image id must be an asset id (a UUID)") from None
        if len(set(canonical)) != len(canonical):
            raise ValueError("an image is quoted twice")
        return canonical


# --- answers --------------------------------------------------------------------------------------------


class Chat(Reply):
    id: str
    admin_id: str
    title: str
    project: str | None = None
    provider: str
    model: str
    system_prompt: str | None = None
    store: bool
    last_response_id: str | None = Field(None, description="The provider's id of the chat's last turn.")
    archived_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class ChatPage(Reply):
    items: list[Chat]
    next_cursor: str | None = None


class MessageImage(Reply):
    asset_id: str
    role: str = "image"


class Usage(Reply):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class Message(Reply):
    id: str
    chat_id: str
    role: MessageRole
    kind: MessageKind
    content: str
    quoted_image_ids: list[str]
    provider: str
    model: str
    options: dict[str, Any] = Field(default_factory=dict)
    images: list[MessageImage]
    status: MessageStatus
    batch_id: str | None = Field(
        None, description="The user message a reply answers (its variants share it)."
    )
    variant: int | None = Field(None, description="Which of the batch's images (0-based).")
    response_id: str | None = None
    usage: Usage | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class MessagePage(Reply):
    items: list[Message] = Field(description="Newest first.")
    next_cursor: str | None = None


class PostedMessage(Reply):
    message: Message = Field(description="The admin's message.")
    replies: list[Message] = Field(description="The replies it asked for, pending (one per variant).")


class Project(Reply):
    name: str
    chats: int


class ProjectList(Reply):
    items: list[Project]


class StudioModel(Reply):
    id: str
    kind: Literal["text", "image", "utility"] = Field(
        description="`text`: a chat model (it can draw too); `image`: an image model; `utility`: works on "
        "each quoted image on its own (upscale, background removal), posted as `kind: image`."
    )
    options: dict[str, list[str]] = Field(
        default_factory=dict, description="Option name → allowed values, for the prompt bar."
    )


class StudioProvider(Reply):
    name: str
    type: str
    models: list[StudioModel]


class StudioProviderList(Reply):
    items: list[StudioProvider]
