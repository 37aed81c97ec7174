"""Tests of the fake Stripe API and webhook sender, over real HTTP, as the credits service will use it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

sys.path.insert(0, str(Path(__file__).parent))

from stripe_api import (
    API_VERSION,
    WEBHOOK_USER_AGENT,
    FakeStripe,
    FormError,
    RunningFake,
    mask_key,
    parse_form,
    sign,
    start_in_thread,
)

KEY = "sk_test_51FakeKeyForFunMagicTests0001"
WEBHOOK_SECRET = "whsec_test_fun_magic_0123456789abcdef"
PRICE = "price_credits_100"
SUCCESS = "https://funmagic.test/billing/success?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://funmagic.test/billing/cancel"
BASE_FORM = {
    "mode": "payment",
    "success_url": SUCCESS,
    "cancel_url": CANCEL,
    "line_items[0][price]": PRICE,
    "line_items[0][quantity]": "1",
}

Form = dict[str, str] | list[tuple[str, str]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    stripe = FakeStripe(KEY)
    await stripe.start()
    stripe.register_price(PRICE, 500, "USD", "100 credits")
    yield stripe
    await stripe.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[RunningFake]:
    """One fake on its own thread for the module, the way a session-scoped e2e fixture would use it."""
    with start_in_thread(secret_key=KEY) as running:
        yield running


@pytest.fixture
def threaded(threaded_server: RunningFake) -> RunningFake:
    threaded_server.fake.reset()  # tests sharing the server must not see each other's sessions
    threaded_server.fake.register_price(PRICE, 500, "usd", "100 credits")
    return threaded_server


async def create(
    http: aiohttp.ClientSession,
    base_url: str,
    form: Form,
    *,
    key: str | None = KEY,
    idempotency_key: str | None = None,
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    async with http.post(f"{base_url}/v1/checkout/sessions", data=form, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def retrieve(http: aiohttp.ClientSession, base_url: str, session_id: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.get(f"{base_url}/v1/checkout/sessions/{session_id}", headers=headers) as resp:
        return resp.status, await resp.json()


# --- a webhook receiver that verifies like stripe.Webhook.construct_event (PROVIDERS 4.2) --------


class SignatureError(Exception):
    pass


def verify(payload: bytes, header: str, secret: str, tolerance: int = 300) -> None:
    """Written from PROVIDERS 4.2 alone (not with the fake's `sign`), over the raw bytes."""
    pairs = [item.split("=", 1) for item in header.split(",")]
    if any(len(pair) != 2 for pair in pairs):
        raise SignatureError("unparseable header")
    try:
        timestamp = int(next(value for name, value in pairs if name == "t"))
    except (StopIteration, ValueError):
        raise SignatureError("no timestamp") from None
    signatures = [value for name, value in pairs if name == "v1"]
    if not signatures:
        raise SignatureError("no v1 signature")
    signed = str(timestamp).encode() + b"." + payload
    expected = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("no matching signature")
    if abs(time.time() - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")


@dataclass
class Receiver:
    secret: str
    url: str = ""
    accepted: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def check(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        try:
            verify(body, headers.get("Stripe-Signature", ""), self.secret)
        except SignatureError as exc:
            self.rejected.append(str(exc))
            return 400, json.dumps({"error": str(exc)})
        self.accepted.append((body, headers))
        return 200, json.dumps({"received": True})

    async def handle(self, request: web.Request) -> web.Response:
        status, text = self.check(await request.read(), dict(request.headers))
        return web.Response(status=status, text=text, content_type="application/json")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver(WEBHOOK_SECRET)
    app = web.Application()
    app.router.add_post("/webhooks/stripe", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/stripe"
    yield hook
    await runner.cleanup()


# --- form parsing -------------------------------------------------------------------------------


def test_parse_form_builds_nested_dicts_and_lists() -> None:
    body = (
        "mode=payment&line_items[0][price_data][currency]=usd"
        "&line_items[0][price_data][product_data][name]=Caf%C3%A9+credits"
        "&line_items[0][quantity]=2&line_items[1][price]=price_x&line_items[1][quantity]=1"
        "&metadata[user_id]=u_1&metadata[0]=zero&expand[]=line_items&expand[]=customer"
    )
    assert parse_form(body) == {
        "mode": "payment",
        "line_items": [
            {"price_data": {"currency": "usd", "product_data": {"name": "Café credits"}}, "quantity": "2"},
            {"price": "price_x", "quantity": "1"},
        ],
        "metadata": {"user_id": "u_1", "0": "zero"},  # metadata stays a hash even with numeric keys
        "expand": ["line_items", "customer"],
    }
    # Indexes order the list, not the order the pairs arrive in.
    assert parse_form(b"a[1]=second&a[0]=first") == {"a": ["first", "second"]}
    assert parse_form("") == {}


@pytest.mark.parametrize("body", ["a=1&a[b]=2", "a[b]=2&a=1", "[x]=1", "a[b=1", b"a=\xff"])
def test_parse_form_refuses_what_brackets_cannot_mean(body: str | bytes) -> None:
    with pytest.raises(FormError):
        parse_form(body)


def test_mask_key_never_shows_the_secret() -> None:
    assert mask_key("sk_test_abcdefghijklmnop1234") == "sk_test_****************1234"
    assert mask_key("sk_test_short") == "sk_test_*****"
    assert mask_key("whatever") == "********"


def test_sign_matches_an_independent_hmac() -> None:
    payload = '{"id": "evt_1", "name": "Café"}'.encode()
    header = sign(payload, "whsec_x", 1_700_000_000)
    digest = hmac.new(b"whsec_x", b"1700000000." + payload, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"


# --- Checkout Session create and retrieve -------------------------------------------------------


async def test_create_session_with_a_registered_price(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    form = BASE_FORM | {
        "line_items[0][quantity]": "3",
        "client_reference_id": "user_42",
        "customer_email": "alice@example.com",
        "metadata[user_id]": "user_42",
        "metadata[pack]": "credits-100",
        "metadata[note]": "ünïcode ✓",
    }
    before = int(time.time())
    status, session, headers = await create(http, fake.url, form)
    assert status == 200, session
    assert session["id"].startswith("cs_test_")
    assert len(session["id"]) > 20
    assert session["object"] == "checkout.session"
    assert session["url"] == f"{fake.url}/pay/{session['id']}"
    assert (session["status"], session["payment_status"]) == ("open", "unpaid")
    assert (session["amount_subtotal"], session["amount_total"]) == (1500, 1500)
    assert session["currency"] == "usd"  # registered as "USD"; Stripe answers in lower case
    assert session["metadata"] == {"user_id": "user_42", "pack": "credits-100", "note": "ünïcode ✓"}
    assert (session["client_reference_id"], session["customer_email"]) == ("user_42", "alice@example.com")
    assert (session["mode"], session["success_url"], session["cancel_url"]) == ("payment", SUCCESS, CANCEL)
    assert session["livemode"] is False
    assert session["payment_intent"] is None
    assert before <= session["created"] <= int(time.time())
    assert session["expires_at"] - session["created"] == 24 * 3600
    assert headers["Request-Id"].startswith("req_")
    assert headers["Stripe-Version"] == API_VERSION

    status, fetched = await retrieve(http, fake.url, session["id"])
    assert (status, fetched) == (200, session)
    async with http.get(session["url"]) as resp:  # the stand-in hosted page a browser would land on
        assert resp.status == 200
        assert "15.00 USD" in await resp.text()
    recorded = fake.requests[0]
    assert (recorded.method, recorded.path) == ("POST", "/v1/checkout/sessions")
    assert recorded.form["line_items[0][price]"] == PRICE
    assert recorded.params["line_items"] == [{"price": PRICE, "quantity": "3"}]
    assert recorded.headers["Authorization"] == f"Bearer {KEY}"


async def test_create_session_with_nested_price_data(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    form = {
        "mode": "payment",
        "success_url": SUCCESS,
        "line_items[0][price_data][currency]": "EUR",
        "line_items[0][price_data][unit_amount]": "250",
        "line_items[0][price_data][product_data][name]": "Starter pack ✨",
        "line_items[0][quantity]": "2",
        "line_items[1][price_data][currency]": "eur",
        "line_items[1][price_data][unit_amount]": "999",
        "line_items[1][price_data][product_data][name]": "Bonus",
        "line_items[1][quantity]": "1",
    }
    status, session, _ = await create(http, fake.url, form)
    assert status == 200, session
    assert (session["amount_total"], session["currency"]) == (250 * 2 + 999, "eur")
    assert (session["cancel_url"], session["client_reference_id"], session["customer_email"]) == (None,) * 3
    assert session["metadata"] == {}
    name = fake.requests[-1].params["line_items"][0]["price_data"]["product_data"]["name"]
    assert name == "Starter pack ✨"


async def test_unknown_price_is_resource_missing(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    status, body, _ = await create(http, fake.url, BASE_FORM | {"line_items[0][price]": "price_nope"})
    assert status == 400
    assert body == {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "line_items[0][price]",
            "message": "No such price: 'price_nope'",
        }
    }
    form = BASE_FORM | {"line_items[1][price]": "price_gone", "line_items[1][quantity]": "1"}
    status, body, _ = await create(http, fake.url, form)
    assert (status, body["error"]["param"]) == (400, "line_items[1][price]")


@pytest.mark.parametrize(
    ("change", "drop", "param", "code"),
    [
        ({}, "mode", "mode", "parameter_missing"),
        ({"mode": "subscription"}, None, "mode", "parameter_invalid_string"),
        ({}, "success_url", "success_url", "parameter_missing"),
        ({"success_url": "not a url"}, None, "success_url", "url_invalid"),
        ({}, "line_items[0][price]", "line_items", "parameter_missing"),
        ({}, "line_items[0][quantity]", "line_items[0][quantity]", "parameter_missing"),
        ({"line_items[0][quantity]": "0"}, None, "line_items[0][quantity]", "parameter_invalid_integer"),
        ({"line_items[0][quantity]": "two"}, None, "line_items[0][quantity]", "parameter_invalid_integer"),
        ({"line_items[0][price_data][currency]": "usd"}, None, "line_items[0]", "parameter_invalid"),
        ({"metadata": "flat"}, None, "metadata", "parameter_invalid"),
    ],
)
async def test_create_session_validates_its_params(
    fake: FakeStripe,
    http: aiohttp.ClientSession,
    change: dict[str, str],
    drop: str | None,
    param: str,
    code: str,
) -> None:
    form = {k: v for k, v in (BASE_FORM | change).items() if k != drop}
    if drop == "line_items[0][price]":
        form.pop("line_items[0][quantity]")
    status, body, _ = await create(http, fake.url, form)
    assert status == 400, body
    error = body["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert [r.path for r in fake.requests] == ["/v1/checkout/sessions"]


async def test_price_data_needs_amount_currency_and_name(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    item = {
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "100",
        "line_items[0][price_data][product_data][name]": "Pack",
        "line_items[0][quantity]": "1",
    }
    base = {"mode": "payment", "success_url": SUCCESS}
    for missing in list(item)[:3]:
        status, body, _ = await create(http, fake.url, base | {k: v for k, v in item.items() if k != missing})
        assert (status, body["error"]["param"]) == (400, missing)
    mixed = base | item | {k.replace("[0]", "[1]"): v for k, v in item.items()}
    mixed["line_items[1][price_data][currency]"] = "eur"
    status, body, _ = await create(http, fake.url, mixed)
    assert (status, body["error"]["param"]) == (400, "line_items")


async def test_json_bodies_are_refused(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.post(f"{fake.url}/v1/checkout/sessions", json=BASE_FORM, headers=headers) as resp:
        assert resp.status == 400
        assert "x-www-form-urlencoded" in (await resp.json())["error"]["message"]


async def test_wrong_or_missing_key_is_401_without_echoing_it(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    wrong = "sk_test_someoneElsesKey_9876543210"
    for key in (wrong, "sk_test_x"):
        async with http.post(
            f"{fake.url}/v1/checkout/sessions", data=BASE_FORM, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            text = await resp.text()
            assert resp.status == 401
        error = json.loads(text)["error"]
        assert set(error) == {"type", "message", "code", "param"}
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", None, None)
        assert error["message"].startswith("Invalid API Key provided: sk_test_*")
        assert key not in text
        assert KEY not in text
    status, body, _ = await create(http, fake.url, BASE_FORM, key=None)
    assert (status, body["error"]["type"]) == (401, "invalid_request_error")
    assert "did not provide an API key" in body["error"]["message"]
    async with http.get(f"{fake.url}/v1/checkout/sessions/cs_test_x") as resp:
        assert resp.status == 401
    assert fake.events == []
    assert len(fake.requests) == 4


async def test_retrieve_unknown_session_and_url(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    status, body = await retrieve(http, fake.url, "cs_test_missing")
    assert status == 404
    assert body["error"]["code"] == "resource_missing"
    assert body["error"]["message"] == "No such checkout.session: 'cs_test_missing'"
    async with http.get(f"{fake.url}/v1/customers", headers={"Authorization": f"Bearer {KEY}"}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_idempotency_key_replays_and_guards_the_body(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    first_status, first, first_headers = await create(http, fake.url, BASE_FORM, idempotency_key="k-1")
    # The same parameters in another order are the same request.
    again_status, again, again_headers = await create(
        http, fake.url, list(reversed(BASE_FORM.items())), idempotency_key="k-1"
    )
    assert (first_status, again_status) == (200, 200)
    assert again == first
    assert "Idempotent-Replayed" not in first_headers
    assert again_headers["Idempotent-Replayed"] == "true"

    changed = BASE_FORM | {"line_items[0][quantity]": "2"}
    status, body, _ = await create(http, fake.url, changed, idempotency_key="k-1")
    assert status == 400
    assert body["error"]["type"] == "idempotency_error"
    assert "k-1" in body["error"]["message"]

    status, other, _ = await create(http, fake.url, BASE_FORM, idempotency_key="k-2")
    assert status == 200
    assert other["id"] != first["id"]
    status, plain, _ = await create(http, fake.url, BASE_FORM)
    assert status == 200
    assert plain["id"] not in (first["id"], other["id"])


async def test_a_refused_request_does_not_burn_its_idempotency_key(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await create(http, fake.url, BASE_FORM | {"mode": ""}, idempotency_key="k")
    assert status == 400
    fake.fail_next("create_session", 500)
    status, _, _ = await create(http, fake.url, BASE_FORM, idempotency_key="k")
    assert status == 500
    status, session, _ = await create(http, fake.url, BASE_FORM, idempotency_key="k")
    assert status == 200
    assert session["status"] == "open"


async def test_fail_next_429_then_success(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    fake.fail_next("create_session", 429, times=2)
    for _ in range(2):
        status, body, headers = await create(http, fake.url, BASE_FORM, idempotency_key="retry-me")
        assert status == 429
        assert (body["error"]["type"], body["error"]["code"]) == ("rate_limit", "rate_limit")
        assert "Stripe-Should-Retry" not in headers  # so the SDK does not retry 429 (PROVIDERS 4.1)
    status, session, _ = await create(http, fake.url, BASE_FORM, idempotency_key="retry-me")
    assert status == 200, session
    assert len(fake.requests) == 3  # the refused calls are still recorded


async def test_fail_next_500_and_the_retry_header(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    fake.fail_next("retrieve_session", 500, should_retry=False)
    fake.fail_next("create_session", 429, should_retry=True)
    status, _, headers = await create(http, fake.url, BASE_FORM)
    assert (status, headers["Stripe-Should-Retry"]) == (429, "true")
    status, session, _ = await create(http, fake.url, BASE_FORM)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.get(f"{fake.url}/v1/checkout/sessions/{session['id']}", headers=headers) as resp:
        assert (resp.status, resp.headers["Stripe-Should-Retry"]) == (500, "false")
        assert (await resp.json())["error"]["type"] == "api_error"
    assert (await retrieve(http, fake.url, session["id"]))[0] == 200


def test_control_methods_validate_their_input() -> None:
    fake = FakeStripe()
    with pytest.raises(ValueError, match="no fault point"):
        fake.fail_next("refund", 500)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4xx/5xx"):
        fake.fail_next("create_session", 200)
    with pytest.raises(ValueError, match="starts with 'price_'"):
        fake.register_price("prod_1", 100, "usd")
    with pytest.raises(ValueError, match="non-negative"):
        fake.register_price("price_1", -1, "usd")
    with pytest.raises(KeyError):
        fake.complete_session("cs_test_unknown")


# --- completing a payment and the webhook -------------------------------------------------------


async def test_complete_session_produces_the_completed_event(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    form = BASE_FORM | {"client_reference_id": "user_7", "customer_email": "bob@example.com"}
    _, session, _ = await create(http, fake.url, form | {"metadata[order]": "o-1"})
    before = int(time.time())
    event = fake.complete_session(session["id"])
    assert event["id"].startswith("evt_")
    assert (event["object"], event["type"]) == ("event", "checkout.session.completed")
    assert (event["api_version"], event["livemode"], event["pending_webhooks"]) == (API_VERSION, False, 1)
    assert event["request"] == {"id": None, "idempotency_key": None}
    assert before <= event["created"] <= int(time.time())
    paid = event["data"]["object"]
    assert (paid["id"], paid["status"], paid["payment_status"]) == (session["id"], "complete", "paid")
    assert paid["payment_intent"].startswith("pi_")
    assert paid["customer_details"] == {"email": "bob@example.com", "name": None}
    assert (paid["client_reference_id"], paid["metadata"]) == ("user_7", {"order": "o-1"})
    assert (paid["amount_total"], paid["currency"], paid["url"]) == (500, "usd", None)

    status, fetched = await retrieve(http, fake.url, session["id"])
    assert (status, fetched) == (200, paid)
    assert fake.events == [event]
    event["data"]["object"]["status"] = "tampered"  # the caller's copy is its own
    assert fake.get_session(session["id"])["status"] == "complete"
    with pytest.raises(ValueError, match="not open"):
        fake.complete_session(session["id"])


async def test_delayed_payment_settles_later(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    _, session, _ = await create(http, fake.url, BASE_FORM)
    event = fake.complete_session(session["id"], payment_status="unpaid", customer_email="c@example.com")
    assert event["data"]["object"]["payment_status"] == "unpaid"
    assert event["data"]["object"]["customer_details"]["email"] == "c@example.com"
    settled = fake.settle_async_payment(session["id"])
    assert settled["type"] == "checkout.session.async_payment_succeeded"
    assert settled["data"]["object"]["payment_status"] == "paid"
    with pytest.raises(ValueError, match="no pending payment"):
        fake.settle_async_payment(session["id"])


async def test_deliver_signs_the_exact_bytes_it_sends(
    fake: FakeStripe, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    _, session, _ = await create(http, fake.url, BASE_FORM | {"metadata[name]": "Zoë"})
    event = fake.complete_session(session["id"])
    status, text = await fake.deliver(event, receiver.url, WEBHOOK_SECRET)
    assert (status, json.loads(text)) == (200, {"received": True})
    assert receiver.rejected == []
    [(body, headers)] = receiver.accepted
    assert json.loads(body) == event
    assert body == fake.deliveries[-1].body
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["User-Agent"] == WEBHOOK_USER_AGENT
    header = headers["Stripe-Signature"]
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(timestamp - time.time()) < 60
    assert header == sign(body, WEBHOOK_SECRET, timestamp)
    # Re-serialised JSON is not what was signed (PROVIDERS 4.2: always verify the raw bytes).
    with pytest.raises(SignatureError):
        verify(json.dumps(json.loads(body)).encode(), header, WEBHOOK_SECRET)
    assert (fake.deliveries[-1].status, fake.deliveries[-1].event_id) == (200, event["id"])


async def test_deliver_can_send_signatures_a_receiver_must_reject(
    fake: FakeStripe, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    _, session, _ = await create(http, fake.url, BASE_FORM)
    event = fake.complete_session(session["id"])
    now = int(time.time())
    status, _ = await fake.deliver(event, receiver.url, WEBHOOK_SECRET, timestamp=now - 1000)
    assert status == 400
    status, _ = await fake.deliver(event, receiver.url, "whsec_wrong")
    assert status == 400
    status, _ = await fake.deliver(
        event, receiver.url, WEBHOOK_SECRET, signature_override=f"t={now},v1={'0' * 64}"
    )
    assert status == 400
    status, _ = await fake.deliver(event, receiver.url, WEBHOOK_SECRET, signature_override="garbage")
    assert status == 400
    assert receiver.rejected == [
        "timestamp outside the tolerance",
        "no matching signature",
        "no matching signature",
        "unparseable header",
    ]
    assert receiver.accepted == []

    # An override can also model secret rotation: any one matching v1 is enough.
    good = sign(json.dumps(event, indent=2, ensure_ascii=False).encode(), WEBHOOK_SECRET, now)
    rotated = f"t={now},v1={'f' * 64},{good.split(',')[1]},v0=ignored"
    status, _ = await fake.deliver(event, receiver.url, WEBHOOK_SECRET, signature_override=rotated)
    assert status == 200
    assert [d.status for d in fake.deliveries] == [400, 400, 400, 400, 200]


# --- thread runner, HTTP control, CLI -----------------------------------------------------------


async def test_thread_runner_and_http_control(
    threaded: RunningFake, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    control = f"{threaded.url}/_control"
    price = {"price_id": "price_big", "unit_amount": 2000, "currency": "usd", "product_name": "1000 credits"}
    async with http.post(f"{control}/prices", json=price) as resp:
        assert resp.status == 204
    async with http.post(f"{control}/prices", json=price | {"price_id": "nope"}) as resp:
        assert resp.status == 400
    async with http.post(f"{control}/failures", json={"endpoint": "create_session", "status": 429}) as resp:
        assert resp.status == 204
    form = BASE_FORM | {"line_items[0][price]": "price_big"}
    assert (await create(http, threaded.url, form))[0] == 429
    status, session, _ = await create(http, threaded.url, form)
    assert (status, session["amount_total"]) == (200, 2000)

    async with http.post(f"{control}/sessions/{session['id']}/complete") as resp:
        assert resp.status == 200
        event = await resp.json()
    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["payment_status"] == "paid"
    async with http.post(f"{control}/sessions/cs_test_unknown/complete", json={}) as resp:
        assert resp.status == 400

    delivery = {"event": event, "url": receiver.url, "secret": WEBHOOK_SECRET}
    async with http.post(f"{control}/deliver", json=delivery) as resp:
        assert (await resp.json())["status"] == 200
    async with http.post(f"{control}/deliver", json=delivery | {"timestamp": 1}) as resp:
        assert (await resp.json())["status"] == 400
    assert len(receiver.accepted) == 1

    async with http.get(f"{control}/requests") as resp:
        recorded = await resp.json()
    assert [r["method"] for r in recorded] == ["POST", "POST"]
    assert recorded[0]["params"]["line_items"] == [{"price": "price_big", "quantity": "1"}]
    async with http.delete(f"{control}/requests") as resp:
        assert resp.status == 204
    async with http.post(f"{control}/reset") as resp:
        assert resp.status == 204
    assert threaded.fake.requests == []
    assert threaded.fake.events == []
    assert (await retrieve(http, threaded.url, session["id"]))[0] == 404


async def test_thread_runner_handle_is_safe_from_another_thread(
    threaded: RunningFake, http: aiohttp.ClientSession
) -> None:
    threaded.fake.register_price("price_threaded", 700, "gbp")  # this test's thread, not the server's
    threaded.fake.fail_next("create_session", 500)
    form = BASE_FORM | {"line_items[0][price]": "price_threaded"}
    assert (await create(http, threaded.url, form))[0] == 500
    _, session, _ = await create(http, threaded.url, form)
    event = threaded.fake.complete_session(session["id"])
    assert (event["data"]["object"]["amount_total"], event["data"]["object"]["currency"]) == (700, "gbp")


def test_deliver_sync_from_a_sync_fixture(threaded: RunningFake) -> None:
    hook = Receiver(WEBHOOK_SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, text = hook.check(body, dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        event = {"id": "evt_sync", "object": "event", "type": "checkout.session.completed", "data": {}}
        assert threaded.deliver_sync(event, url, WEBHOOK_SECRET)[0] == 200
        stale = int(time.time()) - 1000
        assert threaded.deliver_sync(event, url, WEBHOOK_SECRET, timestamp=stale)[0] == 400
        assert threaded.deliver_sync(event, url, WEBHOOK_SECRET, signature_override="t=1,v1=ab")[0] == 400
    finally:
        server.shutdown()
        server.server_close()
        serving.join(timeout=10)
    assert [json.loads(body) for body, _ in hook.accepted] == [event]
    assert hook.rejected == ["timestamp outside the tolerance", "no matching signature"]


async def test_thread_runner_stop_closes_the_port(http: aiohttp.ClientSession) -> None:
    running = start_in_thread(secret_key="sk_test_other")
    url = running.url
    running.fake.register_price(PRICE, 100, "usd")
    status, _, _ = await create(http, url, BASE_FORM, key="sk_test_other")
    assert status == 200
    running.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await create(http, url, BASE_FORM, key="sk_test_other")


async def test_standalone_cli_serves_with_its_prices(http: aiohttp.ClientSession) -> None:
    script = Path(__file__).parent / "stripe_api.py"
    args = ["--port", "0", "--secret-key", KEY, "--price", f"{PRICE}:300:usd:100 credits"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        # The fake prints its URL first once it listens, so reading that line is the readiness signal.
        first = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().strip()
        assert first.startswith("FAKE_STRIPE_URL=")
        status, session, _ = await create(http, first.removeprefix("FAKE_STRIPE_URL="), BASE_FORM)
        assert (status, session["amount_total"]) == (200, 300)
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
