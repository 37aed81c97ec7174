"""A background worker of the gateway: studio replies' live pieces (Redis live channel) into the SSE
streams of the reply and of its admin — the same streams, through the same idempotent appends, as the
projector's Kafka events, so `/api/stream` serves both in one order and resumes both with `Last-Event-ID`.

A piece may land after its reply's terminal entry (the final state travels through Kafka and usually comes
later, but not always); the stream then drops it, which is right: the final entry holds the whole text."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from funmagic_gateway.adapters.live_replies import LiveReplyReader
from funmagic_gateway.adapters.task_streams import StreamUnavailable, TaskStreams
from funmagic_gateway.domain.sse import project_live

__all__ = ["LiveRelay"]

log = logging.getLogger(__name__)

READ_BLOCK_SECONDS = 5.0
RETRY_SECONDS = 1.0


class LiveRelay:
    name = "studio-live-relay"

    def __init__(self, reader: LiveReplyReader, streams: TaskStreams) -> None:
        self._reader = reader
        self._streams = streams
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                # A blocked read is abandoned at once on stop: shutdown does not wait for it.
                relay = asyncio.ensure_future(self.relay_once(block_seconds=READ_BLOCK_SECONDS))
                await asyncio.wait({relay, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not relay.done():
                    relay.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StreamUnavailable):
                        await relay
                    return
                await self._after(relay)
        finally:
            stopping.cancel()

    async def _after(self, relay: asyncio.Future[int]) -> None:
        try:
            relay.result()
        except StreamUnavailable as error:
            log.warning("live replies unavailable; retrying", extra={"error": str(error)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=RETRY_SECONDS)

    async def relay_once(self, *, block_seconds: float) -> int:
        """Relay what arrives within `block_seconds`; how many pieces were read."""
        pieces = await self._reader.read(block_seconds=block_seconds)
        for piece in pieces:
            await self._streams.append(project_live(piece))
        return len(pieces)
