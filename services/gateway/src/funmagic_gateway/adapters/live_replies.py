"""The studio's live channel, read side: pieces of replies being made, from the Redis stream providers
writes (`funmagic_contracts.live`), read in the consumer group `gateway` so each piece is taken by one
gateway replica. Read with NOACK: a piece is worth something for seconds, so one lost with a crashed
replica is not redelivered later (the reply's final state still arrives through Kafka)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from funmagic_contracts.live import LIVE_STREAM, LIVE_STREAM_FIELD, LiveReplyPiece
from funmagic_gateway.adapters.task_streams import StreamUnavailable, stream_messages

__all__ = ["LIVE_GROUP", "LiveReplyReader"]

log = logging.getLogger(__name__)

LIVE_GROUP = "gateway"


class LiveReplyReader:
    def __init__(self, reads: Redis, consumer: str) -> None:
        self._reads = reads
        self._consumer = consumer
        self._group_ready = False

    async def read(self, *, block_seconds: float, count: int = 200) -> list[LiveReplyPiece]:
        """The next pieces for this replica, waiting up to `block_seconds` for one (empty: none came)."""
        try:
            if not self._group_ready:
                await self._create_group()
            reply = await self._reads.xreadgroup(
                LIVE_GROUP, self._consumer, {LIVE_STREAM: ">"}, count=count,
                block=max(1, round(block_seconds * 1000)), noack=True,
            )  # fmt: skip
        except ResponseError as error:
            if "NOGROUP" in str(error):  # the stream was deleted (a flushed Redis): create it again
                self._group_ready = False
            raise StreamUnavailable(f"cannot read {LIVE_STREAM}: {error}") from error
        except (RedisError, OSError) as error:
            raise StreamUnavailable(f"cannot read {LIVE_STREAM}: {error}") from error
        return [
            piece
            for piece in map(_piece, (fields for _id, fields in stream_messages(reply)))
            if piece is not None
        ]

    async def _create_group(self) -> None:
        try:
            await self._reads.xgroup_create(LIVE_STREAM, LIVE_GROUP, id="$", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):  # another replica made it first: fine
                raise
        self._group_ready = True


def _piece(fields: dict[Any, Any]) -> LiveReplyPiece | None:
    raw = fields.get(LIVE_STREAM_FIELD.encode(), fields.get(LIVE_STREAM_FIELD))
    try:
        return LiveReplyPiece.model_validate_json(raw)
    except (ValidationError, TypeError, ValueError):
        log.warning("unreadable live reply piece skipped")
        return None
