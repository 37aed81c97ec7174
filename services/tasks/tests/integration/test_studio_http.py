"""The studio's internal HTTP API in front of its use cases and Postgres: chats and messages as JSON,
keyset pages, Idempotency-Key replays, who sees what, and the step events of scope admin driving a reply
(the outbox holds what providers and the gateway are told)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.providers.events import StepCompleted, StepFailed, StepOutput, StepStarted
from funmagic_kit.clock import ManualClock
from funmagic_kit.testing import in_memory_consumer
from funmagic_tasks.bootstrap import Tasks, build
from funmagic_tasks.config import TasksSettings
from funmagic_tasks.domain.studio import REPLY_GIVE_UP_AFTER

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ADMIN, OTHER_ADMIN, ROOT = (str(uuid.uuid4()) for _ in range(3))
AS_ADMIN = {"X-Test-Role": "admin", "X-Test-User": ADMIN}
AS_OTHER_ADMIN = {"X-Test-Role": "admin", "X-Test-User": OTHER_ADMIN}
AS_ROOT = {"X-Test-Role": "super_admin", "X-Test-User": ROOT}
AS_USER = {"X-Test-Role": "user", "X-Test-User": str(uuid.uuid4())}
IMAGE = str(uuid.uuid4())


@pytest.fixture
def app(settings: TasksSettings, pool, assets, ports) -> Tasks:
    assets.owned = {(ADMIN, IMAGE)}
    return build(settings, pool=pool, http=None, clock=ManualClock(T0), **ports)


@pytest.fixture
async def http(app: Tasks, serve) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve(app.parts.routes) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, headers: dict[str, str], body: object = None
) -> tuple[int, dict]:
    async with http.request(method, path, json=body, headers=headers) as response:
        return response.status, (await response.json() if response.status != 204 else {})


async def a_chat(http: aiohttp.ClientSession, **fields: object) -> dict:
    status, chat = await call(http, "POST", "/v1/admin/studio/chats", AS_ADMIN, {"title": "Foxes", **fields})
    assert status == 201, chat
    return chat


async def outbox_types(pool) -> list[str]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT payload FROM outbox ORDER BY id")).fetchall()
    return [Envelope.model_validate_json(bytes(row["payload"])).type for row in rows]


async def test_a_chat_is_created_with_its_settings_and_read_back(http) -> None:
    chat = await a_chat(http, project="Zoo", system_prompt="Be brief.")

    assert {k: chat[k] for k in ("admin_id", "title", "project", "provider", "model", "system_prompt")} == {
        "admin_id": ADMIN, "title": "Foxes", "project": "Zoo", "provider": "local", "model": "local-chat",
        "system_prompt": "Be brief.",
    }  # fmt: skip
    assert chat["created_at"] == T0.isoformat()
    status, read = await call(http, "GET", f"/v1/admin/studio/chats/{chat['id']}", AS_ADMIN)
    assert (status, read) == (200, chat)
    status, projects = await call(http, "GET", "/v1/admin/studio/projects", AS_ADMIN)
    assert projects == {"items": [{"name": "Zoo", "chats": 1}]}


async def test_a_chat_model_the_provider_does_not_offer_is_refused(http) -> None:
    status, problem = await call(
        http, "POST", "/v1/admin/studio/chats", AS_ADMIN, {"provider": "local", "model": "local-image"}
    )

    assert status == 422
    assert (problem["code"], problem.get("field")) == ("unknown_model", "model")


async def test_messages_come_in_keyset_pages_newest_first(http, app) -> None:
    chat = await a_chat(http)
    posted = []
    for n in range(3):
        status, body = await call(
            http, "POST", f"/v1/admin/studio/chats/{chat['id']}/messages", AS_ADMIN,
            {"content": f"fox {n}", "kind": "image", "model": "local-image", "variants": 2},
        )  # fmt: skip
        assert status == 202, body
        posted += [body["message"]["id"], *(r["id"] for r in body["replies"])]

    seen, cursor = [], None
    while True:
        query = "?limit=4" + (f"&cursor={cursor}" if cursor else "")
        status, page = await call(
            http, "GET", f"/v1/admin/studio/chats/{chat['id']}/messages{query}", AS_ADMIN
        )
        assert status == 200
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(posted))


async def test_a_reply_nothing_will_end_fails_after_its_deadline_and_frees_the_chats_next_turn(
    http, app: Tasks, pool
) -> None:
    # Its StepRequested was dead-lettered at providers: no event will ever end the reply.
    chat = await a_chat(http)
    path = f"/v1/admin/studio/chats/{chat['id']}/messages"
    status, posted = await call(http, "POST", path, AS_ADMIN, {"content": "a fox?", "kind": "text"})
    assert status == 202, posted
    (reply,) = posted["replies"]
    clock = app.studio.clock
    assert isinstance(clock, ManualClock)

    assert await app.studio.sweep_overdue_replies() == 0  # within its time
    clock.advance(REPLY_GIVE_UP_AFTER.total_seconds() + 1)
    assert await app.studio.sweep_overdue_replies() == 1

    status, page = await call(http, "GET", path, AS_ADMIN)
    shown = next(m for m in page["items"] if m["id"] == reply["id"])
    assert (shown["status"], shown["error_code"]) == ("failed", "reply_timeout")
    assert (await outbox_types(pool)).count("StudioReplyFailed") == 1
    status, _ = await call(http, "POST", path, AS_ADMIN, {"content": "still there?", "kind": "text"})
    assert status == 202, "the next text turn is no longer held by the stuck one"
    assert await app.studio.sweep_overdue_replies() == 0


def forged_cursor(*values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode()


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/admin/studio/chats?cursor={forged_cursor('2030-01-01T00:00:00+00:00', 'not-a-uuid')}",
        "/v1/admin/studio/chats/{chat}/messages?cursor=" + forged_cursor(10**20),
    ],
)
async def test_a_forged_page_cursor_is_refused_as_invalid_not_a_server_error(http, path: str) -> None:
    chat = await a_chat(http)

    status, problem = await call(http, "GET", path.replace("{chat}", chat["id"]), AS_ADMIN)

    assert (status, problem["code"], problem.get("field")) == (422, "invalid_cursor", "cursor"), problem


async def test_a_retried_post_with_the_same_key_gets_the_same_messages_and_asks_once(http, pool) -> None:
    chat = await a_chat(http)
    key = {**AS_ADMIN, "Idempotency-Key": "post-1"}
    body = {"content": "a fox", "kind": "image", "model": "local-image", "variants": 2}

    first_status, first = await call(http, "POST", f"/v1/admin/studio/chats/{chat['id']}/messages", key, body)
    again_status, again = await call(http, "POST", f"/v1/admin/studio/chats/{chat['id']}/messages", key, body)

    assert (first_status, again_status) == (202, 200)
    assert again == first
    assert (await outbox_types(pool)).count("StepRequested") == 2


async def test_a_key_sent_again_with_another_chat_or_prompt_is_refused_not_replayed(http) -> None:
    first_chat, other_chat = await a_chat(http), await a_chat(http)
    key = {**AS_ADMIN, "Idempotency-Key": "post-elsewhere"}
    body = {"content": "a fox", "kind": "image", "model": "local-image", "variants": 1}
    status, _ = await call(http, "POST", f"/v1/admin/studio/chats/{first_chat['id']}/messages", key, body)
    assert status == 202

    other = await call(http, "POST", f"/v1/admin/studio/chats/{other_chat['id']}/messages", key, body)
    changed = await call(
        http, "POST", f"/v1/admin/studio/chats/{first_chat['id']}/messages", key, {**body, "content": "a cat"}
    )

    for status, problem in (other, changed):
        assert (status, problem["code"]) == (409, "idempotency_key_reused"), problem
    status, page = await call(http, "GET", f"/v1/admin/studio/chats/{other_chat['id']}/messages", AS_ADMIN)
    assert (status, page["items"]) == (200, [])


async def test_a_second_text_turn_waits_and_a_quoted_image_must_be_the_admins(http) -> None:
    chat = await a_chat(http)
    path = f"/v1/admin/studio/chats/{chat['id']}/messages"
    status, _ = await call(http, "POST", path, AS_ADMIN, {"content": "hello", "quoted_image_ids": [IMAGE]})
    assert status == 202

    status, running = await call(http, "POST", path, AS_ADMIN, {"content": "and?"})
    assert (status, running["code"]) == (409, "reply_running")
    status, image = await call(
        http,
        "POST",
        path,
        AS_ADMIN,
        {"content": "x", "kind": "image", "quoted_image_ids": [str(uuid.uuid4())]},
    )
    assert (status, image["code"]) == (422, "asset_not_found")


async def test_only_the_chats_admin_and_super_admins_see_it_and_only_its_admin_writes(http) -> None:
    chat = await a_chat(http)
    item = f"/v1/admin/studio/chats/{chat['id']}"

    assert (await call(http, "GET", item, AS_OTHER_ADMIN))[0] == 404
    assert (await call(http, "GET", item + "/messages", AS_OTHER_ADMIN))[0] == 404
    assert (await call(http, "PATCH", item, AS_OTHER_ADMIN, {"title": "Mine"}))[0] == 404
    assert (await call(http, "DELETE", item, AS_OTHER_ADMIN))[0] == 404
    for method, path in (("GET", item), ("GET", item + "/messages"), ("DELETE", item)):
        assert (await call(http, method, path, AS_USER))[0] == 404, "a plain user learns nothing of a chat"
    assert (await call(http, "GET", "/v1/admin/studio/chats", AS_USER))[0] == 403
    assert (await call(http, "GET", item, AS_ROOT))[0] == 200
    assert (await call(http, "POST", item + "/messages", AS_ROOT, {"content": "hi"}))[0] == 404
    _, everyone = await call(http, "GET", "/v1/admin/studio/chats?all=true", AS_ROOT)
    assert chat["id"] in [c["id"] for c in everyone["items"]]
    assert (await call(http, "GET", "/v1/admin/studio/chats?all=true", AS_ADMIN))[0] == 403
    assert (await call(http, "GET", "/v1/admin/studio/chats", AS_OTHER_ADMIN))[1]["items"] == []


async def test_step_events_of_scope_admin_drive_the_reply_and_chain_the_chat(http, app, pool) -> None:
    chat = await a_chat(http)
    path = f"/v1/admin/studio/chats/{chat['id']}/messages"
    _, posted = await call(http, "POST", path, AS_ADMIN, {"content": "hello"})
    reply_id = posted["replies"][0]["id"]
    output = StepOutput(
        assets=(OutputAsset(asset_id=IMAGE, role="image"),),
        metadata={"text": "Hi!", "responseId": "local_1", "usage": {"inputTokens": 1, "outputTokens": 1,
                                                                     "totalTokens": 2}},
    )  # fmt: skip

    async with in_memory_consumer("tasks", app.parts.subscriptions, unit_of_work=app.parts.unit_of_work) as c:
        await c.deliver_event(
            StepStarted(task_id=reply_id, user_id=ADMIN, scope="admin", step_id="reply", provider="local",
                        attempt=1)
        )  # fmt: skip
        await c.deliver_event(
            StepCompleted(task_id=reply_id, user_id=ADMIN, scope="admin", step_id="reply", attempt=1,
                          output=output)
        )  # fmt: skip
        # A late failure of the same reply changes nothing.
        await c.deliver_event(
            StepFailed(task_id=reply_id, user_id=ADMIN, scope="admin", step_id="reply", attempt=1,
                       error_code="x", error_message="y", retryable=False)
        )  # fmt: skip

    _, page = await call(http, "GET", path, AS_ADMIN)
    reply = next(m for m in page["items"] if m["id"] == reply_id)
    assert (reply["status"], reply["content"], reply["response_id"]) == ("completed", "Hi!", "local_1")
    assert reply["usage"] == {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    _, chat_now = await call(http, "GET", f"/v1/admin/studio/chats/{chat['id']}", AS_ADMIN)
    assert chat_now["last_response_id"] == "local_1"
    assert (await outbox_types(pool)).count("StudioReplyCompleted") == 1
    assert "StudioReplyFailed" not in await outbox_types(pool)

    _, posted = await call(http, "POST", path, AS_ADMIN, {"content": "and then?"})
    assert posted["replies"][0]["status"] == "pending", "the next turn may go once the last one ended"


async def test_cancelling_a_reply_and_deleting_a_chat_tell_providers_and_storage(http, pool) -> None:
    chat = await a_chat(http)
    _, posted = await call(
        http, "POST", f"/v1/admin/studio/chats/{chat['id']}/messages", AS_ADMIN,
        {"content": "owls", "kind": "image", "model": "local-image", "variants": 2},
    )  # fmt: skip
    first, second = (r["id"] for r in posted["replies"])

    status, cancelled = await call(http, "POST", f"/v1/admin/studio/messages/{first}/cancel", AS_ADMIN)
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert (await call(http, "POST", f"/v1/admin/studio/messages/{first}/cancel", AS_OTHER_ADMIN))[0] == 404
    status, _ = await call(http, "DELETE", f"/v1/admin/studio/chats/{chat['id']}", AS_ADMIN)
    assert status == 204

    types = await outbox_types(pool)
    assert types.count("StudioReplyCancelled") == 2, "the cancelled one once, the still running one on delete"
    assert types[-1] == "StudioChatDeleted"
    assert second  # both replies were named
    assert (await call(http, "GET", f"/v1/admin/studio/chats/{chat['id']}", AS_ADMIN))[0] == 404


async def test_a_chat_posted_again_with_its_idempotency_key_is_created_once(http) -> None:
    keyed = {**AS_ADMIN, "Idempotency-Key": "chat-1"}
    body = {"title": "Foxes", "project": "Zoo"}

    first = await call(http, "POST", "/v1/admin/studio/chats", keyed, body)
    again = await call(http, "POST", "/v1/admin/studio/chats", keyed, body)  # the retry after a lost answer
    reused = await call(http, "POST", "/v1/admin/studio/chats", keyed, {**body, "title": "Owls"})
    _, after_the_retry = await call(http, "GET", "/v1/admin/studio/chats", AS_ADMIN)
    unkeyed = [await call(http, "POST", "/v1/admin/studio/chats", AS_ADMIN, body) for _ in range(2)]
    theirs = await call(
        http, "POST", "/v1/admin/studio/chats", {**AS_OTHER_ADMIN, "Idempotency-Key": "chat-1"}, body
    )
    _, listed = await call(http, "GET", "/v1/admin/studio/chats", AS_ADMIN)

    assert (first[0], again[0]) == (201, 201)
    assert again[1] == first[1]
    assert (reused[0], reused[1]["code"]) == (409, "idempotency_key_reused"), "another body is not a retry"
    assert reused[1]["field"] == "Idempotency-Key"
    assert [chat["id"] for chat in after_the_retry["items"]] == [first[1]["id"]]
    assert [status for status, _ in unkeyed] == [201, 201], "without a key, every request creates"
    assert len(listed["items"]) == 3
    assert theirs[0] == 201
    assert theirs[1]["id"] != first[1]["id"], "another admin's key is another request"
