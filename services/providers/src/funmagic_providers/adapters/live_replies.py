"""A studio reply's live pieces (text deltas, partial images) onto the Redis stream the gateway reads
(`funmagic_contracts.live`). Best effort: a piece that cannot be written is logged and dropped — the
reply's final state carries everything, and a live view must never fail or slow the reply itself."""

from __future__ import annotations

import asyncio
import base64
import io
import uuid

from PIL import Image, UnidentifiedImageError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from funmagic_contracts.live import LIVE_STREAM, LIVE_STREAM_FIELD, LIVE_STREAM_MAXLEN, LiveReplyPiece
from funmagic_kit.logs import get_logger
from funmagic_providers.domain.steps import LiveOutput

__all__ = ["PREVIEW_EDGE", "RedisLiveReplies"]

log = get_logger(__name__)

PREVIEW_EDGE = 256
"""Partial images travel as JPEG previews at most this many pixels on a side (a few KB each)."""


class RedisLiveReplies:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    def for_reply(self, user_id: str, message_id: str) -> LiveOutput:
        return _LiveReply(self._redis, user_id, message_id)


class _LiveReply:
    def __init__(self, redis: Redis, user_id: str, message_id: str) -> None:
        self._redis = redis
        self._user_id = user_id
        self._message_id = message_id
        self._run = uuid.uuid4().hex[:12]  # this call's pieces: a retry's text starts over
        self._seq = 0

    async def text_delta(self, text: str) -> None:
        if text:
            await self._send(kind="text_delta", text=text)

    async def partial_image(self, index: int, data: bytes, content_type: str) -> None:
        try:
            preview = await asyncio.to_thread(_preview, data)
        except (UnidentifiedImageError, OSError, ValueError):
            log.warning("partial image unreadable; not shown live", extra={"message_id": self._message_id})
            return
        await self._send(kind="partial_image", index=index, image=preview)

    async def _send(self, **fields: object) -> None:
        piece = LiveReplyPiece(
            message_id=self._message_id, user_id=self._user_id, run=self._run, seq=self._seq, **fields
        )
        self._seq += 1
        try:
            await self._redis.xadd(
                LIVE_STREAM,
                {LIVE_STREAM_FIELD: piece.model_dump_json(exclude_none=True)},
                maxlen=LIVE_STREAM_MAXLEN,
                approximate=True,
            )
        except (RedisError, OSError) as error:
            log.warning(
                "live reply piece dropped", extra={"message_id": self._message_id, "error": str(error)}
            )


def _preview(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
