"""Studio replies' live pieces against the real local Redis: written to the live channel as providers
writes them, relayed by the gateway into the reply's and its admin's SSE streams, once."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from funmagic_contracts.live import LIVE_STREAM, LIVE_STREAM_FIELD, LiveReplyPiece
from funmagic_contracts.tasks.events import StudioReplyCompleted
from funmagic_gateway.adapters.live_replies import LiveReplyReader
from funmagic_gateway.adapters.task_streams import TaskStreams, task_stream_key, user_stream_key
from funmagic_gateway.domain.sse import project
from funmagic_gateway.entrypoints.live_relay import LiveRelay


async def write(redis: Redis, piece: LiveReplyPiece) -> None:
    await redis.xadd(LIVE_STREAM, {LIVE_STREAM_FIELD: piece.model_dump_json(exclude_none=True)})


async def relay_all(relay: LiveRelay, wanted: int) -> int:
    relayed = 0
    while relayed < wanted:
        read = await relay.relay_once(block_seconds=2.0)
        assert read > 0, f"only {relayed} of {wanted} pieces arrived"
        relayed += read
    return relayed


async def test_pieces_reach_the_replys_and_the_admins_streams_in_order(redis: Redis) -> None:
    streams = TaskStreams(redis, redis)
    relay = LiveRelay(LiveReplyReader(redis, f"test-{uuid.uuid4()}"), streams)
    await relay.relay_once(block_seconds=0.01)  # joins the group: pieces from now on are its own
    message_id, admin_id = str(uuid.uuid4()), str(uuid.uuid4())
    pieces = [
        LiveReplyPiece(
            message_id=message_id, user_id=admin_id, run="r1", seq=0, kind="text_delta", text="Foxes"
        ),
        LiveReplyPiece(
            message_id=message_id, user_id=admin_id, run="r1", seq=1, kind="text_delta", text=" run"
        ),
        LiveReplyPiece(
            message_id=message_id,
            user_id=admin_id,
            run="r1",
            seq=2,
            kind="partial_image",
            index=0,
            image="data:image/jpeg;base64,AA",
        ),
    ]
    for piece in pieces:
        await write(redis, piece)

    await relay_all(relay, len(pieces))

    for key in (task_stream_key(message_id), user_stream_key(admin_id)):
        entries = await streams.read(key, None, block_seconds=0.01)
        assert [(e.type, e.data.get("text")) for e in entries] == [
            ("reply_delta", "Foxes"), ("reply_delta", " run"), ("reply_partial_image", None),
        ]  # fmt: skip


async def test_a_piece_written_twice_is_shown_once_and_nothing_follows_the_final_state(redis: Redis) -> None:
    streams = TaskStreams(redis, redis)
    relay = LiveRelay(LiveReplyReader(redis, f"test-{uuid.uuid4()}"), streams)
    await relay.relay_once(block_seconds=0.01)
    message_id, admin_id, chat_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    delta = LiveReplyPiece(
        message_id=message_id, user_id=admin_id, run="r1", seq=0, kind="text_delta", text="Hi"
    )
    await write(redis, delta)
    await write(redis, delta)
    await relay_all(relay, 2)
    completed = StudioReplyCompleted(
        message_id=message_id, chat_id=chat_id, admin_id=admin_id, content="Hi there"
    )
    projection = project(str(uuid.uuid4()), completed)
    assert projection is not None
    await streams.append(projection)
    late = LiveReplyPiece(
        message_id=message_id, user_id=admin_id, run="r1", seq=1, kind="text_delta", text=" there"
    )
    await write(redis, late)
    await relay_all(relay, 1)

    entries = await streams.read(task_stream_key(message_id), None, block_seconds=0.01)

    assert [e.type for e in entries] == ["reply_delta", "reply_completed"]
    assert await streams.terminal_entry_id(message_id) == entries[-1].id
