"""The HTTP API of credits as the runtime serves it (the routes `build` returns behind the kit's problem+json
middleware): refusals keep their statuses and codes, checkout and Stripe webhooks credit a purchase once."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from credits_test_support import (
    STRIPE_WEBHOOK_SECRET,
    FakePayments,
    credits_service,
    credits_settings,
    rows,
    scalar,
)
from psycopg_pool import AsyncConnectionPool

from funmagic_contracts.envelope import decode
from funmagic_credits.bootstrap import Credits, build

PACKAGE = {"name": "Starter", "credits": 100, "price_minor": 999, "currency": "EUR"}


def new_id() -> str:
    return str(uuid.uuid4())


def as_user(user_id: str) -> dict[str, str]:
    return {"X-Test-User": user_id}


def as_admin() -> dict[str, str]:
    return {"X-Test-User": new_id(), "X-Test-Role": "admin"}


def signed(event: dict[str, Any], secret: str = STRIPE_WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    """A webhook delivery as Stripe signs it: HMAC-SHA256 over `{t}.{body}`."""
    payload = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}


def session_event(
    session_id: str,
    *,
    event_type: str = "checkout.session.completed",
    payment_status: str = "paid",
    metadata: dict[str, str] | None = None,
    client_reference_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "payment_status": payment_status,
                "amount_total": 999,
                "currency": "eur",
                "client_reference_id": client_reference_id,
                "metadata": metadata or {},
            }
        },
    }


async def problem_of(response: aiohttp.ClientResponse) -> tuple[int, str | None]:
    body = await response.json(content_type=None)
    assert response.content_type == "application/problem+json", body
    return response.status, body.get("code")


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments()


@pytest.fixture
def credits(pool: AsyncConnectionPool, payments: FakePayments) -> Credits:
    return credits_service(pool, payments=payments)


@pytest.fixture
async def http(serve, credits: Credits) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve(credits.parts.routes) as session:
        yield session


async def add_package(http: aiohttp.ClientSession, **changes: Any) -> dict[str, Any]:
    async with http.post("/v1/admin/packages", json={**PACKAGE, **changes}, headers=as_admin()) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def balance(http: aiohttp.ClientSession, user: str) -> int:
    async with http.get("/v1/credits/me", headers=as_user(user)) as response:
        assert response.status == 200
        return (await response.json())["balance"]


# --- checkout --------------------------------------------------------------------------------------------


async def test_checking_out_an_unknown_package_is_not_found_and_a_withdrawn_one_a_conflict(
    http, payments: FakePayments
) -> None:
    user = new_id()
    withdrawn = await add_package(http, is_active=False)
    for package_id in (new_id(), "not-a-uuid"):
        async with http.post("/v1/checkout", json={"package_id": package_id}, headers=as_user(user)) as r:
            assert await problem_of(r) == (404, "unknown_package")
    async with http.post("/v1/checkout", json={"package_id": withdrawn["id"]}, headers=as_user(user)) as r:
        assert await problem_of(r) == (409, "package_unavailable")
    assert payments.created == [], "Stripe is not asked"


async def test_a_checkout_opens_a_stripe_session_keyed_by_the_idempotency_key(http, payments, pool) -> None:
    user = new_id()
    package = await add_package(http)
    headers = {**as_user(user), "Idempotency-Key": "checkout-1"}

    async with http.post("/v1/checkout", json={"package_id": package["id"]}, headers=headers) as response:
        assert response.status == 201
        started = await response.json()

    (request,) = payments.created
    assert started == {"session_id": started["session_id"], "url": started["url"]}
    assert request["idempotency_key"] == f"checkout:{user}:{package['id']}:checkout-1"
    sold = request["package"]
    assert (request["user_id"], sold.id, sold.price_minor) == (user, package["id"], 999)
    assert await scalar(
        pool, "SELECT status FROM purchases WHERE session_id = %s", started["session_id"]
    ) == ("pending")


@pytest.mark.parametrize(
    ("stripe_error", "answer"),
    [
        # An admin typed a price id Stripe does not have: the package cannot be sold until it is fixed.
        ({"code": "resource_missing", "param": "line_items[0][price]"}, (409, "package_unavailable")),
        # Our own request is wrong (a revoked key, say): nothing the buyer can change.
        ({"code": "api_key_expired"}, (502, "payment_provider_refused")),
    ],
)
async def test_stripe_refusing_a_checkout_names_whose_problem_it_is(
    pool, serve, stripe_error: dict, answer: tuple[int, str]
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": {"type": "invalid_request_error", **stripe_error}}, status=400)

    stripe = web.Application()
    stripe.router.add_post("/v1/checkout/sessions", refuse)
    async with TestServer(stripe) as server, aiohttp.ClientSession() as outbound:
        settings = credits_settings(STRIPE_API_BASE=str(server.make_url("")).rstrip("/"))
        credits = build(settings, pool=pool, http=outbound)  # the real Stripe client
        async with serve(credits.parts.routes) as http:
            package = await add_package(http)
            async with http.post(
                "/v1/checkout", json={"package_id": package["id"]}, headers=as_user(new_id())
            ) as response:
                assert await problem_of(response) == answer


# --- webhooks --------------------------------------------------------------------------------------------


async def test_a_paid_session_is_credited_once_however_often_stripe_reports_it(http, pool) -> None:
    user = new_id()
    package = await add_package(http)
    async with http.post("/v1/checkout", json={"package_id": package["id"]}, headers=as_user(user)) as r:
        session_id = (await r.json())["session_id"]
    paid = session_event(session_id)
    again_later = session_event(session_id, event_type="checkout.session.async_payment_succeeded")

    outcomes = []
    for event in (paid, paid, again_later):
        payload, headers = signed(event)
        async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
            assert response.status == 200
            outcomes.append((await response.json())["outcome"])

    assert outcomes == ["credited", "duplicate", "duplicate"]
    assert await balance(http, user) == 100
    assert await scalar(pool, "SELECT status FROM purchases WHERE session_id = %s", session_id) == "completed"


async def test_unpaid_sessions_and_other_events_credit_nothing(http) -> None:
    user = new_id()
    package = await add_package(http)
    async with http.post("/v1/checkout", json={"package_id": package["id"]}, headers=as_user(user)) as r:
        session_id = (await r.json())["session_id"]

    outcomes = []
    for event in (
        session_event(session_id, payment_status="unpaid"),
        session_event(session_id, event_type="checkout.session.expired"),
    ):
        payload, headers = signed(event)
        async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
            outcomes.append((await response.json())["outcome"])

    assert outcomes == ["unpaid", "ignored"]
    assert await balance(http, user) == 0


async def test_a_paid_session_we_never_recorded_is_credited_to_its_client_reference(http) -> None:
    user = new_id()
    package = await add_package(http)
    event = session_event(
        "cs_test_unrecorded", metadata={"package_id": package["id"]}, client_reference_id=user
    )

    payload, headers = signed(event)
    async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
        assert (await response.json())["outcome"] == "credited"

    assert await balance(http, user) == 100


async def test_a_webhook_with_a_wrong_signature_is_refused_before_anything_is_stored(http, pool) -> None:
    event = session_event("cs_test_forged", metadata={"package_id": new_id()}, client_reference_id=new_id())
    payload, headers = signed(event, secret="whsec_not_the_secret")

    async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
        assert await problem_of(response) == (400, "invalid_signature")
    async with http.post("/v1/webhooks/stripe", data=payload) as response:
        assert await problem_of(response) == (400, "invalid_signature")

    assert await scalar(pool, "SELECT count(*) FROM stripe_events") == 0


async def test_a_paid_session_naming_no_known_package_is_a_bad_request(http, pool) -> None:
    event = session_event("cs_test_unknown", metadata={"package_id": new_id()}, client_reference_id=new_id())
    payload, headers = signed(event)

    async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
        assert await problem_of(response) == (400, "unknown_package")

    assert await scalar(pool, "SELECT count(*) FROM stripe_events") == 0, "so Stripe's retry is handled"


# --- administration --------------------------------------------------------------------------------------


async def test_an_adjustment_never_takes_the_balance_below_zero_and_applies_once_per_key(http) -> None:
    user = new_id()
    path = f"/v1/admin/users/{user}/adjustments"
    admin = as_admin()

    async with http.post(path, json={"amount": 10, "reason": "welcome"}, headers=admin) as response:
        assert response.status == 201
    async with http.post(path, json={"amount": -11, "reason": "too much"}, headers=admin) as response:
        assert await problem_of(response) == (409, "would_go_negative")
    async with http.post(path, json={"amount": 0, "reason": "nothing"}, headers=admin) as response:
        refused = await response.json(content_type=None)
    assert response.status == 422  # the body's schema says never 0
    assert [error["loc"] for error in refused["errors"]] == [["amount"]]
    for _ in range(2):
        async with http.post(
            path, json={"amount": -4, "reason": "chargeback"}, headers={**admin, "Idempotency-Key": "adj-1"}
        ) as response:
            assert response.status == 201
            body = await response.json()

    assert body["balance"] == 6, "a retried adjustment applies once"
    async with http.post(
        path, json={"amount": -5, "reason": "chargeback"}, headers={**admin, "Idempotency-Key": "adj-1"}
    ) as response:
        reused = await response.json(content_type=None)
    assert (response.status, reused["code"]) == (409, "idempotency_key_reused"), "not a retry: another amount"
    async with http.get(f"/v1/admin/users/{user}/credits", headers=admin) as response:
        assert (await response.json())["balance"] == 6
    async with http.post(path, json={"amount": 5, "reason": "x"}, headers=as_user(user)) as response:
        assert response.status == 403


async def test_the_history_and_the_ledger_page_newest_first(http) -> None:
    user = new_id()
    admin = as_admin()
    for amount in (1, 2, 3):
        async with http.post(
            f"/v1/admin/users/{user}/adjustments", json={"amount": amount, "reason": "r"}, headers=admin
        ) as response:
            assert response.status == 201

    async with http.get("/v1/credits/me/transactions?limit=2", headers=as_user(user)) as response:
        first = await response.json()
    async with http.get(
        f"/v1/credits/me/transactions?limit=2&cursor={first['next_cursor']}", headers=as_user(user)
    ) as response:
        second = await response.json()
    async with http.get(f"/v1/admin/users/{user}/ledger?limit=5", headers=admin) as response:
        ledger = await response.json()

    assert [t["amount"] for t in first["items"] + second["items"]] == [3, 2, 1]
    assert second["next_cursor"] is None
    assert [e["type"] for e in ledger["items"]] == ["Adjusted"] * 3
    assert [e["data"]["amount"] for e in ledger["items"]] == [3, 2, 1]


async def test_the_history_shows_one_type_of_entry_when_asked(http) -> None:
    user = new_id()
    for amount in (5, -2, 7):
        async with http.post(
            f"/v1/admin/users/{user}/adjustments", json={"amount": amount, "reason": "r"}, headers=as_admin()
        ) as response:
            assert response.status == 201

    async with http.get("/v1/credits/me/transactions?type=admin_adjust", headers=as_user(user)) as response:
        adjustments = await response.json()
    async with http.get("/v1/credits/me/transactions?type=purchase", headers=as_user(user)) as response:
        purchases = await response.json()
    async with http.get("/v1/credits/me/transactions?type=gift", headers=as_user(user)) as response:
        refused = response.status

    assert [t["amount"] for t in adjustments["items"]] == [7, -2, 5]
    assert {t["type"] for t in adjustments["items"]} == {"admin_adjust"}
    assert purchases["items"] == []
    assert refused == 422


async def test_a_package_created_again_with_its_idempotency_key_is_created_once(http) -> None:
    admin = {**as_admin(), "Idempotency-Key": "package-1"}
    answers = []
    for _ in range(2):  # the admin's retry after a lost answer
        async with http.post("/v1/admin/packages", json=PACKAGE, headers=admin) as response:
            answers.append((response.status, (await response.json())["id"]))
    async with http.post("/v1/admin/packages", json={**PACKAGE, "credits": 999}, headers=admin) as response:
        reused = (response.status, (await response.json(content_type=None))["code"])
    async with http.post("/v1/admin/packages", json=PACKAGE, headers=as_admin()) as response:
        assert response.status == 201, "without a key, every request creates"
    async with http.get("/v1/admin/packages", headers=as_admin()) as response:
        listed = (await response.json())["items"]

    assert answers[0] == answers[1]
    assert answers[0][0] == 201
    assert reused == (409, "idempotency_key_reused"), "the key with another package is not a retry"
    assert len(listed) == 2


async def test_changing_or_deleting_an_unknown_package_is_not_found(http) -> None:
    package = await add_package(http)
    async with http.put(f"/v1/admin/packages/{new_id()}", json=PACKAGE, headers=as_admin()) as response:
        assert response.status == 404
    async with http.delete(f"/v1/admin/packages/{new_id()}", headers=as_admin()) as response:
        assert response.status == 404
    async with http.put(
        f"/v1/admin/packages/{package['id']}", json={**PACKAGE, "name": "Renamed"}, headers=as_admin()
    ) as response:
        assert (await response.json())["name"] == "Renamed"
    async with http.delete(f"/v1/admin/packages/{package['id']}", headers=as_admin()) as response:
        assert response.status == 204
    async with http.get("/v1/packages") as response:
        assert (await response.json())["items"] == []


@pytest.mark.parametrize(("secret_key", "test_mode"), [("sk_test_local", True), ("sk_live_shop", False)])
async def test_the_shop_says_when_payments_are_stripes_test_mode(
    pool, serve, secret_key: str, test_mode: bool
) -> None:
    credits = credits_service(pool, settings=credits_settings(STRIPE_SECRET_KEY=secret_key))
    async with serve(credits.parts.routes) as http:
        async with http.get("/v1/packages") as response:
            assert (await response.json())["test_mode"] is test_mode
        async with http.get("/v1/admin/packages", headers=as_admin()) as response:
            assert (await response.json())["test_mode"] is test_mode


# --- other services --------------------------------------------------------------------------------------


async def paid_purchase(http: aiohttp.ClientSession, user: str, package: dict[str, Any]) -> None:
    async with http.post("/v1/checkout", json={"package_id": package["id"]}, headers=as_user(user)) as r:
        session_id = (await r.json())["session_id"]
    payload, headers = signed(session_event(session_id))
    async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
        assert (await response.json())["outcome"] == "credited"


async def test_a_users_lifetime_purchases_count_what_they_bought_and_nothing_else(http) -> None:
    user, internal = new_id(), {"X-Test-Internal": "yes"}
    purchases = f"/v1/internal/users/{user}/purchases"
    async with http.get(purchases, headers=internal) as response:
        assert response.status == 200
        assert await response.json() == {"user_id": user, "lifetime_purchased": 0}

    small, large = await add_package(http, credits=100), await add_package(http, credits=1000)
    await paid_purchase(http, user, small)
    await paid_purchase(http, user, large)
    adjust = f"/v1/admin/users/{user}/adjustments"
    async with http.post(adjust, json={"amount": 5, "reason": "gift"}, headers=as_admin()) as response:
        assert response.status == 201

    async with http.get(purchases, headers=internal) as response:
        assert await response.json() == {"user_id": user, "lifetime_purchased": 1100}
    async with http.get(f"/v1/internal/users/{new_id()}/purchases", headers=internal) as response:
        assert (await response.json())["lifetime_purchased"] == 0, "another user bought nothing"


async def test_lifetime_purchases_are_for_services_only(http) -> None:
    user = new_id()
    for headers in (as_user(user), as_admin()):
        async with http.get(f"/v1/internal/users/{user}/purchases", headers=headers) as response:
            assert response.status == 401
    async with http.get("/v1/internal/users/not-a-user/purchases", headers={"X-Test-Internal": "yes"}) as r:
        assert r.status == 404


# --- what a package says: description, bonus, popular, translations -------------------------------------


async def test_a_purchase_with_a_bonus_credits_the_package_and_its_bonus_once(http, pool) -> None:
    user = new_id()
    package = await add_package(http, bonus_credits=20, is_popular=True, description="A good start")
    shown = (package["bonus_credits"], package["is_popular"], package["description"])
    assert shown == (20, True, "A good start")
    async with http.post("/v1/checkout", json={"package_id": package["id"]}, headers=as_user(user)) as r:
        session_id = (await r.json())["session_id"]
    # Changed after the checkout: the buyer gets the bonus they were shown.
    async with http.put(
        f"/v1/admin/packages/{package['id']}", json={**PACKAGE, "bonus_credits": 500}, headers=as_admin()
    ) as response:
        assert response.status == 200

    outcomes = []
    paid = session_event(session_id)
    later = session_event(session_id, event_type="checkout.session.async_payment_succeeded")
    for event in (paid, later):
        for _ in range(2):  # each delivered twice
            payload, headers = signed(event)
            async with http.post("/v1/webhooks/stripe", data=payload, headers=headers) as response:
                assert response.status == 200
                outcomes.append((await response.json())["outcome"])

    assert outcomes == ["credited", "duplicate", "duplicate", "duplicate"]
    assert await balance(http, user) == 120
    async with http.get("/v1/credits/me/transactions", headers=as_user(user)) as response:
        history = (await response.json())["items"]
    assert [(t["type"], t["amount"], t["description"]) for t in history] == [
        ("purchase", 120, "Purchase of 100 credits + 20 bonus")
    ]
    (event,) = await rows(pool, "SELECT data FROM ledger_events WHERE user_id = %s", user)
    assert (event["data"]["amount"], event["data"]["bonus_credits"]) == (120, 20)
    published = [
        decode(bytes(r["payload"]))
        for r in await rows(pool, "SELECT payload FROM outbox WHERE key = %s ORDER BY id", user)
    ]
    assert [(e.type, e.data["amount"], e.data["bonus_credits"]) for e in published] == [
        ("CreditsPurchased", 120, 20)
    ]


async def test_the_shop_lists_packages_in_the_callers_locale_with_english_where_untranslated(http) -> None:
    await add_package(
        http,
        description="A good start",
        translations={
            "ja": {"name": "スターター"},
            "de": {"name": "Start", "description": "Ein guter Anfang"},
        },
    )

    async def shown(query: str) -> tuple[str, str | None]:
        async with http.get(f"/v1/packages{query}") as response:
            assert response.status == 200
            (item,) = (await response.json())["items"]
            assert "translations" not in item
            return item["name"], item["description"]

    assert await shown("?locale=ja") == ("スターター", "A good start")
    assert await shown("?locale=de-AT") == ("Start", "Ein guter Anfang")
    assert await shown("?locale=fr") == ("Starter", "A good start")
    assert await shown("") == ("Starter", "A good start")
    async with http.get("/v1/packages?locale=japanese") as response:
        assert response.status == 422
    async with http.get("/v1/admin/packages", headers=as_admin()) as response:
        (item,) = (await response.json())["items"]
    assert (item["name"], item["translations"]["ja"]) == ("Starter", {"name": "スターター"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bonus_credits": 1001}, "bonus_credits"),  # more than ten times the 100 credits
        ({"bonus_credits": -1}, "bonus_credits"),
        ({"description": "x" * 501}, "description"),
        ({"translations": {"xx": {"name": "?"}}}, "translations"),
        ({"translations": {"ja": {"title": "?"}}}, "translations"),
    ],
)
async def test_a_package_breaking_a_content_rule_is_refused(http, changes: dict, field: str) -> None:
    async with http.post("/v1/admin/packages", json={**PACKAGE, **changes}, headers=as_admin()) as response:
        body = await response.json(content_type=None)
        assert response.status == 422, body
    assert field in json.dumps(body)
    async with http.get("/v1/admin/packages", headers=as_admin()) as response:
        assert (await response.json())["items"] == []
