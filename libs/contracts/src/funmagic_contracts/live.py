"""The studio's live channel: pieces of a reply being made (text as it is written, partial images), from
providers to the gateway's SSE streams, on one capped Redis stream rather than Kafka.

Why Redis and not a topic: a reply writes hundreds of small deltas in seconds and each matters for a few
seconds only; through the outbox each would be a database row, a Kafka record and an inbox row. The pieces
are best effort by design — the reply's final state (`StudioReplyCompleted`, on `tasks.events`) carries the
whole text and the stored images, so a lost piece only makes the live view coarser, never wrong.

Each Redis stream entry has one field, `piece`: a `LiveReplyPiece` as JSON. The stream is capped
(`MAXLEN ~ LIVE_STREAM_MAXLEN`) and the gateway reads it in a consumer group, so each piece reaches the
SSE streams once whichever gateway replica reads it (and a redelivered piece is dropped there by its key).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from funmagic_contracts.base import ContractModel, Id

__all__ = ["LIVE_STREAM", "LIVE_STREAM_FIELD", "LIVE_STREAM_MAXLEN", "LiveReplyPiece"]

LIVE_STREAM = "studio:{live}:replies"
"""The Redis stream key (a Redis Cluster hash tag: one slot)."""
LIVE_STREAM_FIELD = "piece"
LIVE_STREAM_MAXLEN = 20_000


class LiveReplyPiece(ContractModel):
    message_id: Id = Field(description="The reply (the step's task id).")
    user_id: Id = Field(description="Its admin, whose SSE stream shows it.")
    run: str = Field(
        min_length=1,
        max_length=64,
        description="One call of the provider: a retried reply starts a new run, whose text starts over.",
    )
    seq: int = Field(ge=0, description="Order within the run's pieces, from 0.")
    kind: Literal["text_delta", "partial_image"]
    text: str | None = Field(default=None, description="`text_delta`: the text to append.")
    index: int | None = Field(default=None, ge=0, description="`partial_image`: which partial image.")
    image: str | None = Field(
        default=None, description="`partial_image`: a small JPEG preview as a `data:` URL."
    )
