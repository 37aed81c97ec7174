"""Stripe over its HTTP API: create Checkout Sessions, and verify webhook signatures.

Facts followed (shared/PROVIDERS.md §4): form-encoded bodies with bracket keys, Bearer secret key,
`Idempotency-Key` on creates; `Stripe-Signature: t=…,v1=…` is HMAC-SHA256 over `"{t}.{raw body}"` with the
endpoint secret, any `v1` may match (secret rotation), and a timestamp older than the tolerance is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from funmagic_kit.errors import PermanentError, TransientError

__all__ = ["CheckoutSession", "InvalidSignature", "StripeClient", "StripeRefused", "verify_signature"]


class InvalidSignature(PermanentError):
    pass


class StripeRefused(PermanentError):
    """Stripe answered 4xx: the request itself is wrong (unknown price, bad key…)."""


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    amount_total: int
    currency: str


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
        *,
        price_id: str | None,
        name: str,
        unit_amount: int,
        currency: str,
        user_id: str,
        package_id: str,
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
            "metadata[package_id]": package_id,
            "line_items[0][quantity]": "1",
        }
        if price_id:
            form["line_items[0][price]"] = price_id
        else:
            form["line_items[0][price_data][currency]"] = currency.lower()
            form["line_items[0][price_data][unit_amount]"] = str(unit_amount)
            form["line_items[0][price_data][product_data][name]"] = name
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
            raise StripeRefused(f"Stripe refused: {error.get('code') or error.get('type') or status}")
        return body
