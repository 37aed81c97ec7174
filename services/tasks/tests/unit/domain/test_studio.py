"""The studio's chat and reply aggregates, given/when/then: given a chat (and replies in some state), when a
transition is decided, then these messages, this chat and these events. No I/O.

Every message a transition produces is checked against the invariants, and news about a reply that
already ended changes nothing and says nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.tasks.events import (
    StepRequested,
    StudioChatDeleted,
    StudioReplyCancelled,
    StudioReplyCompleted,
    StudioReplyFailed,
)
from funmagic_tasks.domain.studio import (
    REPLY_GIVE_UP_AFTER,
    Chat,
    ChatSettings,
    InvariantViolated,
    Message,
    MessageRequest,
    ReplyOutput,
    ReplyStillRunning,
    StudioChange,
    StudioRefused,
    Usage,
    cancel_reply,
    check_invariants,
    complete_reply,
    delete_chat,
    fail_reply,
    new_chat,
    one_text_reply_at_a_time,
    post_message,
    replies_of,
    reply_output,
    start_reply,
    time_out_reply,
    update_chat,
    visible_to,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ADMIN = "0194690a-7c00-7000-8000-00000000a0ad"
OTHER_ADMIN = "0194690a-7c00-7000-8000-00000000a0ae"
CHAT = "0194690a-7c00-7000-8000-00000000a100"
PROMPT = "0194690a-7c00-7000-8000-00000000a101"
IMAGE = "0194690a-7c00-7000-8000-00000000d001"


def a_chat(**changes: object) -> Chat:
    settings = ChatSettings(
        title="Foxes", project=None, provider="openai", model="gpt-5", system_prompt="Be brief.", store=True
    )
    return replace(new_chat(CHAT, ADMIN, settings, NOW - timedelta(hours=1)), **changes)


def text(content: str = "Tell me about foxes", **changes: object) -> MessageRequest:
    fields: dict = {
        "content": content,
        "kind": "text",
        "provider": "openai",
        "model": "gpt-5",
        "model_kind": "text",
    }
    return MessageRequest(**{**fields, **changes})


def image(variants: int = 1, **changes: object) -> MessageRequest:
    fields: dict = {
        "content": "a red fox", "kind": "image", "provider": "openai", "model": "gpt-image-1",
        "model_kind": "image", "variants": variants, "options": {"size": "1024x1024"},
    }  # fmt: skip
    return MessageRequest(**{**fields, **changes})


def when_posted(chat: Chat, request: MessageRequest, active: tuple[Message, ...] = ()) -> StudioChange:
    change = post_message(
        chat, request, message_id=PROMPT, reply_ids=[f"reply-{i}" for i in range(replies_of(request))],
        active_replies=active, idempotency_key="key-1", now=NOW,
    )  # fmt: skip
    for message in change.messages:
        check_invariants(message)
    return change


def a_running_reply(request: MessageRequest | None = None) -> Message:
    reply = when_posted(a_chat(), request or text()).messages[1]
    return start_reply(reply).messages[0]


# --- posting --------------------------------------------------------------------------------------------


def test_a_text_message_asks_for_one_reply_that_continues_the_conversation() -> None:
    chat = a_chat(last_response_id="resp_1")

    change = when_posted(chat, text())

    prompt, reply = change.messages
    assert (prompt.role, prompt.status, prompt.content) == ("user", "completed", "Tell me about foxes")
    assert (reply.role, reply.status, reply.batch_id) == ("assistant", "pending", PROMPT)
    (requested,) = change.events
    assert isinstance(requested, StepRequested)
    assert (requested.task_id, requested.user_id, requested.scope) == (reply.id, ADMIN, "admin")
    assert requested.step_type == "studio-chat"
    assert requested.input.prompt == "Tell me about foxes"
    assert requested.input.options == {
        "store": True, "instructions": "Be brief.", "previous_response_id": "resp_1",
    }  # fmt: skip


def test_a_first_turn_has_no_previous_response() -> None:
    (requested,) = when_posted(a_chat(), text()).events

    assert isinstance(requested, StepRequested)
    assert "previous_response_id" not in requested.input.options


def test_a_turn_on_another_provider_starts_a_new_conversation() -> None:
    chat = a_chat(last_response_id="resp_1")

    change = when_posted(chat, text(provider="local", model="local-chat"))

    (requested,) = change.events
    assert isinstance(requested, StepRequested)
    assert "previous_response_id" not in requested.input.options
    assert change.chat is not None
    assert (change.chat.provider, change.chat.last_response_id) == ("local", None)


def test_an_image_batch_asks_for_one_job_per_variant_from_the_image_model_each_with_its_seed() -> None:
    change = when_posted(a_chat(), image(variants=3))

    replies = change.messages[1:]
    assert [r.variant for r in replies] == [0, 1, 2]
    assert all(isinstance(e, StepRequested) and e.step_type == "image-gen" for e in change.events)
    assert {e.task_id for e in change.events if isinstance(e, StepRequested)} == {r.id for r in replies}
    options = [e.input.options for e in change.events if isinstance(e, StepRequested)]
    assert options == [
        {"size": "1024x1024"},
        {"size": "1024x1024", "seed": 1},
        {"size": "1024x1024", "seed": 2},
    ]


def test_a_chat_model_draws_with_its_image_tool_and_does_not_chain() -> None:
    change = when_posted(a_chat(last_response_id="resp_1"), image(model="gpt-5", model_kind="text"))

    (requested,) = change.events
    assert isinstance(requested, StepRequested)
    assert requested.step_type == "studio-chat"
    assert requested.input.options["image_generation"] == {"size": "1024x1024"}
    assert "previous_response_id" not in requested.input.options


def test_quoted_images_travel_with_the_prompt_in_order() -> None:
    (requested,) = when_posted(a_chat(), text(quoted_image_ids=(IMAGE, PROMPT))).events

    assert isinstance(requested, StepRequested)
    assert requested.input.asset_ids == (IMAGE, PROMPT)


def test_a_text_turn_waits_for_the_running_one_but_images_do_not() -> None:
    running = a_running_reply()

    with pytest.raises(ReplyStillRunning):
        when_posted(a_chat(), text(), active=(running,))
    assert when_posted(a_chat(), image(), active=(running,)).events
    assert one_text_reply_at_a_time("text", [a_running_reply(image())])


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (text(variants=2), "variants"),
        (image(variants=9), "variants"),
        (text(model="gpt-image-1", model_kind="image"), "model"),
        (image(options={"colour": "red"}), "options.colour"),
        (text(options={"size": "1024x1024"}), "options"),
        (image(options={"size": {"width": 1024}}), "options.size"),
        (image(options={"quality": "x" * 33}), "options.quality"),
        (image(options={"background": "transparent; drop"}), "options.background"),
        (image(options={"aspectRatio": 16}), "options.aspectRatio"),
    ],
)
def test_requests_the_rules_refuse_name_their_field(request_: MessageRequest, field: str) -> None:
    with pytest.raises(StudioRefused) as refused:
        when_posted(a_chat(), request_)

    assert refused.value.field == field


# --- batches: one prompt applied to each image on its own ------------------------------------------------

IMAGES = tuple(f"0194690a-7c00-7000-8000-00000000d00{i}" for i in range(1, 10))


def utility(images: tuple[str, ...] = IMAGES[:3], **changes: object) -> MessageRequest:
    fields: dict = {
        "content": "sharper, please", "kind": "image", "provider": "fal", "model": "fal-ai/clarity-upscaler",
        "model_kind": "utility", "quoted_image_ids": images, "options": {"upscale_factor": "2"},
    }  # fmt: skip
    return MessageRequest(**{**fields, **changes})


def test_a_utility_model_runs_once_per_quoted_image_each_job_with_its_own_image() -> None:
    change = when_posted(a_chat(), utility())

    prompt, *replies = change.messages
    assert prompt.quoted_image_ids == IMAGES[:3]
    assert [r.quoted_image_ids for r in replies] == [(IMAGES[0],), (IMAGES[1],), (IMAGES[2],)]
    assert [r.variant for r in replies] == [0, 1, 2]
    requested = [e for e in change.events if isinstance(e, StepRequested)]
    assert [e.input.asset_ids for e in requested] == [(IMAGES[0],), (IMAGES[1],), (IMAGES[2],)]
    assert {e.step_type for e in requested} == {"studio-utility"}
    assert all(e.input.options == {"upscale_factor": 2.0} for e in requested)  # numbers, no seed
    assert all(e.input.prompt == "sharper, please" for e in requested)


def test_an_image_message_quoting_several_images_is_a_batch_of_one_job_per_image() -> None:
    change = when_posted(a_chat(), image(quoted_image_ids=IMAGES[:8]))

    replies = change.messages[1:]
    assert len(replies) == 8
    assert [r.quoted_image_ids for r in replies] == [(i,) for i in IMAGES[:8]]
    options = [e.input.options for e in change.events if isinstance(e, StepRequested)]
    assert options == [{"size": "1024x1024"}] * 8  # the images differ, not the seeds


def test_an_image_model_gets_the_chats_earlier_turns_as_text_history() -> None:
    gemini = image(provider="gemini", model="gemini-2.5-flash-image", options={"aspectRatio": "16:9"})
    first = when_posted(a_chat(), gemini)
    prompt, reply = first.messages
    done = complete_reply(
        start_reply(reply).messages[0], None,
        ReplyOutput(text="Here is a fox", images=(), response_id=None, usage=Usage()), NOW,
    ).messages[0]  # fmt: skip
    failed = fail_reply(when_posted(a_chat(), text()).messages[1], error_code="x", error_message="x", now=NOW)

    second = post_message(
        a_chat(), replace(gemini, content="now in snow"), message_id="prompt-2", reply_ids=["reply-2"],
        active_replies=(), idempotency_key=None, now=NOW, history=(prompt, done, *failed.messages),
    )  # fmt: skip

    (event,) = second.events
    assert isinstance(event, StepRequested)
    assert event.input.options == {
        "aspectRatio": "16:9",
        "history": [{"role": "user", "text": "a red fox"}, {"role": "model", "text": "Here is a fox"}],
    }
    assert event.input.prompt == "now in snow"
    assert second.messages[0].options == {"aspectRatio": "16:9"}  # the history is not kept with the prompt
    # The first turn of a chat has no history.
    assert first.events[0].input.options == {"aspectRatio": "16:9"}  # type: ignore[union-attr]


def test_an_earlier_prompts_images_go_back_with_the_history_for_the_step_to_read() -> None:
    gemini = image(provider="gemini", model="gemini-2.5-flash-image", quoted_image_ids=(IMAGE,))
    first = when_posted(a_chat(), gemini)
    prompt, reply = first.messages
    done = complete_reply(
        start_reply(reply).messages[0], None,
        ReplyOutput(text="Here it is", images=(), response_id=None, usage=Usage()), NOW,
    ).messages[0]  # fmt: skip

    second = post_message(
        a_chat(), replace(gemini, content="now in snow", quoted_image_ids=()), message_id="prompt-2",
        reply_ids=["reply-2"], active_replies=(), idempotency_key=None, now=NOW, history=(prompt, done),
    )  # fmt: skip

    (event,) = second.events
    assert isinstance(event, StepRequested)
    assert event.input.options["history"][0] == {"role": "user", "text": "a red fox", "images": [IMAGE]}
    assert event.input.history_asset_ids == (IMAGE,)
    assert event.input.asset_ids == ()


def test_one_quoted_image_keeps_the_variants_each_with_that_image() -> None:
    change = when_posted(a_chat(), image(variants=2, quoted_image_ids=(IMAGE,)))

    assert [r.quoted_image_ids for r in change.messages[1:]] == [(IMAGE,), (IMAGE,)]


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (utility(images=()), "image_required", "quoted_image_ids"),
        (utility(images=IMAGES), "too_many_images", "quoted_image_ids"),
        (image(quoted_image_ids=IMAGES), "too_many_images", "quoted_image_ids"),
        (image(variants=2, quoted_image_ids=IMAGES[:2]), "batch_variants", "variants"),
        (utility(variants=2), "batch_variants", "variants"),
        (utility(options={"upscale_factor": 5}), "studio_refused", "options.upscale_factor"),
        (utility(options={"creativity": "lots"}), "studio_refused", "options.creativity"),
        (utility(options={"size": "1024x1024"}), "studio_refused", "options.size"),
        (utility(kind="text"), "studio_refused", "model"),
    ],
)
def test_the_batch_rules_refuse_with_a_named_error(request_: MessageRequest, code: str, field: str) -> None:
    with pytest.raises(StudioRefused) as refused:
        when_posted(a_chat(), request_)

    assert (refused.value.code, refused.value.field) == (code, field)


def test_an_archived_chat_takes_no_message() -> None:
    with pytest.raises(StudioRefused) as refused:
        when_posted(a_chat(archived_at=NOW), text())

    assert refused.value.code == "chat_archived"


# --- a reply's life -------------------------------------------------------------------------------------


def test_a_completed_text_reply_becomes_the_chats_last_turn() -> None:
    reply = a_running_reply()
    output = ReplyOutput(text="Foxes are canids.", images=(), response_id="resp_2", usage=Usage(5, 4, 9))

    change = complete_reply(reply, a_chat(), output, NOW)

    (done,) = change.messages
    check_invariants(done)
    assert (done.status, done.content, done.usage) == ("completed", "Foxes are canids.", Usage(5, 4, 9))
    assert change.chat is not None
    assert change.chat.last_response_id == "resp_2"
    (event,) = change.events
    assert isinstance(event, StudioReplyCompleted)
    assert (event.message_id, event.chat_id, event.admin_id, event.usage.total_tokens) == (
        reply.id, CHAT, ADMIN, 9,
    )  # fmt: skip


def test_an_image_reply_keeps_its_images_and_leaves_the_conversation_alone() -> None:
    reply = a_running_reply(image())
    output = ReplyOutput(
        text="", images=(OutputAsset(asset_id=IMAGE, role="image"),), response_id=None, usage=Usage()
    )

    change = complete_reply(reply, None, output, NOW)

    assert change.chat is None
    assert change.messages[0].images == (OutputAsset(asset_id=IMAGE, role="image"),)


def test_a_failed_reply_says_why_in_short() -> None:
    change = fail_reply(a_running_reply(), error_code="content_policy", error_message="x" * 5000, now=NOW)

    (failed,) = change.messages
    check_invariants(failed)
    assert failed.status == "failed"
    assert len(failed.error_message or "") == 1000
    assert isinstance(change.events[0], StudioReplyFailed)


def test_a_cancelled_reply_tells_providers_to_stop() -> None:
    change = cancel_reply(a_running_reply(), by=ADMIN, now=NOW)

    assert change.messages[0].status == "cancelled"
    (event,) = change.events
    assert isinstance(event, StudioReplyCancelled)


@pytest.mark.parametrize("ending", ["complete", "fail", "cancel", "start"])
def test_news_after_a_reply_ended_changes_nothing(ending: str) -> None:
    cancelled = cancel_reply(a_running_reply(), by=ADMIN, now=NOW).messages[0]
    output = ReplyOutput(text="late", images=(), response_id="resp_9", usage=Usage())

    change = {
        "complete": lambda: complete_reply(cancelled, a_chat(), output, NOW),
        "fail": lambda: fail_reply(cancelled, error_code="x", error_message="y", now=NOW),
        "cancel": lambda: cancel_reply(cancelled, by=ADMIN, now=NOW),
        "start": lambda: start_reply(cancelled),
    }[ending]()

    assert change == StudioChange()


def test_a_step_output_becomes_a_reply_output() -> None:
    metadata = {
        "text": "Hi",
        "responseId": "resp_3",
        "usage": {"inputTokens": 2, "outputTokens": 1, "totalTokens": 3},
    }
    assets = (OutputAsset(asset_id=IMAGE, role="image"), OutputAsset(asset_id=PROMPT, role="preview"))

    output = reply_output(assets, metadata)

    assert output == ReplyOutput("Hi", (OutputAsset(asset_id=IMAGE, role="image"),), "resp_3", Usage(2, 1, 3))
    assert reply_output((), {"usage": {"inputTokens": -1, "outputTokens": True}}).usage == Usage()


# --- chats ----------------------------------------------------------------------------------------------


def test_a_chat_is_its_admins_and_every_super_admins() -> None:
    chat = a_chat()

    assert visible_to(chat, ADMIN, super_admin=False)
    assert not visible_to(chat, OTHER_ADMIN, super_admin=False)
    assert visible_to(chat, OTHER_ADMIN, super_admin=True)


def test_archiving_and_moving_a_chat() -> None:
    chat = a_chat(last_response_id="resp_1")

    archived = update_chat(chat, {"archived": True, "project": "Zoo"}, NOW)
    restored = update_chat(archived, {"archived": False}, NOW)
    moved = update_chat(chat, {"provider": "local", "model": "local-chat"}, NOW)

    assert (archived.archived_at, archived.project, archived.updated_at) == (NOW, "Zoo", NOW)
    assert restored.archived_at is None
    assert moved.last_response_id is None, "another provider cannot continue this one's turns"
    assert update_chat(chat, {}, NOW) is chat


def test_deleting_a_chat_cancels_its_running_replies_and_names_every_message() -> None:
    posted = when_posted(a_chat(), image(variants=2))
    prompt, first, second = posted.messages
    finished = complete_reply(
        first, None, ReplyOutput("", (OutputAsset(asset_id=IMAGE, role="image"),), None, Usage()), NOW
    ).messages[0]

    change = delete_chat(a_chat(), [prompt, finished, second], by=ADMIN, now=NOW)

    assert [m.status for m in change.messages] == ["cancelled"]
    cancelled, deleted = change.events
    assert isinstance(cancelled, StudioReplyCancelled)
    assert cancelled.message_id == second.id
    assert isinstance(deleted, StudioChatDeleted)
    assert deleted.message_ids == (prompt.id, first.id, second.id)


def test_the_invariants_catch_a_reply_that_ended_without_saying_when() -> None:
    reply = a_running_reply()

    with pytest.raises(InvariantViolated, match="finished exactly when it ended"):
        check_invariants(replace(reply, status="completed"))


# --- a reply nothing will end ---------------------------------------------------------------------------


def test_a_reply_still_running_well_past_its_deadline_fails() -> None:
    reply = a_running_reply()

    change = time_out_reply(reply, now=NOW + REPLY_GIVE_UP_AFTER)

    (failed,) = change.messages
    assert (failed.status, failed.error_code) == ("failed", "reply_timeout")
    assert failed.error_message == "no answer came within 10 minutes"
    assert [type(e).__name__ for e in change.events] == ["StudioReplyFailed"]


def test_a_reply_within_its_time_or_ended_is_left_as_it_is() -> None:
    reply = a_running_reply()
    cancelled = cancel_reply(reply, by=ADMIN, now=NOW).messages[0]

    assert time_out_reply(reply, now=NOW + REPLY_GIVE_UP_AFTER - timedelta(seconds=1)) == StudioChange()
    assert time_out_reply(cancelled, now=NOW + REPLY_GIVE_UP_AFTER * 2) == StudioChange()
