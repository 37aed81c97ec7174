"""The admin AI studio end to end: chats and messages through the gateway, replies run by providers under
the admin limiter scope, text and images streamed on `/api/stream`, outputs in the admin bucket.

Third-party APIs are the fake OpenAI server (tests/fakes/openai_api.py, real HTTP, the Responses API with
its streaming events); the `local` provider answers offline.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from clients import PASSWORD, SseEvent, bearer, browser, call, read_sse, sign_in, sign_up, unique_email
from faults import Fault
from openai_api import FakeOpenAI
from PIL import Image
from redis.asyncio import Redis

from funmagic_contracts.envelope import Envelope, encode, kafka_headers, kafka_key
from funmagic_contracts.tasks.events import StepInput, StepRequested
from funmagic_contracts.topics import TASKS_EVENTS
from funmagic_kit.testing import wait_until

OPENAI_KEY = "sk-e2e-studio-" + uuid.uuid4().hex
TERMINAL = {"completed", "failed", "cancelled"}
STUDIO = "/api/admin/studio"


# --- helpers --------------------------------------------------------------------------------------------


async def api(token: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    headers = bearer(token) | kwargs.pop("headers", {})
    async with browser() as client:
        status, body, _ = await call(client, method, path, headers=headers, **kwargs)
    return status, body


async def new_chat(token: str, **fields: Any) -> dict:
    status, chat = await api(token, "POST", f"{STUDIO}/chats", json={"title": "e2e", **fields})
    assert status == 201, chat
    return chat


async def post(token: str, chat_id: str, content: str, **fields: Any) -> dict:
    status, posted = await api(
        token, "POST", f"{STUDIO}/chats/{chat_id}/messages", json={"content": content, **fields},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert status == 202, posted
    return posted


async def messages(token: str, chat_id: str) -> dict[str, dict]:
    status, page = await api(token, "GET", f"{STUDIO}/chats/{chat_id}/messages", params={"limit": "100"})
    assert status == 200, page
    return {m["id"]: m for m in page["items"]}


async def finished(token: str, chat_id: str, reply_id: str, timeout: float = 60.0) -> dict:
    """The reply once it ended (as the messages list shows it)."""
    found: dict = {}

    async def ended() -> bool:
        reply = (await messages(token, chat_id)).get(reply_id)
        if reply is not None and reply["status"] in TERMINAL:
            found.update(reply)
            return True
        return False

    await wait_until(ended, timeout=timeout, what=f"the end of reply {reply_id}", interval=0.1)
    return found


@asynccontextmanager
async def live(
    token: str, until: Callable[[list[SseEvent]], bool], timeout: float = 60.0
) -> AsyncIterator[list]:
    """Read `/api/stream` in the background from now on; on exit, wait until `until(events)` holds."""
    events: list[SseEvent] = []
    connected = asyncio.Event()

    def seen(event: SseEvent) -> bool:
        events.append(event)
        if event.event == "connected":
            connected.set()
        return until(events)

    reader = asyncio.create_task(read_sse(token, "/api/stream", stop_after=seen, timeout=timeout))
    await asyncio.wait_for(connected.wait(), 10)
    try:
        yield events
        await reader
    finally:
        reader.cancel()


def of(events: list[SseEvent], message_id: str, kind: str | None = None) -> list[SseEvent]:
    return [
        e
        for e in events
        if isinstance(e.data, dict)
        and e.data.get("messageId") == message_id
        and (kind is None or e.event == kind)
    ]


def ended_reply(watched: dict[str, str]) -> Callable[[list[SseEvent]], bool]:
    """Whether the reply whose id is (or will be) `watched["id"]` has ended on the stream."""

    def check(events: list[SseEvent]) -> bool:
        message_id = watched.get("id")
        return message_id is not None and any(
            e.event.removeprefix("reply_") in TERMINAL for e in of(events, message_id)
        )

    return check


def holds(check: Callable[[], bool]) -> Callable[[], Any]:
    async def condition() -> bool:
        return check()

    return condition


async def studio_provider(
    token: str, fake: FakeOpenAI, config: dict | None = None, name: str | None = None
) -> str:
    name = name or f"openai-{uuid.uuid4().hex[:10]}"
    body = {
        "name": name,
        "type": "openai",
        "base_url": fake.url,
        "api_key": OPENAI_KEY,
        "config": config or {},
    }
    status, created = await api(token, "POST", "/api/admin/admin-providers", json=body)
    assert status == 201, created
    return name


async def web_provider(token: str, fake: FakeOpenAI, name: str, config: dict) -> None:
    body = {"name": name, "type": "openai", "base_url": fake.url, "api_key": OPENAI_KEY, "config": config}
    status, created = await api(token, "POST", "/api/admin/providers", json=body)
    assert status == 201, created


async def download_admin_asset(token: str, asset_id: str) -> tuple[dict, bytes]:
    import aiohttp

    status, asset = await api(token, "GET", f"/api/admin/assets/{asset_id}")
    assert status == 200, asset
    async with aiohttp.ClientSession() as http, http.get(asset["url"]) as response:
        assert response.status == 200
        return asset, await response.read()


@pytest.fixture
async def user() -> dict:
    async with browser() as client:
        account = await sign_up(client, unique_email("studio-user"), mode="token")
    return {"id": account["user"]["id"], "token": account["access_token"]}


@pytest.fixture
async def plain_admin(admin_token: str) -> dict:
    """An admin (not a super admin), signed in after the promotion."""
    email = unique_email("studio-admin")
    async with browser() as client:
        account = await sign_up(client, email, mode="token")
    status, body = await api(
        admin_token, "PUT", f"/api/admin/users/{account['user']['id']}/role", json={"role": "admin"}
    )
    assert status == 200, body
    async with browser() as client:
        status, signed_in = await sign_in(client, email, PASSWORD, mode="token")
    assert status in (200, 201), signed_in
    return {"id": account["user"]["id"], "token": signed_in["access_token"]}


# --- offline: the local provider ------------------------------------------------------------------------


async def test_a_local_chat_streams_its_answer_and_keeps_it(platform, admin_token) -> None:
    chat = await new_chat(admin_token, provider="local", model="local-chat", project="e2e-project")

    watched: dict[str, str] = {}
    async with live(admin_token, ended_reply(watched)) as events:
        posted = await post(admin_token, chat["id"], "Tell me about foxes")
        reply_id = watched["id"] = posted["replies"][0]["id"]

    deltas = "".join(e.data["text"] for e in of(events, reply_id, "reply_delta"))
    (completed,) = of(events, reply_id, "reply_completed")
    assert "foxes" in completed.data["content"]
    assert deltas == completed.data["content"], "the deltas add up to the final text"
    assert of(events, reply_id, "reply_started"), "the reply said it started"
    stored = await finished(admin_token, chat["id"], reply_id)
    assert stored["content"] == completed.data["content"]
    assert stored["usage"]["output_tokens"] > 0
    assert stored["role"] == "assistant"
    assert posted["message"]["content"] == "Tell me about foxes"

    # A client that dropped after the first delta resumes from it, and misses nothing.
    first_delta = of(events, reply_id, "reply_delta")[0]
    _, resumed, _ = await read_sse(
        admin_token, "/api/stream", last_event_id=first_delta.id,
        stop_after=lambda e: isinstance(e.data, dict) and e.data.get("messageId") == reply_id
        and e.event == "reply_completed",
    )  # fmt: skip
    rest = "".join(e.data["text"] for e in of(resumed, reply_id, "reply_delta"))
    assert first_delta.data["text"] + rest == completed.data["content"]

    status, projects = await api(admin_token, "GET", f"{STUDIO}/projects")
    assert status == 200
    assert {"name": "e2e-project", "chats": 1} in projects["items"]


async def test_a_local_image_is_stored_in_the_admin_bucket_out_of_a_plain_users_reach(
    platform, admin_token, user
) -> None:
    chat = await new_chat(admin_token, provider="local", model="local-chat")

    posted = await post(admin_token, chat["id"], "a red fox", kind="image", model="local-image",
                        options={"size": "256x256"})  # fmt: skip
    reply = await finished(admin_token, chat["id"], posted["replies"][0]["id"])

    assert reply["status"] == "completed", reply
    (image,) = reply["images"]
    asset, data = await download_admin_asset(admin_token, image["asset_id"])
    assert (asset["visibility"], asset["module"], asset["task_id"]) == (
        "admin-private",
        "studio",
        reply["id"],
    )
    assert "/funmagic-admin/" in asset["url"]
    assert Image.open(io.BytesIO(data)).size == (256, 256)
    status, _ = await api(user["token"], "GET", f"/api/assets/{image['asset_id']}")
    assert status == 404, "a plain user cannot reach an admin's studio image"
    status, _ = await api(user["token"], "GET", f"/api/admin/assets/{image['asset_id']}")
    assert status == 403


async def test_a_chat_is_its_admins_alone(platform, admin_token, plain_admin, user) -> None:
    mine = await new_chat(plain_admin["token"], provider="local", model="local-chat")
    other_admin = await new_chat(admin_token, provider="local", model="local-chat")
    other = {"token": (await _another_admin(admin_token))["token"]}

    for path in (f"{STUDIO}/chats/{mine['id']}", f"{STUDIO}/chats/{mine['id']}/messages"):
        status, _ = await api(other["token"], "GET", path)
        assert status == 404, path
    status, _ = await api(
        other["token"], "POST", f"{STUDIO}/chats/{mine['id']}/messages", json={"content": "hi"}
    )
    assert status == 404
    status, _ = await api(other["token"], "DELETE", f"{STUDIO}/chats/{mine['id']}")
    assert status == 404
    for method, path in (
        ("GET", f"{STUDIO}/chats/{mine['id']}"),
        ("GET", f"{STUDIO}/chats/{mine['id']}/messages"),
    ):
        status, _ = await api(user["token"], method, path)
        assert status == 404, f"a plain user learns no more of my chat than another admin: {path}"
    status, _ = await api(user["token"], "GET", f"{STUDIO}/chats")
    assert status == 403, "the lists are for admins"
    status, listed = await api(plain_admin["token"], "GET", f"{STUDIO}/chats")
    assert [c["id"] for c in listed["items"]] == [mine["id"]], "an admin lists only their own chats"
    status, _ = await api(plain_admin["token"], "GET", f"{STUDIO}/chats", params={"all": "true"})
    assert status == 403
    # A super admin reads every chat.
    status, seen = await api(admin_token, "GET", f"{STUDIO}/chats/{mine['id']}")
    assert status == 200, seen
    status, everyone = await api(
        admin_token, "GET", f"{STUDIO}/chats", params={"all": "true", "limit": "100"}
    )
    assert {mine["id"], other_admin["id"]} <= {c["id"] for c in everyone["items"]}


async def _another_admin(admin_token: str) -> dict:
    email = unique_email("studio-other")
    async with browser() as client:
        account = await sign_up(client, email, mode="token")
    status, _ = await api(
        admin_token, "PUT", f"/api/admin/users/{account['user']['id']}/role", json={"role": "admin"}
    )
    assert status == 200
    async with browser() as client:
        status, signed_in = await sign_in(client, email, PASSWORD, mode="token")
    return {"token": signed_in["access_token"]}


async def test_a_chat_is_renamed_archived_and_deleted_with_its_images(platform, admin_token) -> None:
    chat = await new_chat(admin_token, provider="local", model="local-chat")
    posted = await post(admin_token, chat["id"], "a blue whale", kind="image", model="local-image")
    reply = await finished(admin_token, chat["id"], posted["replies"][0]["id"])
    image_id = reply["images"][0]["asset_id"]

    status, renamed = await api(admin_token, "PATCH", f"{STUDIO}/chats/{chat['id']}",
                                json={"title": "Whales", "archived": True})  # fmt: skip
    assert status == 200, renamed
    assert renamed["title"] == "Whales"
    assert renamed["archived_at"] is not None
    status, refused = await api(admin_token, "POST", f"{STUDIO}/chats/{chat['id']}/messages",
                                json={"content": "more"})  # fmt: skip
    assert status == 422, "an archived chat takes no new messages"
    assert refused["code"] == "chat_archived"

    status, _ = await api(admin_token, "DELETE", f"{STUDIO}/chats/{chat['id']}")
    assert status == 204
    status, _ = await api(admin_token, "GET", f"{STUDIO}/chats/{chat['id']}")
    assert status == 404

    async def image_gone() -> bool:
        status, _ = await api(admin_token, "GET", f"/api/admin/assets/{image_id}")
        return status == 404

    await wait_until(image_gone, timeout=30, what="the chat's image deleted by storage", interval=0.2)


# --- through the fake OpenAI Responses API --------------------------------------------------------------


async def test_three_turns_chain_their_responses(platform, admin_token) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await studio_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider=provider, model="gpt-5", system_prompt="Be brief.")

        replies = []
        for prompt in ("My cat is called Pixel", "What colour are cats?", "What is my cat called?"):
            posted = await post(admin_token, chat["id"], prompt)
            replies.append(await finished(admin_token, chat["id"], posted["replies"][0]["id"]))

        assert [r["status"] for r in replies] == ["completed"] * 3
        sent = fake.responses_requests
        assert len(sent) == 3
        assert "previous_response_id" not in sent[0] or sent[0]["previous_response_id"] is None
        assert sent[1]["previous_response_id"] == replies[0]["response_id"]
        assert sent[2]["previous_response_id"] == replies[1]["response_id"]
        assert all(request["instructions"] == "Be brief." for request in sent)
        assert "Pixel" in replies[2]["content"], "the third turn knows the first turn's words"
        status, chat_now = await api(admin_token, "GET", f"{STUDIO}/chats/{chat['id']}")
        assert status == 200
        assert chat_now["last_response_id"] == replies[2]["response_id"]
        assert replies[2]["usage"]["total_tokens"] > 0


async def test_a_text_turn_waits_for_the_previous_one(platform, admin_token) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await studio_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider=provider, model="gpt-5")
        first = await post(admin_token, chat["id"], "tell it slowly please")

        status, refused = await api(admin_token, "POST", f"{STUDIO}/chats/{chat['id']}/messages",
                                    json={"content": "and then?"})  # fmt: skip

        assert status == 409, refused
        assert refused["code"] == "reply_running"
        await finished(admin_token, chat["id"], first["replies"][0]["id"])


async def test_an_image_streams_partial_images_then_lands_in_the_admin_bucket(
    platform, admin_token, user
) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await studio_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider=provider, model="gpt-5")

        watched: dict[str, str] = {}
        async with live(admin_token, ended_reply(watched)) as events:
            posted = await post(admin_token, chat["id"], "draw a lighthouse", kind="image",
                                options={"size": "1024x1024", "quality": "low"})  # fmt: skip
            reply_id = watched["id"] = posted["replies"][0]["id"]

        partials = of(events, reply_id, "reply_partial_image")
        assert partials, "partial images were shown while the image was made"
        assert all(p.data["image"].startswith("data:image/jpeg;base64,") for p in partials)
        (completed,) = of(events, reply_id, "reply_completed")
        (image,) = completed.data["images"]
        asset, data = await download_admin_asset(admin_token, image["assetId"])
        assert asset["visibility"] == "admin-private"
        assert "/funmagic-admin/" in asset["url"]
        assert Image.open(io.BytesIO(data)).format == "PNG"
        status, _ = await api(user["token"], "GET", f"/api/assets/{image['assetId']}")
        assert status == 404
        (sent,) = fake.responses_requests
        tool = next(t for t in sent["tools"] if t["type"] == "image_generation")
        assert (tool["size"], tool["quality"]) == ("1024x1024", "low")
        assert "previous_response_id" not in sent or sent["previous_response_id"] is None


async def test_a_quoted_image_is_sent_with_the_prompt(platform, admin_token) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await studio_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider=provider, model="gpt-5")
        drawn = await post(admin_token, chat["id"], "a small house", kind="image", model="gpt-image-1")
        image_id = (await finished(admin_token, chat["id"], drawn["replies"][0]["id"]))["images"][0][
            "asset_id"
        ]

        posted = await post(admin_token, chat["id"], "describe this", quoted_image_ids=[image_id])
        reply = await finished(admin_token, chat["id"], posted["replies"][0]["id"])

        assert reply["status"] == "completed", reply
        assert "images: 1" in reply["content"]
        content = fake.responses_requests[-1]["input"][0]["content"]
        assert [part["type"] for part in content] == ["input_text", "input_image"]
        assert content[1]["image_url"].startswith("data:image/png;base64,")
        assert posted["message"]["quoted_image_ids"] == [image_id]


async def test_cancelling_a_reply_mid_stream_stops_the_call(platform, admin_token) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await studio_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider=provider, model="gpt-5")

        watched: dict[str, str] = {}
        async with live(admin_token, ended_reply(watched)) as events:
            posted = await post(admin_token, chat["id"], "write a long story slowly")
            reply_id = watched["id"] = posted["replies"][0]["id"]
            await wait_until(
                holds(lambda: bool(of(events, reply_id, "reply_delta"))), timeout=30, what="a delta"
            )
            status, cancelled = await api(admin_token, "POST", f"{STUDIO}/messages/{reply_id}/cancel")
            assert status == 200, cancelled
            assert cancelled["status"] == "cancelled"

        assert of(events, reply_id, "reply_cancelled")
        await wait_until(holds(lambda: fake.disconnected >= 1), timeout=30, what="the upstream stream closed")
        reply = (await messages(admin_token, chat["id"]))[reply_id]
        assert reply["status"] == "cancelled"


async def test_a_429_storm_delays_the_reply_while_web_tasks_keep_their_own_limits(
    platform, stack_env, e2e_redis_url, admin_token, user
) -> None:
    name = f"openai-{uuid.uuid4().hex[:10]}"  # the same provider name in both scopes
    limits = {"rateLimit": {"maxPerMinute": 1000, "maxRetries": 6}}
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        await studio_provider(admin_token, fake, limits, name=name)
        await web_provider(admin_token, fake, name, limits)
        fake.faults.queue("responses", *[Fault.rate_limited(retry_after=1) for _ in range(3)])
        chat = await new_chat(admin_token, provider=name, model="gpt-5")

        watched: dict[str, str] = {}
        async with live(admin_token, ended_reply(watched)) as events:
            posted = await post(admin_token, chat["id"], "hello through the storm")
            reply_id = watched["id"] = posted["replies"][0]["id"]
            await wait_until(
                holds(lambda: bool(of(events, reply_id, "reply_delayed"))), timeout=30, what="a delay"
            )
            web_step = await _web_step(stack_env, user, name)
            status_when_web_done = await _wait_web_step(user, web_step)
            assert status_when_web_done == "completed"
            reply_now = (await messages(admin_token, chat["id"]))[reply_id]
            assert reply_now["status"] in ("pending", "running", "completed")

        assert not of(events, reply_id, "reply_failed")
        assert of(events, reply_id, "reply_completed"), "the storm delayed the reply, it did not fail it"
        redis = Redis.from_url(e2e_redis_url)
        try:
            admin_keys = {k.decode() async for k in redis.scan_iter(match=f"prl:admin:{{{name}}}:*")}
            web_keys = {k.decode() async for k in redis.scan_iter(match=f"prl:web:{{{name}}}:*")}
            admin_calls = int(await redis.get(f"prl:admin:{{{name}}}:rpm") or 0)
            web_calls = int(await redis.get(f"prl:web:{{{name}}}:rpm") or 0)
        finally:
            await redis.aclose()
        assert admin_keys
        assert web_keys
        assert not admin_keys & web_keys
        assert admin_calls == 4, "three refused calls and the one that went through, all on the admin scope"
        assert web_calls == 1


async def _web_step(stack_env: dict, user: dict, provider: str) -> StepRequested:
    requested = StepRequested(
        task_id=str(uuid.uuid4()), user_id=user["id"], step_id="image-gen", step_type="image-gen",
        provider=provider, model="gpt-image-1", scope="web",
        input=StepInput(prompt="a web fox", options={"size": "1024x1024"}),
        attempt=1, deadline_at=datetime.now(UTC) + timedelta(seconds=120),
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    await producer.start()
    try:
        envelope = Envelope.wrap(requested)
        await producer.send_and_wait(
            TASKS_EVENTS.name, encode(envelope), key=kafka_key(envelope), headers=kafka_headers(envelope)
        )
    finally:
        await producer.stop()
    return requested


async def _wait_web_step(user: dict, requested: StepRequested) -> str:
    """The web step's outcome as its user's stream tells it."""
    _, events, _ = await read_sse(
        user["token"], "/api/stream",
        stop_after=lambda e: isinstance(e.data, dict) and e.data.get("taskId") == requested.task_id
        and e.event == "step_completed",
        timeout=60,
    )  # fmt: skip
    return "completed" if any(e.event == "step_completed" for e in events) else "unknown"


async def test_a_batch_of_eight_runs_two_at_a_time_and_every_image_arrives(platform, admin_token) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        fake.faults.set_latency("generations", 0.3)
        provider = await studio_provider(admin_token, fake, {"rateLimit": {"maxConcurrency": 2}})
        chat = await new_chat(admin_token, provider=provider, model="gpt-5")

        posted = await post(
            admin_token, chat["id"], "eight foxes", kind="image", model="gpt-image-1", variants=8
        )
        replies = [await finished(admin_token, chat["id"], r["id"], timeout=90) for r in posted["replies"]]

        assert [r["status"] for r in replies] == ["completed"] * 8
        assert sorted(r["variant"] for r in replies) == list(range(8))
        assert len({r["images"][0]["asset_id"] for r in replies}) == 8
        assert fake.max_in_flight == 2, "maxConcurrency 2 serialises the batch in pairs"


async def test_a_failed_variant_does_not_fail_the_others(platform, admin_token) -> None:
    async with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        provider = await studio_provider(admin_token, fake, {"rateLimit": {"maxConcurrency": 1}})
        fake.faults.queue(
            "generations",
            Fault.error(
                400,
                {
                    "error": {
                        "message": "bad",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_value",
                    }
                },
            ),
        )
        chat = await new_chat(admin_token, provider=provider, model="gpt-5")

        posted = await post(
            admin_token, chat["id"], "three owls", kind="image", model="gpt-image-1", variants=3
        )
        replies = [await finished(admin_token, chat["id"], r["id"]) for r in posted["replies"]]

        assert sorted(r["status"] for r in replies) == ["completed", "completed", "failed"]
        assert next(r for r in replies if r["status"] == "failed")["error_code"]
