"""Stripe over its HTTP API: create Checkout Sessions, and verify webhook signatures.

Facts followed (shared/PROVIDERS.md §4): form-encoded bodies with bracket keys, Bearer secret key,
`Idempotency-Key` on creates; `Stripe-Signature: t=…,v1=…` is HMAC-SHA256 over `"{t}.{raw body}"` with the
endpoint secret, any `v1` may match (secret rotation), and a timestamp older than the tolerance is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from funmagic_credits.application.ports import CheckoutSession, CheckoutSessionReport, PaymentEvent
from funmagic_credits.domain.commerce import CreditPackage
from funmagic_kit.errors import Conflict, Malformed, TransientError, UpstreamRefused

__all__ = [
    "InvalidSignature",
    "PriceMissing",
    "StripeClient",
    "StripeRefused",
    "StripeWebhooks",
    "verify_signature",
]


class InvalidSignature(Malformed, code="invalid_signature"):
    """A webhook whose Stripe-Signature does not verify (forged, stale, or signed with another secret)."""


class StripeRefused(UpstreamRefused, code="payment_provider_refused"):
    """Stripe answered 4xx: our request to it is wrong (a bad key, say), which the buyer cannot change."""


class PriceMissing(Conflict, code="package_unavailable"):
    """The package names a Stripe price that Stripe does not have: it cannot be sold until an admin fixes it
    (the buyer's request is fine; the package's state is not)."""


def verify_signature(
    payload: bytes, header: str, secret: str, *, tolerance_seconds: int, now: float | None = None
) -> int:
    """Returns the signed timestamp; raises InvalidSignature for a malformed, wrong or stale signature."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise InvalidSignature("Stripe-Signature has no timestamp or no v1 signature")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise InvalidSignature("Stripe-Signature does not match the payload")
    current = time.time() if now is None else now
    if timestamp < current - tolerance_seconds:
        raise InvalidSignature("Stripe-Signature timestamp is too old (replayed?)")
    return timestamp


class StripeClient:
    def __init__(self, api_base: str, secret_key: str, session: aiohttp.ClientSession) -> None:
        self._api_base = api_base.rstrip("/")
        self._secret_key = secret_key
        self._session = session

    async def create_checkout_session(
        self,
        package: CreditPackage,
        *,
        user_id: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        form: dict[str, str] = {
            "mode": "payment",
            "success_url": success_url,
            "cancel_url": cancel_url,
            "client_reference_id": user_id,
            "metadata[user_id]": user_id,
            "metadata[package_id]": package.id,
            "line_items[0][quantity]": "1",
        }
        if package.stripe_price_id:
            form["line_items[0][price]"] = package.stripe_price_id
        else:  # a package without a Stripe price is sold at its own price, under its name
            form["line_items[0][price_data][currency]"] = package.currency.lower()
            form["line_items[0][price_data][unit_amount]"] = str(package.price_minor)
            form["line_items[0][price_data][product_data][name]"] = package.name
        body = await self._post("/v1/checkout/sessions", form, idempotency_key)
        return CheckoutSession(
            id=body["id"], url=body["url"], amount_total=int(body["amount_total"]), currency=body["currency"]
        )

    async def _post(self, path: str, form: dict[str, str], idempotency_key: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._secret_key}", "Idempotency-Key": idempotency_key}
        try:
            async with self._session.post(f"{self._api_base}{path}", data=form, headers=headers) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise TransientError(f"Stripe unreachable: {type(error).__name__}") from error
        if status == 429 or status >= 500:
            raise TransientError(f"Stripe answered {status}; retry")
        if status >= 400:
            error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
            if error.get("code") == "resource_missing" and str(error.get("param", "")).endswith("[price]"):
                raise PriceMissing("this package cannot be bought now: its price is not set up for payment")
            raise StripeRefused(f"Stripe refused: {error.get('code') or error.get('type') or status}")
        return body


class StripeWebhooks:
    """Reads Stripe's webhook deliveries: the signature first, then the event's few fields we use."""

    def __init__(self, secret: str, *, tolerance_seconds: int) -> None:
        self._secret = secret
        self._tolerance_seconds = tolerance_seconds

    def read(self, payload: bytes, signature_header: str) -> PaymentEvent:
        verify_signature(payload, signature_header, self._secret, tolerance_seconds=self._tolerance_seconds)
        try:
            event = json.loads(payload)
        except ValueError:
            raise Malformed("the webhook body is not JSON") from None
        if not isinstance(event, dict) or "id" not in event:
            raise Malformed("the webhook body is not a Stripe event")
        data = event.get("data")
        session = data.get("object") if isinstance(data, dict) else None
        return PaymentEvent(
            id=str(event["id"]),
            type=str(event.get("type")),
            session=_session_report(session) if isinstance(session, dict) and "id" in session else None,
        )


def _session_report(session: dict[str, Any]) -> CheckoutSessionReport:
    metadata = session.get("metadata") or {}
    amount_total = session.get("amount_total")
    currency = session.get("currency")
    return CheckoutSessionReport(
        id=str(session["id"]),
        payment_status=session.get("payment_status"),
        amount_total=int(amount_total) if amount_total else None,
        currency=str(currency) if currency else None,
        user_id=str(session.get("client_reference_id") or metadata.get("user_id") or "") or None,
        package_id=str(metadata.get("package_id", "")),
    )
