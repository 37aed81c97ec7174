"""Credits through the gateway and Kafka: the sign-up bonus, holds for tasks, purchases, adjustments."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from clients import (
    GATEWAY_URL,
    PASSWORD,
    STRIPE_WEBHOOK_SECRET,
    bearer,
    browser,
    call,
    sign_in,
    sign_up,
    unique_email,
)

from funmagic_contracts.envelope import Envelope, encode, kafka_headers, kafka_key
from funmagic_contracts.tasks.events import TaskCompleted, TaskFailed, TaskOutput, TaskRequested
from funmagic_contracts.topics import TASKS_EVENTS
from funmagic_kit.testing import wait_until

WEBHOOK_URL = f"{GATEWAY_URL}/api/webhooks/stripe"


async def _balance(token: str) -> dict:
    async with browser() as client:
        status, body, _ = await call(client, "GET", "/api/credits/balance", headers=bearer(token))
        assert status == 200, body
        return body


async def _wait_for_balance(token: str, expected: dict, timeout: float = 30.0) -> dict:
    """The balance once it shows every `expected` value."""
    latest: list[dict] = []

    async def shows_expected() -> bool:
        latest[:] = [await _balance(token)]
        return all(latest[0][k] == v for k, v in expected.items())

    await wait_until(shows_expected, timeout=timeout, what=f"the balance to show {expected}", interval=0.1)
    return latest[0]


async def _new_user(prefix: str) -> dict:
    async with browser() as client:
        return await sign_up(client, unique_email(prefix), mode="token")


@pytest.fixture(scope="module")
def admin_token(platform, identity_command) -> str:
    email = unique_email("credits-admin")
    result = identity_command(
        "create-admin", "--email", email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
    )
    assert result.returncode == 0, result.stderr

    async def token() -> str:
        async with browser() as client:
            _, body = await sign_in(client, email, mode="token")
            return body["access_token"]

    return asyncio.run(token())


async def _produce(stack_env: dict, *events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack_env["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    await producer.start()
    try:
        for item in events:
            envelope = item if isinstance(item, Envelope) else Envelope.wrap(item)
            await producer.send_and_wait(
                TASKS_EVENTS.name, encode(envelope), key=kafka_key(envelope), headers=kafka_headers(envelope)
            )
    finally:
        await producer.stop()


def _task_requested(user_id: str, price: int) -> TaskRequested:
    return TaskRequested(
        task_id=str(uuid.uuid4()),
        user_id=user_id,
        tool_id=str(uuid.uuid4()),
        tool_slug="background-remove",
        step_ids=("remove-bg",),
        price=price,
    )


async def test_a_new_account_gets_the_sign_up_bonus_once(platform) -> None:
    account = await _new_user("bonus")
    body = await _wait_for_balance(account["access_token"], {"balance": 50})
    assert body["lifetime_earned"] == 50
    async with browser() as client:
        status, history, _ = await call(
            client, "GET", "/api/credits/transactions", headers=bearer(account["access_token"])
        )
    assert status == 200
    assert [(t["type"], t["amount"]) for t in history["items"]] == [("bonus", 50)]


async def test_a_task_holds_its_price_and_a_failure_gives_it_back(platform, stack_env) -> None:
    account = await _new_user("task")
    user_id, token = account["user"]["id"], account["access_token"]
    await _wait_for_balance(token, {"balance": 50})

    requested = Envelope.wrap(_task_requested(user_id, 30))
    await _produce(stack_env, requested, requested, Envelope.wrap(TaskRequested(**requested.data)))
    await _wait_for_balance(token, {"balance": 20, "reserved_balance": 30})

    task_id = requested.data["task_id"]
    await _produce(
        stack_env,
        TaskFailed(
            task_id=task_id,
            user_id=user_id,
            error_code="provider_error",
            error_message="x",
            charged_credits=0,
        ),
    )
    await _wait_for_balance(token, {"balance": 50, "reserved_balance": 0, "lifetime_spent": 0})


async def test_a_completed_task_spends_only_what_it_used(platform, stack_env) -> None:
    account = await _new_user("spend")
    user_id, token = account["user"]["id"], account["access_token"]
    await _wait_for_balance(token, {"balance": 50})
    requested = _task_requested(user_id, 40)
    await _produce(stack_env, requested)
    await _wait_for_balance(token, {"balance": 10, "reserved_balance": 40})

    await _produce(
        stack_env,
        TaskCompleted(
            task_id=requested.task_id, user_id=user_id, output=TaskOutput(assets=[]), charged_credits=25
        ),
    )
    body = await _wait_for_balance(token, {"balance": 25, "reserved_balance": 0, "lifetime_spent": 25})
    assert body["lifetime_earned"] == 50


async def test_a_purchase_is_credited_once_however_often_stripe_delivers_it(
    platform, stripe_fake, admin_token: str
) -> None:
    price_id = f"price_{uuid.uuid4().hex[:12]}"
    stripe_fake.fake.register_price(price_id, 999, "usd", "500 credits")
    account = await _new_user("buyer")
    token = account["access_token"]
    await _wait_for_balance(token, {"balance": 50})
    async with browser() as client:
        status, package, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={
                "name": "500 credits",
                "credits": 500,
                "price_minor": 999,
                "currency": "USD",
                "stripe_price_id": price_id,
            },
            headers=bearer(admin_token),
        )
        assert status == 201, package
        status, listed, _ = await call(client, "GET", "/api/credits/packages")
        assert package["id"] in [p["id"] for p in listed["items"]]
        status, checkout, _ = await call(
            client, "POST", "/api/credits/checkout", json={"package_id": package["id"]}, headers=bearer(token)
        )
        assert status == 201, checkout
        assert checkout["url"].startswith(stripe_fake.url)

    event = stripe_fake.fake.complete_session(checkout["session_id"])
    statuses = [
        (await stripe_fake.fake.deliver(event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET))[0] for _ in range(5)
    ]

    assert statuses == [200] * 5
    body = await _balance(token)
    assert body["balance"] == 550
    async with browser() as client:
        _, history, _ = await call(client, "GET", "/api/credits/transactions", headers=bearer(token))
    assert [t["type"] for t in history["items"]].count("purchase") == 1


async def test_forged_stale_and_unknown_payments_are_refused(platform, stripe_fake, admin_token: str) -> None:
    price_id = f"price_{uuid.uuid4().hex[:12]}"
    stripe_fake.fake.register_price(price_id, 500, "usd")
    account = await _new_user("forger")
    token = account["access_token"]
    await _wait_for_balance(token, {"balance": 50})
    async with browser() as client:
        _, package, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={
                "name": "p",
                "credits": 100,
                "price_minor": 500,
                "currency": "USD",
                "stripe_price_id": price_id,
            },
            headers=bearer(admin_token),
        )
        _, checkout, _ = await call(
            client, "POST", "/api/credits/checkout", json={"package_id": package["id"]}, headers=bearer(token)
        )
    event = stripe_fake.fake.complete_session(checkout["session_id"])

    status, body = await stripe_fake.fake.deliver(event, WEBHOOK_URL, "whsec_not_the_secret")
    assert status == 400, body
    status, body = await stripe_fake.fake.deliver(
        event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET, timestamp=int(time.time()) - 1000
    )
    assert status == 400, body
    status, body = await stripe_fake.fake.deliver(
        event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET, signature_override="t=1"
    )
    assert status == 400, body
    assert (await _balance(token))["balance"] == 50, "nothing was credited"

    unknown = {
        **event,
        "id": f"evt_{uuid.uuid4().hex}",
        "data": {
            "object": {
                **event["data"]["object"],
                "id": f"cs_test_{uuid.uuid4().hex}",
                "metadata": {"package_id": str(uuid.uuid4()), "user_id": account["user"]["id"]},
            }
        },
    }
    status, body = await stripe_fake.fake.deliver(unknown, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET)
    assert status == 400, body
    assert "package" in body

    status, _ = await stripe_fake.fake.deliver(event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET)
    assert status == 200, "the genuine delivery still credits after the refused ones"
    assert (await _balance(token))["balance"] == 150


async def test_checkout_of_an_unknown_or_withdrawn_package_is_refused(platform, admin_token: str) -> None:
    account = await _new_user("nopkg")
    async with browser() as client:
        status, problem, _ = await call(
            client,
            "POST",
            "/api/credits/checkout",
            json={"package_id": str(uuid.uuid4())},
            headers=bearer(account["access_token"]),
        )
        assert status == 404, problem
        _, package, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={"name": "old", "credits": 10, "price_minor": 100, "currency": "EUR", "is_active": False},
            headers=bearer(admin_token),
        )
        status, problem, _ = await call(
            client,
            "POST",
            "/api/credits/checkout",
            json={"package_id": package["id"]},
            headers=bearer(account["access_token"]),
        )
        assert status == 409, problem


async def test_an_admin_adjusts_a_balance_but_never_below_zero(platform, admin_token: str) -> None:
    account = await _new_user("adjusted")
    user_id, token = account["user"]["id"], account["access_token"]
    await _wait_for_balance(token, {"balance": 50})
    async with browser() as client:
        path = f"/api/admin/users/{user_id}/credits"
        status, problem, _ = await call(
            client, "POST", path, json={"amount": -51, "reason": "too much"}, headers=bearer(admin_token)
        )
        assert status == 409, problem
        status, problem, _ = await call(
            client, "POST", path, json={"amount": 10}, headers=bearer(admin_token)
        )
        assert status == 422, "a reason is required"
        key = {"Idempotency-Key": f"adjust-{uuid.uuid4()}"}
        for _ in range(2):
            status, body, _ = await call(
                client,
                "POST",
                path,
                json={"amount": -20, "reason": "chargeback"},
                headers={**bearer(admin_token), **key},
            )
            assert status == 201, body
        assert body["balance"] == 30, "a retried adjustment applies once"
        status, _, _ = await call(
            client, "POST", path, json={"amount": 5, "reason": "x"}, headers=bearer(token)
        )
        assert status == 403, "users do not adjust balances"
        status, ledger, _ = await call(
            client, "GET", f"/api/admin/users/{user_id}/ledger", headers=bearer(admin_token)
        )
        assert status == 200
        assert [e["type"] for e in ledger["items"]] == ["Adjusted", "Granted"]


# A package's content: an admin sells a package with bonus credits and a Japanese translation; a buyer reads
# it in Japanese, pays through the fake Stripe, and gets credits + bonus once, however often Stripe delivers.
async def test_a_package_with_a_bonus_and_a_translation_is_shown_in_japanese_and_credited_once(
    platform, stripe_fake, admin_token: str
) -> None:
    price_id = f"price_{uuid.uuid4().hex[:12]}"
    stripe_fake.fake.register_price(price_id, 1999, "usd", "Creator")
    name = f"Creator {uuid.uuid4().hex[:6]}"
    account = await _new_user("bonus-buyer")
    token = account["access_token"]

    async with browser() as client:
        status, package, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={
                "name": name,
                "description": "For regular creators",
                "credits": 500,
                "bonus_credits": 100,
                "is_popular": True,
                "price_minor": 1999,
                "currency": "USD",
                "stripe_price_id": price_id,
                "translations": {"ja": {"name": "クリエイター", "description": "よく使う方に"}},
            },
            headers=bearer(admin_token),
        )
        assert status == 201, package
        assert package["translations"] == {"ja": {"name": "クリエイター", "description": "よく使う方に"}}

        status, ja, _ = await call(client, "GET", "/api/credits/packages?locale=ja")
        assert status == 200, ja
        (shown,) = [p for p in ja["items"] if p["id"] == package["id"]]
        assert (shown["name"], shown["description"]) == ("クリエイター", "よく使う方に")
        assert (shown["credits"], shown["bonus_credits"], shown["is_popular"]) == (500, 100, True)
        assert "translations" not in shown  # the public list shows texts, not the editor's data

        # No translation for French: English, field by field.
        _, fr, _ = await call(client, "GET", "/api/credits/packages?locale=fr")
        (shown,) = [p for p in fr["items"] if p["id"] == package["id"]]
        assert (shown["name"], shown["description"]) == (name, "For regular creators")
        status, refused, _ = await call(client, "GET", "/api/credits/packages?locale=japanese")
        assert status == 422, refused

        # More than ten times the credits as a bonus is refused, naming the field.
        status, problem, _ = await call(
            client,
            "POST",
            "/api/admin/credit-packages",
            json={
                "name": "Too generous",
                "credits": 10,
                "bonus_credits": 101,
                "price_minor": 1,
                "currency": "USD",
            },
            headers=bearer(admin_token),
        )
        assert status == 422, problem
        assert "bonus_credits" in str(problem)

        status, checkout, _ = await call(
            client, "POST", "/api/credits/checkout", json={"package_id": package["id"]}, headers=bearer(token)
        )
        assert status == 201, checkout

    event = stripe_fake.fake.complete_session(checkout["session_id"])
    for _ in range(2):  # Stripe delivers the same event again
        status, receipt = await stripe_fake.fake.deliver(event, WEBHOOK_URL, STRIPE_WEBHOOK_SECRET)
        assert status == 200, receipt

    async with browser() as client:
        _, history, _ = await call(client, "GET", "/api/credits/transactions", headers=bearer(token))
    purchases = [(t["amount"], t["description"]) for t in history["items"] if t["type"] == "purchase"]
    assert purchases == [(600, "Purchase of 500 credits + 100 bonus")]

    # The balance is the purchase (credits + bonus, once) plus the sign-up bonus, whenever that one lands:
    # read both until they agree (a second crediting never would).
    async def balance_is_the_purchase_and_the_sign_up_bonus() -> bool:
        async with browser() as client:
            _, entries, _ = await call(client, "GET", "/api/credits/transactions", headers=bearer(token))
        signup = sum(t["amount"] for t in entries["items"] if t["type"] == "bonus")
        return (await _balance(token))["balance"] == signup + 600

    await wait_until(
        balance_is_the_purchase_and_the_sign_up_bonus, timeout=10, what="the balance", interval=0.2
    )
