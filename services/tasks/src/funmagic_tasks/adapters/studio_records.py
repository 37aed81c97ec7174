"""The studio's chats and messages on Postgres (`admin_chats`, `admin_messages`), mapped to and from the
`domain.studio` aggregates. Lists are keyset pages cut in SQL: chats by (updated_at, id), messages by the
order they were written in (`seq`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from funmagic_contracts.base import OutputAsset
from funmagic_kit.pagination import decode_cursor, page_of
from funmagic_kit.rows import from_row, to_row
from funmagic_tasks.domain.studio import Chat, Message, Usage

__all__ = ["StudioRecords"]

Row = Mapping[str, Any]

CHAT_COLUMNS = (
    "id::text AS id, admin_id::text AS admin_id, title, project, provider, model, system_prompt, store, "
    "openai_response_id AS last_response_id, archived_at, created_at, updated_at"
)
MESSAGE_COLUMNS = (
    "id::text AS id, seq, chat_id::text AS chat_id, admin_id::text AS admin_id, role, kind, content, "
    "quoted_image_ids::text[] AS quoted_image_ids, provider, model, input AS options, images, status, "
    "batch_id::text AS batch_id, variant, response_id, usage, error_code, error_message, idempotency_key, "
    "created_at, finished_at"
)

INSERT_CHAT = f"""
INSERT INTO admin_chats (id, admin_id, title, project, provider, model, system_prompt, store,
                         openai_response_id, archived_at, created_at, updated_at)
VALUES (%(id)s, %(admin_id)s, %(title)s, %(project)s, %(provider)s, %(model)s, %(system_prompt)s, %(store)s,
        %(last_response_id)s, %(archived_at)s, %(created_at)s, %(updated_at)s)
RETURNING {CHAT_COLUMNS}
"""

SAVE_CHAT = f"""
UPDATE admin_chats SET title = %(title)s, project = %(project)s, provider = %(provider)s, model = %(model)s,
    system_prompt = %(system_prompt)s, openai_response_id = %(last_response_id)s,
    archived_at = %(archived_at)s, updated_at = %(updated_at)s
WHERE id = %(id)s
RETURNING {CHAT_COLUMNS}
"""

CHAT_PAGE = f"""
SELECT {CHAT_COLUMNS} FROM admin_chats
WHERE (%(admin_id)s::uuid IS NULL OR admin_id = %(admin_id)s::uuid)
  AND (archived_at IS NOT NULL) = %(archived)s
  AND (NOT %(by_project)s OR project IS NOT DISTINCT FROM %(project)s)
  AND (%(after_updated)s::timestamptz IS NULL OR (updated_at, id) < (%(after_updated)s, %(after_id)s::uuid))
ORDER BY updated_at DESC, id DESC LIMIT %(limit)s
"""

UPSERT_MESSAGE = """
INSERT INTO admin_messages (id, chat_id, admin_id, role, kind, content, quoted_image_ids, provider, model,
                            input, images, status, batch_id, variant, response_id, usage, error_code,
                            error_message, idempotency_key, created_at, finished_at)
VALUES (%(id)s, %(chat_id)s, %(admin_id)s, %(role)s, %(kind)s, %(content)s, %(quoted_image_ids)s::uuid[],
        %(provider)s, %(model)s, %(options)s, %(images)s, %(status)s, %(batch_id)s, %(variant)s,
        %(response_id)s, %(usage)s, %(error_code)s, %(error_message)s, %(idempotency_key)s, %(created_at)s,
        %(finished_at)s)
ON CONFLICT (id) DO UPDATE SET content = excluded.content, images = excluded.images,
    status = excluded.status, response_id = excluded.response_id, usage = excluded.usage,
    error_code = excluded.error_code, error_message = excluded.error_message,
    finished_at = excluded.finished_at
"""

MESSAGE_PAGE = f"""
SELECT {MESSAGE_COLUMNS} FROM admin_messages
WHERE chat_id = %(chat_id)s AND (%(before)s::bigint IS NULL OR seq < %(before)s)
ORDER BY seq DESC LIMIT %(limit)s
"""


class StudioRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def _one(self, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> Row | None:
        async with self._conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchone()

    async def _all(self, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> list[Row]:
        async with self._conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    # --- chats ---------------------------------------------------------------------------------------

    async def add_chat(self, chat: Chat) -> Chat:
        row = await self._one(INSERT_CHAT, to_row(chat))
        assert row is not None
        return from_row(Chat, row)

    async def chat(self, chat_id: str, *, lock: bool = False) -> Chat | None:
        row = await self._one(
            f"SELECT {CHAT_COLUMNS} FROM admin_chats WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            [chat_id],
        )
        return None if row is None else from_row(Chat, row)

    async def save_chat(self, chat: Chat) -> Chat:
        row = await self._one(SAVE_CHAT, to_row(chat))
        assert row is not None
        return from_row(Chat, row)

    async def delete_chat(self, chat_id: str) -> None:
        await self._conn.execute("DELETE FROM admin_chats WHERE id = %s", [chat_id])

    async def chats_page(
        self,
        *,
        admin_id: str | None,
        archived: bool,
        project: str | None,
        by_project: bool,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Chat], str | None]:
        after_updated, after_id = decode_cursor(cursor, datetime, uuid.UUID) if cursor else (None, None)
        rows = await self._all(
            CHAT_PAGE,
            {
                "admin_id": admin_id,
                "archived": archived,
                "project": project,
                "by_project": by_project,
                "after_updated": after_updated,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        chats, next_cursor = page_of([from_row(Chat, r) for r in rows], limit, lambda c: (c.updated_at, c.id))
        return chats, next_cursor

    async def projects(self, admin_id: str) -> list[tuple[str, int]]:
        rows = await self._all(
            "SELECT project, count(*)::int AS chats FROM admin_chats "
            "WHERE admin_id = %s AND project IS NOT NULL AND archived_at IS NULL "
            "GROUP BY project ORDER BY lower(project), project",
            [admin_id],
        )
        return [(r["project"], r["chats"]) for r in rows]

    # --- messages ------------------------------------------------------------------------------------

    async def save_messages(self, messages: Sequence[Message]) -> None:
        """Insert new messages (in order: their order is the chat's) and update changed ones."""
        async with self._conn.cursor() as cur:
            await cur.executemany(UPSERT_MESSAGE, [_message_row(m) for m in messages])

    async def message(self, message_id: str, *, lock: bool = False) -> Message | None:
        row = await self._one(
            f"SELECT {MESSAGE_COLUMNS} FROM admin_messages WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            [message_id],
        )
        return None if row is None else _message(row)

    async def by_idempotency_key(self, admin_id: str, key: str) -> list[Message]:
        """The prompt sent with this key and its replies (empty when the key is new)."""
        rows = await self._all(
            f"SELECT {MESSAGE_COLUMNS} FROM admin_messages WHERE id IN ("
            "  SELECT id FROM admin_messages WHERE admin_id = %(admin)s AND idempotency_key = %(key)s"
            "  UNION SELECT r.id FROM admin_messages r JOIN admin_messages p ON r.batch_id = p.id"
            "  WHERE p.admin_id = %(admin)s AND p.idempotency_key = %(key)s"
            ") ORDER BY seq",
            {"admin": admin_id, "key": key},
        )
        return [_message(r) for r in rows]

    async def active_replies(self, chat_id: str) -> list[Message]:
        rows = await self._all(
            f"SELECT {MESSAGE_COLUMNS} FROM admin_messages "
            "WHERE chat_id = %s AND status IN ('pending', 'running') ORDER BY seq",
            [chat_id],
        )
        return [_message(r) for r in rows]

    async def overdue_replies(self, created_before: datetime, limit: int) -> list[str]:
        rows = await self._all(
            "SELECT id::text AS id FROM admin_messages"
            " WHERE role = 'assistant' AND status IN ('pending', 'running') AND created_at < %s"
            " ORDER BY created_at LIMIT %s",
            [created_before, limit],
        )
        return [row["id"] for row in rows]

    async def messages_of(self, chat_id: str) -> list[Message]:
        rows = await self._all(
            f"SELECT {MESSAGE_COLUMNS} FROM admin_messages WHERE chat_id = %s ORDER BY seq", [chat_id]
        )
        return [_message(r) for r in rows]

    async def messages_page(
        self, chat_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Message], str | None]:
        (before,) = decode_cursor(cursor, int) if cursor else (None,)
        rows = await self._all(MESSAGE_PAGE, {"chat_id": chat_id, "before": before, "limit": limit + 1})
        page, next_cursor = page_of(rows, limit, lambda r: (r["seq"],))
        return [_message(r) for r in page], next_cursor


def _message_row(message: Message) -> dict[str, Any]:
    return to_row(
        message,
        quoted_image_ids=list(message.quoted_image_ids),
        options=Jsonb(message.options),
        images=Jsonb([{"asset_id": a.asset_id, "role": a.role} for a in message.images]),
        usage=None if message.usage is None else Jsonb(to_row(message.usage)),
    )


def _message(row: Row) -> Message:
    usage = row["usage"]
    return from_row(
        Message,
        row,
        quoted_image_ids=tuple(row["quoted_image_ids"] or ()),
        options=dict(row["options"] or {}),
        images=tuple(OutputAsset(asset_id=i["asset_id"], role=i["role"]) for i in row["images"] or ()),
        usage=None if usage is None else Usage(**usage),
        variant=row["variant"],
    )
