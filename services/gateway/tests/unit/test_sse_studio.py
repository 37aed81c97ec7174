"""Studio replies on the SSE streams: step news of scope admin, the final state from tasks, live pieces."""

from __future__ import annotations

from datetime import UTC, datetime

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.live import LiveReplyPiece
from funmagic_contracts.providers.events import (
    StepCompleted,
    StepDelayed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import (
    StudioReplyCancelled,
    StudioReplyCompleted,
    StudioReplyFailed,
    StudioUsage,
)
from funmagic_gateway.domain.sse import TERMINAL_TYPES, project, project_live

MESSAGE, CHAT, ADMIN, IMAGE = (
    "0194690a-7c00-7000-8000-00000000a101",
    "0194690a-7c00-7000-8000-00000000a100",
    "0194690a-7c00-7000-8000-00000000a0ad",
    "0194690a-7c00-7000-8000-00000000d001",
)
EVENT_ID = "0194690a-7c00-7000-8000-000000000001"


def test_a_started_reply_is_routed_by_its_message_to_its_admins_stream() -> None:
    started = StepStarted(
        task_id=MESSAGE, user_id=ADMIN, scope="admin", step_id="reply", provider="openai", attempt=1
    )

    projection = project(EVENT_ID, started)

    assert projection is not None
    assert (projection.task_id, projection.user_id) == (MESSAGE, ADMIN)
    (entry,) = projection.entries
    assert (entry.type, entry.data) == ("reply_started", {"messageId": MESSAGE, "attempt": 1})


def test_a_delayed_reply_says_why_and_until_when() -> None:
    delayed = StepDelayed(
        task_id=MESSAGE, user_id=ADMIN, scope="admin", step_id="reply", attempt=1, reason="provider_429",
        retry_at=datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC),
    )  # fmt: skip

    projection = project(EVENT_ID, delayed)

    assert projection is not None
    assert projection.entries[0].type == "reply_delayed"
    assert projection.entries[0].data == {
        "messageId": MESSAGE, "reason": "provider_429", "retryAt": "2026-01-01T12:00:05Z",
    }  # fmt: skip


def test_a_replys_progress_and_step_completion_are_left_to_its_live_pieces_and_final_state() -> None:
    progressed = StepProgressed(
        task_id=MESSAGE, user_id=ADMIN, scope="admin", step_id="reply", attempt=1, progress=10, message="x"
    )
    completed = StepCompleted(
        task_id=MESSAGE, user_id=ADMIN, scope="admin", step_id="reply", attempt=1, output=StepOutput()
    )

    assert project(EVENT_ID, progressed) is None
    assert project(EVENT_ID, completed) is None


def test_a_completed_reply_ends_its_stream_with_the_whole_text_and_admin_image_urls() -> None:
    done = StudioReplyCompleted(
        message_id=MESSAGE, chat_id=CHAT, admin_id=ADMIN, content="A fox.",
        images=(OutputAsset(asset_id=IMAGE, role="image"),), response_id="resp_1",
        usage=StudioUsage(input_tokens=3, output_tokens=2, total_tokens=5),
    )  # fmt: skip

    projection = project(EVENT_ID, done)

    assert projection is not None
    (entry,) = projection.entries
    assert entry.terminal
    assert entry.data == {
        "messageId": MESSAGE, "chatId": CHAT, "content": "A fox.",
        "images": [{"assetId": IMAGE, "role": "image", "url": f"/api/admin/assets/{IMAGE}"}],
        "usage": {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5},
    }  # fmt: skip


def test_failed_and_cancelled_replies_are_terminal_too() -> None:
    failed = StudioReplyFailed(
        message_id=MESSAGE, chat_id=CHAT, admin_id=ADMIN, error_code="content_policy", error_message="no"
    )
    cancelled = StudioReplyCancelled(message_id=MESSAGE, chat_id=CHAT, admin_id=ADMIN, by=ADMIN)

    types = [p.entries[0].type for p in (project(EVENT_ID, failed), project(EVENT_ID, cancelled)) if p]

    assert types == ["reply_failed", "reply_cancelled"]
    assert set(types) <= TERMINAL_TYPES


def test_live_pieces_are_keyed_by_their_place_in_the_reply() -> None:
    delta = LiveReplyPiece(message_id=MESSAGE, user_id=ADMIN, run="r1", seq=3, kind="text_delta", text=" fox")
    partial = LiveReplyPiece(
        message_id=MESSAGE,
        user_id=ADMIN,
        run="r1",
        seq=4,
        kind="partial_image",
        index=0,
        image="data:image/jpeg;base64,AA",
    )

    (text,) = project_live(delta).entries
    (image,) = project_live(partial).entries

    assert (text.type, text.data, text.logical_key) == (
        "reply_delta", {"messageId": MESSAGE, "run": "r1", "text": " fox"}, f"live:{MESSAGE}:r1:3",
    )  # fmt: skip
    assert image.type == "reply_partial_image"
    assert image.data == {"messageId": MESSAGE, "run": "r1", "index": 0, "image": "data:image/jpeg;base64,AA"}
    assert not text.terminal
    assert not image.terminal
