"""The queue monitor, end to end through the gateway: who may use it; the lag of a real consumer group with
its partitions and trend; a poisoned event landing in the dead-letter topic with its headers and, once the
handler is "fixed", a replay that processes it exactly once; step jobs and the rate limiter with real jobs
held back by a daily limit; the circuit breakers.

The poison is the kit's test hook: the platform runs with FUNMAGIC_POISON_DIR (the `poison_dir` fixture),
and while a file named after an event id is there, every consumer refuses that event for good. The event
is a `UserRegistered` for a new user id, published to identity.events as identity would: credits (its one
consumer) dead-letters it instead of granting the sign-up bonus, and after the replay grants it — once,
which the user's balance and credit history show through the admin API, and Kafka itself confirms (the
event is on its origin topic twice: published, and replayed once).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from clients import PASSWORD, bearer, browser, call, png, upload
from test_backend_parity import completed_task
from test_backend_parity import new_user as new_bonus_user

from funmagic_contracts.envelope import Envelope, encode, kafka_headers
from funmagic_contracts.identity.events import UserRegistered
from funmagic_kit.kafka import create_producer
from funmagic_kit.testing import wait_until

QUEUE = "/api/admin/queue"
DLQ_KEY = "identity-events-dlq"
MESSAGES = f"{QUEUE}/dead-letters/{DLQ_KEY}/messages"
REPLAY = f"{QUEUE}/dead-letters/{DLQ_KEY}/replay"
BONUS = 50
# An offset no dead-letter topic reaches: a replay of it touches nothing, whoever may ask.
NOWHERE = {"messages": [{"partition": 0, "offset": 10**15}]}


async def api(method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    headers = {**(bearer(token) if token else {}), **kwargs.pop("headers", {})}
    async with browser() as client:
        status, body, _ = await call(client, method, path, headers=headers, **kwargs)
    return status, body


async def get(path: str, token: str, **params: Any) -> Any:
    status, body = await api("GET", path, token, params=params)
    assert status == 200, (path, body)
    return body


async def new_user() -> dict[str, str]:
    email = f"queue-{uuid.uuid4().hex[:12]}@example.com"
    status, account = await api(
        "POST", "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "mode": "token"}
    )
    assert status == 201, account
    return {"id": account["user"]["id"], "token": account["access_token"], "email": email}


# --- who may use it -------------------------------------------------------------------------------------


async def test_only_admins_and_super_admins_may_use_the_queue_monitor(platform, admin_token: str) -> None:
    user, promoted = await new_user(), await new_user()
    status, granted = await api(
        "PUT", f"/api/admin/users/{promoted['id']}/role", admin_token, json={"role": "admin"}
    )
    assert (status, granted["role"]) == (200, "admin"), granted
    status, signed_in = await api(  # a token issued after the promotion carries the role
        "POST", "/api/auth/sign-in/email", json={"email": promoted["email"], "password": PASSWORD,
                                                 "mode": "token"},
    )  # fmt: skip
    assert status in (200, 201), signed_in
    tokens = {"anonymous": None, "user": user["token"], "admin": signed_in["access_token"],
              "super_admin": admin_token}  # fmt: skip
    routes = [
        ("GET", f"{QUEUE}/lag", None),
        ("GET", f"{QUEUE}/dead-letters", None),
        ("GET", MESSAGES, None),
        ("POST", REPLAY, NOWHERE),
        ("GET", f"{QUEUE}/step-jobs", None),
        ("GET", f"{QUEUE}/limiter", None),
        ("GET", f"{QUEUE}/circuits", None),
    ]

    for method, path, body in routes:
        statuses = {who: (await api(method, path, token, json=body))[0] for who, token in tokens.items()}
        assert statuses == {"anonymous": 401, "user": 403, "admin": 200, "super_admin": 200}, (method, path)

    status, answer = await api("POST", REPLAY, admin_token, json=NOWHERE)
    assert answer["items"] == [
        {"partition": 0, "offset": 10**15, "status": "not_found", "event_id": None, "origin_topic": None,
         "detail": None}
    ]  # fmt: skip
    status, problem = await api("GET", f"{QUEUE}/dead-letters/identity-events/messages", admin_token)
    assert (status, problem["code"]) == (404, "dead_letter_topic_not_found"), problem
    status, problem = await api("POST", REPLAY, admin_token, json={"messages": []})
    assert status == 422, problem
    too_many = {"messages": [{"partition": 0, "offset": n} for n in range(101)]}
    status, problem = await api("POST", REPLAY, admin_token, json=too_many)
    assert status == 422, problem


# --- lag ------------------------------------------------------------------------------------------------


async def test_the_lag_of_a_real_consumer_group_is_read_per_partition_with_its_trend(
    platform, admin_token: str
) -> None:
    await new_user()  # an event for credits to consume, so its group has committed on identity.events

    seen: list[dict[str, Any]] = []

    async def credits_caught_up() -> bool:
        # Stable too: a group that is rebalancing (a service restarting) has no members to count.
        lag = await get(f"{QUEUE}/lag", admin_token)
        seen[:] = [lag]
        found = [g for g in lag["groups"] if (g["group"], g["topic"]) == ("credits", "identity.events")]
        return bool(found) and found[0]["lag"] == 0 and found[0]["state"] == "Stable"

    await wait_until(
        credits_caught_up, timeout=30, what="credits to have consumed identity.events", interval=0.2
    )
    lag = seen[0]

    (credits,) = [g for g in lag["groups"] if (g["group"], g["topic"]) == ("credits", "identity.events")]
    topics = {t["topic"]: t for t in lag["topics"]}
    assert len(credits["partitions"]) == topics["identity.events"]["partitions"] > 0
    for partition in credits["partitions"]:
        committed = partition["committed_offset"]
        assert partition["lag"] == 0
        assert committed is None or committed == partition["end_offset"], partition
    assert credits["members"] >= 1, credits
    assert credits["trend"], "a read keeps a sample when none is recent"
    assert all(isinstance(s["lag"], int) for s in credits["trend"])
    assert lag["total_lag"] == sum(g["lag"] for g in lag["groups"])
    assert "credits" in topics["identity.events"]["consumer_groups"]
    dead_letters = topics["identity.events.dlq"]
    assert (dead_letters["kind"], dead_letters["consumer_groups"]) == ("dead_letters", [])


async def test_a_task_makes_tasks_and_providers_commit_on_each_others_topics(
    platform, seeded_tools: None, admin_token: str
) -> None:
    """A group shows once it has committed on a topic: one task, and tasks reads the providers' step
    events while providers reads the step requests."""
    user = await new_bonus_user("queue-lag")
    image = await upload(user["token"], png())
    await completed_task(user, {"toolSlug": "background-remove", "input": {"imageAssetId": image}})
    pairs: set[tuple[str, str]] = set()

    async def both_groups_listed() -> bool:
        lag = await get(f"{QUEUE}/lag", admin_token)
        pairs.clear()
        pairs.update((g["group"], g["topic"]) for g in lag["groups"])
        return {("tasks", "providers.events"), ("providers", "tasks.events")} <= pairs

    await wait_until(both_groups_listed, timeout=30, what="both groups to have committed", interval=0.2)


# --- a poisoned event, dead-lettered, then replayed once --------------------------------------------------


def registered(user_id: str) -> Envelope:
    return Envelope.wrap(
        UserRegistered(
            user_id=user_id, email=f"{user_id}@example.com", name="Poisoned", method="email",
            registered_at=datetime.now(UTC),
        )
    )  # fmt: skip


async def credits_of(admin_token: str, user_id: str) -> dict[str, Any]:
    return await get(f"/api/admin/users/{user_id}/credits", admin_token)


async def bonuses(admin_token: str, user_id: str) -> int:
    history = (await credits_of(admin_token, user_id))["transactions"]["items"]
    return sum(1 for item in history if item["type"] == "bonus")


async def dead_letter_of(admin_token: str, event_id: str) -> dict[str, Any] | None:
    page = await get(MESSAGES, admin_token, limit=100)
    found = [m for m in page["items"] if m["event_id"] == event_id]
    return found[0] if found else None


async def copies_on_kafka(kafka: str, sent: Any, value: bytes) -> int:
    """How many times `value` is on its partition of identity.events from where it was first written."""
    tp = TopicPartition(sent.topic, sent.partition)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([tp])
        end = (await reader.end_offsets([tp]))[tp]
        reader.seek(tp, sent.offset)
        copies = 0
        while await reader.position(tp) < end:
            batch = await reader.getmany(tp, timeout_ms=1000)
            copies += sum(1 for record in batch.get(tp, ()) if record.value == value and record.offset < end)
    finally:
        await reader.stop()
    return copies


async def test_a_poisoned_event_is_dead_lettered_and_a_replay_processes_it_exactly_once(
    platform, admin_token: str, poison_dir: Path, stack_env: dict[str, str]
) -> None:
    kafka = stack_env["KAFKA_BOOTSTRAP_SERVERS"]
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    poisoned = {user_id: registered(user_id) for user_id in (first, second)}
    for envelope in poisoned.values():
        (poison_dir / str(envelope.id)).touch()
    before = await get(f"{QUEUE}/dead-letters", admin_token)

    producer = await create_producer(kafka, client_id="e2e-queue")
    try:
        sent = {
            user_id: await producer.send_and_wait(
                "identity.events", encode(e), key=user_id.encode(), headers=kafka_headers(e)
            )
            for user_id, e in poisoned.items()
        }
    finally:
        await producer.stop()

    letters: dict[str, dict[str, Any]] = {}

    async def both_dead_lettered() -> bool:
        for user_id, envelope in poisoned.items():
            letter = await dead_letter_of(admin_token, str(envelope.id))
            if letter is None:
                return False
            letters[user_id] = letter
        return True

    await wait_until(
        both_dead_lettered, timeout=30, what="credits to dead-letter the poisoned events", interval=0.2
    )
    letter = letters[first]
    assert letter["error"] == "PermanentError: poisoned by a test hook"
    assert (letter["consumer"], letter["attempts"], letter["origin_topic"]) == (
        "credits",
        1,
        "identity.events",
    )
    assert (letter["origin_partition"], letter["origin_offset"]) == (
        sent[first].partition,
        sent[first].offset,
    )
    assert (letter["event_type"], letter["key"], letter["replayed"]) == ("UserRegistered", first, False)
    assert letter["headers"]["type"] == "UserRegistered"
    assert not any(name.startswith("dlq-") for name in letter["headers"])
    assert letter["value_preview"] == encode(poisoned[first]).decode()
    after = await get(f"{QUEUE}/dead-letters", admin_token)
    dlq = {t["key"]: t for t in after["items"]}[DLQ_KEY]
    was = {t["key"]: t for t in before["items"]}[DLQ_KEY]
    assert (dlq["topic"], dlq["origin_topic"]) == ("identity.events.dlq", "identity.events")
    assert dlq["messages"] >= was["messages"] + 2
    assert dlq["messages"] == sum(p["messages"] for p in dlq["partitions"])
    assert (await credits_of(admin_token, first))["balance"] == 0, "no bonus while the handler fails"

    for envelope in poisoned.values():  # the handler is "fixed"
        (poison_dir / str(envelope.id)).unlink()
    position = {"partition": letter["partition"], "offset": letter["offset"]}
    status, replayed = await api(
        "POST", REPLAY, admin_token, json={"messages": [position], "reason": "fixed"}
    )
    assert status == 200, replayed
    assert replayed["topic"] == "identity.events.dlq"
    assert [(i["status"], i["event_id"], i["origin_topic"]) for i in replayed["items"]] == [
        ("replayed", str(poisoned[first].id), "identity.events")
    ]

    async def bonus_granted(user_id: str) -> bool:
        return (await credits_of(admin_token, user_id))["balance"] == BONUS

    await wait_until(
        lambda: bonus_granted(first), timeout=30, what="the replayed event's bonus", interval=0.2
    )

    status, again = await api("POST", REPLAY, admin_token, json={"messages": [position]})
    assert status == 200, again
    assert [i["status"] for i in again["items"]] == ["already_replayed"]
    # Then the other event: the outbox relays in order, so once its bonus shows, anything the second replay
    # of the first event had published would have reached Kafka (and credits) before it.
    other = letters[second]
    status, replayed = await api(
        "POST",
        REPLAY,
        admin_token,
        json={"messages": [{"partition": other["partition"], "offset": other["offset"]}]},
    )
    assert [i["status"] for i in replayed["items"]] == ["replayed"], replayed
    await wait_until(lambda: bonus_granted(second), timeout=30, what="the second event's bonus", interval=0.2)

    assert (await credits_of(admin_token, first))["balance"] == BONUS
    assert await bonuses(admin_token, first) == 1
    assert await copies_on_kafka(kafka, sent[first], encode(poisoned[first])) == 2, (
        "published, then replayed once"
    )
    shown = await dead_letter_of(admin_token, str(poisoned[first].id))
    assert shown is not None
    assert shown["replayed"] is True
    assert shown["replayed_at"] is not None
    assert shown["replayed_by"] == (await get("/api/auth/me", admin_token))["id"]


# --- step jobs, the limiter and the circuits ------------------------------------------------------------


async def limited_tool(admin_token: str) -> tuple[str, str]:
    """A provider of type local allowed one call a day, and a one-step tool on it: (provider, tool slug)."""
    provider = f"e2e-queue-{uuid.uuid4().hex[:8]}"
    body = {"name": provider, "type": "local",
            "config": {"rateLimit": {"maxConcurrency": 2, "maxPerMinute": 5, "maxPerDay": 1}}}  # fmt: skip
    status, created = await api("POST", "/api/admin/providers", admin_token, json=body)
    assert status == 201, created
    status, tool_type = await api(
        "POST", "/api/admin/tool-types", admin_token, json={"name": provider, "display_name": provider}
    )
    assert status == 201, tool_type
    step = {"id": "paint", "name": "Paint", "type": "image-gen", "cost": 1,
            "provider": {"name": provider, "model": "default", "options": {"size": "64x64"}},
            "input": {"image": "none", "prompt": "required"}}  # fmt: skip
    tool = {"slug": provider, "title": provider, "tool_type_id": tool_type["id"], "config": {"steps": [step]}}
    status, created = await api("POST", "/api/admin/tools", admin_token, json=tool)
    assert status == 201, created
    return provider, str(created["slug"])


async def test_step_jobs_and_the_limiter_show_a_job_held_back_by_a_daily_limit(
    platform, admin_token: str
) -> None:
    provider, slug = await limited_tool(admin_token)
    user = await new_user()
    await wait_until(lambda: bonus_granted_to(user), timeout=30, what="the sign-up bonus", interval=0.2)

    tasks = []
    for prompt in ("a lighthouse", "a windmill"):
        status, task = await api(
            "POST", "/api/tasks", user["token"], json={"toolSlug": slug, "input": {"prompt": prompt}}
        )
        assert status == 202, task
        tasks.append(task["id"])

    async def one_done_one_delayed() -> bool:
        jobs = await get(f"{QUEUE}/step-jobs", admin_token)
        mine = {j["state"]: j for j in jobs["items"] if (j["scope"], j["provider"]) == ("web", provider)}
        statuses = [(await get(f"/api/tasks/{t}", user["token"]))["status"] for t in tasks]
        return "completed" in statuses and set(mine) == {"delayed"}

    await wait_until(one_done_one_delayed, timeout=60, what="one task done and one held back", interval=0.2)
    jobs = await get(f"{QUEUE}/step-jobs", admin_token)
    (held,) = [j for j in jobs["items"] if (j["scope"], j["provider"]) == ("web", provider)]
    assert (held["state"], held["count"]) == ("delayed", 1)
    assert 0 <= held["oldest_age_seconds"] < 120
    assert set(jobs["totals"]) == {"queued", "delayed", "retrying", "running"}
    assert jobs["totals"]["delayed"] >= 1

    limiter = await get(f"{QUEUE}/limiter", admin_token)
    (state,) = [s for s in limiter["items"] if (s["scope"], s["provider"]) == ("web", provider)]
    assert (state["max_concurrency"], state["max_per_minute"], state["max_per_day"]) == (2, 5, 1)
    assert (state["used_per_day"], state["in_flight"]) == (1, 0)
    assert state["used_per_minute"] in (0, 1)  # 1 unless the minute window already ended
    assert state["day"] == datetime.now(UTC).strftime("%Y-%m-%d")
    local = [s for s in limiter["items"] if s["provider"] == "local"]
    assert {s["scope"] for s in local} == {"web", "admin"}
    assert all(s["max_concurrency"] is None for s in local), "the built-in provider has no limits"

    circuits = await get(f"{QUEUE}/circuits", admin_token)
    assert circuits["replica"]
    (circuit,) = [c for c in circuits["items"] if (c["scope"], c["provider"]) == ("web", provider)]
    assert (circuit["state"], circuit["consecutive_failures"], circuit["opened_at"]) == ("closed", 0, None)
    assert circuit["failure_threshold"] >= 1

    for task_id in tasks:  # the held-back one would wait until tomorrow: end it
        await api("POST", f"/api/tasks/{task_id}/cancel", user["token"])


async def bonus_granted_to(user: dict[str, str]) -> bool:
    status, body = await api("GET", "/api/credits/balance", user["token"])
    return status == 200 and body["balance"] == BONUS
