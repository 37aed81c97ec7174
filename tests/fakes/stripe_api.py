"""A fake Stripe API (Checkout Sessions) and webhook sender for credits-service tests.

It is a real aiohttp server that follows /work/shared/PROVIDERS.md section 4: form-encoded bodies in
Stripe's bracket syntax, Bearer secret-key auth, Stripe's error body, Idempotency-Key replays, and
webhook events signed the way `stripe.Webhook.construct_event` verifies them. Point a client at it by
swapping only the API base (`stripe.api_base = fake.url`). Tests drive it in-process through FakeStripe
(or start_in_thread for sync fixtures) and out-of-process through /_control.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import hashlib
import hmac
import json
import re
import secrets
import signal
import string
import threading
import time
from dataclasses import asdict, dataclass
from html import escape
from http import HTTPStatus
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

Endpoint = Literal["create_session", "retrieve_session"]
PaymentStatus = Literal["paid", "unpaid", "no_payment_required"]
FAULT_ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
PAYMENT_STATUSES: tuple[PaymentStatus, ...] = get_args(PaymentStatus)

API_VERSION = "2026-06-24.dahlia"  # [STRIPE-PY] v15.3.1
DEFAULT_SECRET_KEY = "sk_test_fake"
SESSION_TTL_SECONDS = 24 * 3600
SIGNATURE_TOLERANCE_SECONDS = 300  # what receivers should allow (PROVIDERS 4.2); the fake never checks it
WEBHOOK_USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
WEBHOOK_CONTENT_TYPE = "application/json; charset=utf-8"
DELIVERY_TIMEOUT_SECONDS = 10.0
_SESSIONS_PATH = "/v1/checkout/sessions"
_ALNUM = string.ascii_letters + string.digits
_KEY_PREFIX_RE = re.compile(r"(?:sk|rk|pk)_(?:test|live)_")
_NAME_RE = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_SUBSCRIPT_RE = re.compile(r"\[([^\[\]]*)\]")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_PHRASES = {s.value: s.phrase for s in HTTPStatus}
_NO_KEY_MESSAGE = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, "
    "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
)


# --- Stripe's form encoding ---------------------------------------------------------------------


class FormError(ValueError):
    """A form body that Stripe's bracket syntax cannot represent."""


def parse_form(body: str | bytes) -> dict[str, Any]:
    """Decodes `a[b][0][c]=v` pairs into nested dicts, with all-numeric subscripts (and `[]`) as lists.

    `metadata` hashes always stay dicts, since their keys are free-form and may look like indexes.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormError("the body is not UTF-8") from exc
    root: dict[str, Any] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        match = _NAME_RE.fullmatch(name)
        if match is None:
            raise FormError(f"Invalid parameter name: {name!r}")
        parts = [match.group(1), *_SUBSCRIPT_RE.findall(match.group(2))]
        node = root
        for depth, part in enumerate(parts):
            key = str(len(node)) if part == "" else part  # `x[]=…` appends
            if depth == len(parts) - 1:
                if isinstance(node.get(key), dict):
                    raise FormError(f"{name!r} sets a value where a hash was already given")
                node[key] = value
                break
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise FormError(f"{name!r} treats a plain value as a hash")
            node = child
    return _listify(root, hash_only=True)  # the top level is always named parameters


def _listify(node: dict[str, Any], hash_only: bool = False) -> Any:
    items = {k: _listify(v, k == "metadata") if isinstance(v, dict) else v for k, v in node.items()}
    if not hash_only and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


# --- errors -------------------------------------------------------------------------------------


class StripeError(Exception):
    """Rendered as Stripe's error body: {"error": {"type", "message", "code", "param"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type, "message": message, "code": code, "param": param}}
        self.headers = headers or {}

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


def _missing(param: str) -> StripeError:
    return StripeError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def _invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeError:
    return StripeError(400, message, code=code, param=param)


def _injected_failure(status: int, should_retry: bool | None) -> StripeError:
    message = f"Injected failure: HTTP {status} {_PHRASES.get(status, '')}".rstrip()
    headers = {} if should_retry is None else {"Stripe-Should-Retry": str(should_retry).lower()}
    if status == 429:
        return StripeError(status, message, type="rate_limit", code="rate_limit", headers=headers)
    kind = "api_error" if status >= 500 else "card_error" if status == 402 else "invalid_request_error"
    return StripeError(status, message, type=kind, headers=headers)


def mask_key(key: str) -> str:
    """How Stripe names a rejected key: its prefix, stars, and at most the last four characters."""
    match = _KEY_PREFIX_RE.match(key)
    head = match.group(0) if match else ""
    rest = key[len(head) :]
    tail = rest[-4:] if len(rest) >= 12 else ""
    return head + "*" * (len(rest) - len(tail)) + tail


# --- webhook signatures -------------------------------------------------------------------------


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value: `t=<ts>,v1=<hex HMAC-SHA256(secret, f"{ts}.{payload}")>`."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def encode_event(event: dict[str, Any]) -> bytes:
    """The exact bytes `deliver` sends: pretty-printed like Stripe, so re-serialised JSON will not match."""
    return json.dumps(event, indent=2, ensure_ascii=False).encode("utf-8")


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    id: str
    unit_amount: int
    currency: str
    product_name: str


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]  # the raw bracketed keys, as sent
    params: dict[str, Any]  # the same form, parsed into nested dicts and lists
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    url: str
    event_id: str | None
    headers: dict[str, str]
    body: bytes
    status: int
    response: str


@dataclass
class _Idempotent:
    params: dict[str, Any]
    session: dict[str, Any]


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


# --- the server ---------------------------------------------------------------------------------


class FakeStripe:
    def __init__(
        self,
        secret_key: str = DEFAULT_SECRET_KEY,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
    ) -> None:
        self.secret_key = secret_key
        # Where the hosted page's "Pay" button sends `checkout.session.completed` (test mode for people
        # and browser tests); without it the page cannot pay and tests complete sessions themselves.
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.requests: list[RecordedRequest] = []
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        # Control methods may be called from a test thread while the server loop runs elsewhere.
        self._lock = threading.Lock()
        self._prices: dict[str, Price] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, _Idempotent] = {}
        self._failures: dict[str, list[tuple[int, bool | None]]] = {e: [] for e in FAULT_ENDPOINTS}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # --- lifecycle ---

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._runner is not None:
            raise RuntimeError("the fake is already running")
        runner = web.AppRunner(self._build_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._url = f"http://{host}:{runner.addresses[0][1]}"  # the real port when port=0
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The API base: what `stripe.api_base` (or StripeClient's base_addresses["api"]) is set to."""
        if self._url is None:
            raise RuntimeError("the fake has not been started")
        return self._url

    # --- control ---

    def register_price(
        self, price_id: str, unit_amount: int, currency: str, product_name: str = "Test product"
    ) -> Price:
        if not price_id.startswith("price_"):
            raise ValueError(f"a price id starts with 'price_', not {price_id!r}")
        if isinstance(unit_amount, bool) or not isinstance(unit_amount, int) or unit_amount < 0:
            raise ValueError("unit_amount must be a non-negative integer in minor units")
        if not _CURRENCY_RE.fullmatch(currency):
            raise ValueError(f"currency must be a three-letter ISO code, not {currency!r}")
        price = Price(price_id, unit_amount, currency.lower(), product_name)
        with self._lock:
            self._prices[price_id] = price
        return price

    def fail_next(
        self,
        endpoint: Endpoint = "create_session",
        status: int = 500,
        times: int = 1,
        *,
        should_retry: bool | None = None,
    ) -> None:
        """The next `times` calls to `endpoint` get a Stripe error body with `status` instead.

        429 is `type: "rate_limit"`, 5xx `api_error`. `should_retry` adds `Stripe-Should-Retry: true|false`,
        which overrides the SDK's own choice (it retries 409 and 5xx, not 429); None sends no header.
        """
        if endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"no fault point {endpoint!r}; use one of {FAULT_ENDPOINTS}")
        if not 400 <= status <= 599 or times < 1:
            raise ValueError("status must be 4xx/5xx and times >= 1")
        with self._lock:
            self._failures[endpoint].extend([(status, should_retry)] * times)

    def get_session(self, session_id: str) -> dict[str, Any]:
        """A copy of the session as the API would return it."""
        with self._lock:
            return copy.deepcopy(self._session(session_id))

    def complete_session(
        self,
        session_id: str,
        *,
        payment_status: PaymentStatus = "paid",
        customer_email: str | None = None,
    ) -> dict[str, Any]:
        """What the customer does on the hosted page; returns the `checkout.session.completed` event.

        `payment_status="unpaid"` is a delayed payment method (settle it with settle_async_payment).
        The customer's email is `customer_email`, else the session's, else a placeholder.
        """
        if payment_status not in PAYMENT_STATUSES:
            raise ValueError(f"payment_status must be one of {PAYMENT_STATUSES}")
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            email = customer_email or session["customer_email"] or "customer@example.com"
            intent = None if payment_status == "no_payment_required" else _random_id("pi_", 24)
            session.update(
                status="complete",
                payment_status=payment_status,
                payment_intent=intent,
                customer_details={"email": email, "name": None},
                url=None,  # the hosted page URL only exists while the session is open
            )
            return self._event("checkout.session.completed", session)

    def settle_async_payment(self, session_id: str, *, succeeded: bool = True) -> dict[str, Any]:
        """A delayed payment of a completed, unpaid session clears (or fails); returns that event."""
        with self._lock:
            session = self._session(session_id)
            if (session["status"], session["payment_status"]) != ("complete", "unpaid"):
                raise ValueError(f"session {session_id} has no pending payment")
            if succeeded:
                session["payment_status"] = "paid"
            kind = "succeeded" if succeeded else "failed"
            return self._event(f"checkout.session.async_payment_{kind}", session)

    def reset(self) -> None:
        """Forgets sessions, idempotency keys, failures, events, deliveries and requests; keeps prices."""
        with self._lock:
            self._sessions.clear()
            self._idempotency.clear()
            for queue in self._failures.values():
                queue.clear()
            self.events.clear()
            self.deliveries.clear()
            self.requests.clear()

    # --- webhooks ---

    async def deliver(
        self,
        event: dict[str, Any],
        url: str,
        secret: str,
        *,
        timestamp: int | None = None,
        signature_override: str | None = None,
    ) -> tuple[int, str]:
        """POSTs the event as Stripe does and returns the receiver's (status, body).

        `timestamp` (default now) is what gets signed; pass e.g. now - 1000 for a stale one.
        `signature_override` replaces the whole Stripe-Signature header value, verbatim.
        """
        payload = encode_event(event)  # serialised once; these exact bytes are signed and sent
        ts = int(time.time()) if timestamp is None else timestamp
        header = sign(payload, secret, ts) if signature_override is None else signature_override
        headers = {
            "Stripe-Signature": header,
            "Content-Type": WEBHOOK_CONTENT_TYPE,
            "User-Agent": WEBHOOK_USER_AGENT,
        }
        timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_SECONDS)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, data=payload, headers=headers) as resp,
        ):
            status, text = resp.status, await resp.text(errors="replace")
        with self._lock:
            self.deliveries.append(Delivery(url, event.get("id"), headers, payload, status, text))
        return status, text

    # --- state helpers (call with the lock held) ---

    def _session(self, session_id: str) -> dict[str, Any]:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise KeyError(f"no checkout session {session_id!r}") from None

    def _event(self, event_type: str, session: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": _random_id("evt_", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(session)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},  # a customer, not an API call, caused it
            "type": event_type,
        }
        self.events.append(event)
        return copy.deepcopy(event)

    # --- app wiring ---

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(_SESSIONS_PATH, self._create_session, name="create_session")
        app.router.add_get(_SESSIONS_PATH + "/{id}", self._retrieve_session, name="retrieve_session")
        app.router.add_get("/pay/{id}", self._hosted_page)
        app.router.add_post("/pay/{id}", self._hosted_pay)
        app.router.add_post("/_control/prices", self._control_prices)
        app.router.add_post("/_control/sessions/{id}/complete", self._control_complete)
        app.router.add_post("/_control/sessions/{id}/settle", self._control_settle)
        app.router.add_post("/_control/failures", self._control_failures)
        app.router.add_post("/_control/deliver", self._control_deliver)
        app.router.add_post("/_control/reset", self._control_reset)
        app.router.add_get("/_control/requests", self._control_list_requests)
        app.router.add_delete("/_control/requests", self._control_clear_requests)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_control"):
            # Control calls are not Stripe traffic: keep them out of `requests`, report bad input as 400.
            try:
                return await handler(request)
            except (KeyError, TypeError, ValueError) as exc:
                return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        form, params, problem = await _read_form(request)
        record = RecordedRequest(
            request.method, request.path, dict(request.query), form, params, dict(request.headers)
        )
        with self._lock:
            self.requests.append(record)
        if not request.path.startswith("/v1/"):
            return await handler(request)
        try:
            self._raise_injected_failure(request.match_info.route.name)
            self._authenticate(request)
            if problem is not None:
                raise problem
            response = await handler(request)
        except StripeError as exc:
            response = exc.response()
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            message = f"Unrecognized request URL ({request.method}: {request.path})."
            response = StripeError(exc.status, message).response()
        response.headers.setdefault("Request-Id", _random_id("req_", 14))
        response.headers.setdefault("Stripe-Version", request.headers.get("Stripe-Version", API_VERSION))
        return response

    def _raise_injected_failure(self, route: str | None) -> None:
        with self._lock:
            queue = self._failures.get(route or "")
            failure = queue.pop(0) if queue else None
        if failure is not None:
            raise _injected_failure(*failure)

    def _authenticate(self, request: web.Request) -> None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise StripeError(401, _NO_KEY_MESSAGE)
        if not hmac.compare_digest(key.encode(), self.secret_key.encode()):
            raise StripeError(401, f"Invalid API Key provided: {mask_key(key)}")

    # --- Checkout Sessions ---

    async def _create_session(self, request: web.Request) -> web.Response:
        params = parse_form(await request.read())
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            stored = self._idempotency.get(key) if key else None
        if stored is not None:
            return _replay(stored, params, key)
        session = self._new_session(params, request)  # raises StripeError on bad input: nothing is stored
        with self._lock:
            stored = self._idempotency.get(key) if key else None
            if stored is not None:  # a concurrent request with the same key got there first
                return _replay(stored, params, key)
            self._sessions[session["id"]] = session
            if key:
                self._idempotency[key] = _Idempotent(params, copy.deepcopy(session))
            return web.json_response(session)

    def _new_session(self, params: dict[str, Any], request: web.Request) -> dict[str, Any]:
        mode = params.get("mode")
        if not mode:
            raise _missing("mode")
        if mode != "payment":
            message = f"Invalid mode {mode!r}: this fake supports only 'payment'."
            raise _invalid("mode", message, "parameter_invalid_string")
        success_url = _url_param(params, "success_url", required=True)
        cancel_url = _url_param(params, "cancel_url", required=False)
        amount, currency = self._price_line_items(params.get("line_items"))
        metadata = params.get("metadata", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise _invalid("metadata", "Invalid hash: metadata must map keys to strings.")
        created = int(time.time())
        expires_at = _int_param(params, "expires_at", created + SESSION_TTL_SECONDS)
        session_id = _random_id("cs_test_", 58)
        return {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "cancel_url": cancel_url,
            "client_reference_id": _str_param(params, "client_reference_id"),
            "created": created,
            "currency": currency,
            "customer": None,
            "customer_details": None,
            "customer_email": _str_param(params, "customer_email"),
            "expires_at": expires_at,
            "livemode": False,
            # An empty value unsets a metadata key, so on create it is simply not set.
            "metadata": {k: v for k, v in metadata.items() if v != ""},
            "mode": mode,
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": success_url,
            "url": f"{request.url.origin()}/pay/{session_id}",
        }

    def _price_line_items(self, items: Any) -> tuple[int, str]:
        """Returns (amount_total, currency) for the line items, or raises Stripe's error for them."""
        if items is None or items == "" or items == []:
            raise _missing("line_items")
        if not isinstance(items, list):
            raise _invalid("line_items", "Invalid array: line_items must be indexed, e.g. line_items[0].")
        total, currencies = 0, set()
        for index, item in enumerate(items):
            prefix = f"line_items[{index}]"
            if not isinstance(item, dict):
                raise _invalid(prefix, f"Invalid hash: {prefix} must have fields.")
            unit_amount, currency = self._price_of(item, prefix)
            quantity = _int_param(item, "quantity", None, prefix)
            if quantity is None:
                raise _missing(f"{prefix}[quantity]")
            if quantity < 1:
                message = "This value must be greater than or equal to 1."
                raise _invalid(f"{prefix}[quantity]", message, "parameter_invalid_integer")
            total += unit_amount * quantity
            currencies.add(currency)
        if len(currencies) > 1:
            message = f"All line items must use the same currency, not {sorted(currencies)}."
            raise _invalid("line_items", message)
        return total, currencies.pop()

    def _price_of(self, item: dict[str, Any], prefix: str) -> tuple[int, str]:
        price_id, data = item.get("price"), item.get("price_data")
        if price_id is not None and data is not None:
            message = f"You may only specify one of these parameters: {prefix}[price], {prefix}[price_data]."
            raise _invalid(prefix, message)
        if price_id is not None:
            with self._lock:
                price = self._prices.get(price_id)
            if price is None:
                message = f"No such price: '{price_id}'"
                raise StripeError(400, message, code="resource_missing", param=f"{prefix}[price]")
            return price.unit_amount, price.currency
        if data is None:
            raise _missing(f"{prefix}[price]")
        prefix += "[price_data]"
        if not isinstance(data, dict):
            raise _invalid(prefix, f"Invalid hash: {prefix} must have fields.")
        currency = data.get("currency")
        if not currency:
            raise _missing(f"{prefix}[currency]")
        if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency):
            raise _invalid(f"{prefix}[currency]", f"Invalid currency: {currency}.")
        unit_amount = _int_param(data, "unit_amount", None, prefix)
        if unit_amount is None:
            raise _missing(f"{prefix}[unit_amount]")
        if unit_amount < 0:
            message = "This value must be greater than or equal to 0."
            raise _invalid(f"{prefix}[unit_amount]", message, "parameter_invalid_integer")
        product = data.get("product_data")
        if not data.get("product") and not (isinstance(product, dict) and product.get("name")):
            raise _missing(f"{prefix}[product_data][name]")
        return unit_amount, currency.lower()

    async def _retrieve_session(self, request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        with self._lock:
            session = copy.deepcopy(self._sessions.get(session_id))
        if session is None:
            message = f"No such checkout.session: '{session_id}'"
            raise StripeError(404, message, code="resource_missing", param="session")
        return web.json_response(session)

    async def _hosted_page(self, request: web.Request) -> web.Response:
        """Stands in for checkout.stripe.com. With a webhook endpoint configured it has a Pay button (test
        mode: no card, no money); without one it cannot pay and tests complete the session themselves."""
        with self._lock:
            session = copy.deepcopy(self._sessions.get(request.match_info["id"]))
        if session is None:
            return web.Response(status=404, text="No such checkout session.")
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        payable = self.webhook_url is not None and session["status"] == "open"
        if payable:
            actions = f'<form method="post"><button type="submit">Pay {escape(amount)}</button></form>'
            if session["cancel_url"]:
                actions += f'<p><a href="{escape(session["cancel_url"])}">Cancel</a></p>'
        else:
            actions = (
                "<p>Tests complete it with complete_session() or "
                "POST /_control/sessions/&lt;id&gt;/complete.</p>"
            )
        body = (
            "<!doctype html><html><head><title>Fake Stripe Checkout</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            '<body style="font-family: system-ui; max-width: 420px; margin: 48px auto; padding: 0 16px">'
            "<p><strong>TEST MODE</strong>: a local stand-in for Stripe Checkout. No card, no money.</p>"
            f"<h1>Pay {escape(amount)}</h1><p>Session {escape(session['id'])} is {session['status']}.</p>"
            f"{actions}</body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    async def _hosted_pay(self, request: web.Request) -> web.StreamResponse:
        """The Pay button: complete the session, deliver the webhook as Stripe would, go to success_url."""
        if self.webhook_url is None or self.webhook_secret is None:
            return web.Response(status=404, text="This fake has no webhook endpoint to pay to.")
        session_id = request.match_info["id"]
        try:
            event = self.complete_session(session_id)
        except (KeyError, ValueError) as error:
            return web.Response(status=409, text=str(error))
        await self.deliver(event, self.webhook_url, self.webhook_secret)
        success = event["data"]["object"]["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        raise web.HTTPSeeOther(success)

    # --- HTTP control API ---

    async def _control_prices(self, request: web.Request) -> web.Response:
        body = await request.json()
        args = (body["price_id"], body["unit_amount"], body["currency"])
        self.register_price(*args, body.get("product_name", "Test product"))
        return web.Response(status=204)

    async def _control_complete(self, request: web.Request) -> web.Response:
        body = await _optional_json(request)
        event = self.complete_session(
            request.match_info["id"],
            payment_status=body.get("payment_status", "paid"),
            customer_email=body.get("customer_email"),
        )
        return web.json_response(event)

    async def _control_settle(self, request: web.Request) -> web.Response:
        body = await _optional_json(request)
        event = self.settle_async_payment(request.match_info["id"], succeeded=body.get("succeeded", True))
        return web.json_response(event)

    async def _control_failures(self, request: web.Request) -> web.Response:
        body = await request.json()
        endpoint = body.get("endpoint", "create_session")
        self.fail_next(endpoint, body["status"], body.get("times", 1), should_retry=body.get("should_retry"))
        return web.Response(status=204)

    async def _control_deliver(self, request: web.Request) -> web.Response:
        body = await request.json()
        status, text = await self.deliver(
            body["event"],
            body["url"],
            body["secret"],
            timestamp=body.get("timestamp"),
            signature_override=body.get("signature_override"),
        )
        return web.json_response({"status": status, "body": text})

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.Response(status=204)

    async def _control_list_requests(self, request: web.Request) -> web.Response:
        with self._lock:
            recorded = [asdict(r) for r in self.requests]
        return web.json_response(recorded)

    async def _control_clear_requests(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests.clear()
        return web.Response(status=204)


# --- helpers ------------------------------------------------------------------------------------


async def _read_form(request: web.Request) -> tuple[dict[str, str], dict[str, Any], StripeError | None]:
    """The raw and parsed form of a POST, plus the error to answer with when it is not a valid form."""
    if request.method != "POST" or not request.can_read_body:
        return {}, {}, None
    raw = await request.read()  # cached, so the handler can read it again
    if request.content_type != "application/x-www-form-urlencoded":
        kind = request.content_type
        message = f"Invalid request: bodies must be application/x-www-form-urlencoded, not {kind}."
        return {}, {}, StripeError(400, message)
    try:
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return form, parse_form(raw), None
    except (UnicodeDecodeError, FormError) as exc:
        return {}, {}, StripeError(400, f"Invalid request: {exc}")


async def _optional_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise TypeError("the control body must be a JSON object")
    return body


def _replay(stored: _Idempotent, params: dict[str, Any], key: str | None) -> web.Response:
    if stored.params != params:
        message = (
            "Keys for idempotent requests can only be used with the same parameters they were first used "
            f"with. Try using a key other than '{key}' if you meant to execute a different request."
        )
        raise StripeError(400, message, type="idempotency_error")
    return web.json_response(copy.deepcopy(stored.session), headers={"Idempotent-Replayed": "true"})


def _str_param(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(name, f"Invalid string: {name} must be a plain value.", "parameter_invalid_string")
    return value or None  # an empty string means "not set"


def _url_param(params: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = _str_param(params, name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not value.startswith(("http://", "https://")):
        raise _invalid(name, "Not a valid URL", "url_invalid")
    return value


def _int_param(params: dict[str, Any], name: str, default: int | None, prefix: str = "") -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    param = f"{prefix}[{name}]" if prefix else name
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
        raise _invalid(param, f"Invalid integer: {value}", "parameter_invalid_integer")
    return int(value)


# --- running it ---------------------------------------------------------------------------------


class RunningFake:
    """A fake serving from its own event loop on a daemon thread; for sync or session-scoped fixtures."""

    def __init__(self, fake: FakeStripe, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.fake = fake
        self.url = fake.url
        self._loop = loop
        self._thread = thread

    def deliver_sync(
        self,
        event: dict[str, Any],
        url: str,
        secret: str,
        *,
        timestamp: int | None = None,
        signature_override: str | None = None,
    ) -> tuple[int, str]:
        """`fake.deliver`, sent from the fake's loop; blocks the caller, so the receiver must not be
        served by the calling thread's event loop (async tests await `fake.deliver` instead)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("deliver_sync would block the fake's own loop; await fake.deliver instead")
        coroutine = self.fake.deliver(
            event, url, secret, timestamp=timestamp, signature_override=signature_override
        )
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout=DELIVERY_TIMEOUT_SECONDS + 5)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningFake:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    secret_key: str = DEFAULT_SECRET_KEY,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> RunningFake:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="fake-stripe", daemon=True)
    thread.start()
    fake = FakeStripe(secret_key, webhook_url=webhook_url, webhook_secret=webhook_secret)
    try:
        asyncio.run_coroutine_threadsafe(fake.start(host, port), loop).result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        raise
    return RunningFake(fake, loop, thread)


def _price_arg(text: str) -> tuple[str, int, str, str]:
    price_id, amount, currency, *name = text.split(":", 3)
    return price_id, int(amount), currency, name[0] if name else "Test product"


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeStripe(args.secret_key, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    for price in args.price:
        fake.register_price(*price)
    url = await fake.start(args.host, args.port)
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    # The first line is machine-readable so a parent process can wait for it instead of sleeping.
    print(f"FAKE_STRIPE_URL={url}", flush=True)
    print(f"secret_key={args.secret_key} api_version={API_VERSION}")
    for price in args.price:
        print(f"price {price[0]}: {price[1]} {price[2].lower()} ({price[3]})")
    print("control API under /_control; Ctrl-C or SIGTERM stops", flush=True)
    try:
        await stopped.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Stripe Checkout API and webhook sender for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--webhook-url", help="where the hosted page's Pay button delivers the webhook")
    parser.add_argument("--webhook-secret", help="the webhook signing secret (whsec_…)")
    parser.add_argument(
        "--price",
        type=_price_arg,
        action="append",
        default=[],
        metavar="ID:AMOUNT:CURRENCY[:NAME]",
        help="repeatable, e.g. price_credits_100:500:usd:100 credits",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
