"""Buying credits: Checkout Sessions out, Stripe webhooks in, each purchase credited exactly once."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from funmagic_credits.application.ledger import Ledger
from funmagic_credits.application.ports import Clock
from funmagic_credits.domain.ledger import RecordPurchase

__all__ = ["Commerce", "PackageUnavailable", "UnknownPackage", "WebhookOutcome"]

log = logging.getLogger(__name__)

PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


class UnknownPackage(Exception):
    pass


class PackageUnavailable(Exception):
    pass


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # credited | duplicate | ignored | unpaid
    credits: int = 0


class CommerceStore(Protocol):
    async def package(self, package_id: str) -> dict[str, Any] | None: ...
    async def add_purchase(
        self, session_id: str, user_id: str, package: dict[str, Any], now: Any
    ) -> None: ...
    async def purchase(self, session_id: str, *, for_update: bool = False) -> dict[str, Any] | None: ...
    async def complete_purchase(self, session_id: str, now: Any) -> None: ...
    async def remember_stripe_event(self, event_id: str, event_type: str, now: Any) -> bool: ...


class PaymentGateway(Protocol):
    async def create_checkout_session(self, **kwargs: Any) -> Any: ...


class Commerce:
    def __init__(
        self,
        *,
        uow: Callable[[], Any],
        commerce_stores: Callable[[Any], CommerceStore],
        ledger: Ledger,
        payments: PaymentGateway,
        verify_signature: Callable[[bytes, str], int],
        clock: Clock,
        success_url: str,
        cancel_url: str,
    ) -> None:
        self._uow = uow
        self._stores = commerce_stores
        self._ledger = ledger
        self._payments = payments
        self._verify_signature = verify_signature
        self._clock = clock
        self._success_url = success_url
        self._cancel_url = cancel_url

    async def checkout(self, user_id: str, package_id: str, idempotency_key: str) -> dict[str, str]:
        async with self._uow() as uow:
            package = await self._stores(uow.conn).package(package_id)
        if package is None:
            raise UnknownPackage("no such credit package")
        if not package["is_active"]:
            raise PackageUnavailable("this credit package is not for sale")
        session = await self._payments.create_checkout_session(
            price_id=package["stripe_price_id"],
            name=package["name"],
            unit_amount=package["price_minor"],
            currency=package["currency"],
            user_id=user_id,
            package_id=package["id"],
            success_url=self._success_url,
            cancel_url=self._cancel_url,
            idempotency_key=f"checkout:{user_id}:{package_id}:{idempotency_key}",
        )
        async with self._uow() as uow:
            await self._stores(uow.conn).add_purchase(session.id, user_id, package, self._clock.now())
        return {"session_id": session.id, "url": session.url}

    async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookOutcome:
        self._verify_signature(payload, signature_header)  # raises before anything is read or stored
        event = json.loads(payload)
        now = self._clock.now()
        async with self._uow() as uow:
            store = self._stores(uow.conn)
            if not await store.remember_stripe_event(str(event["id"]), str(event.get("type")), now):
                return WebhookOutcome("duplicate")
            if event.get("type") not in PAID_EVENTS:
                return WebhookOutcome("ignored")
            session = event["data"]["object"]
            if session.get("payment_status") != "paid":
                return WebhookOutcome("unpaid")  # delayed methods: credited on async_payment_succeeded
            purchase = await self._purchase_for(store, session, now)
            command = RecordPurchase(
                user_id=purchase["user_id"],
                amount=purchase["credits"],
                package_id=purchase["package_id"],
                payment_reference=session["id"],
                price_minor=int(session.get("amount_total") or purchase["price_minor"]),
                currency=str(session.get("currency") or purchase["currency"]).upper(),
            )
            stored = await self._ledger.execute(uow.conn, command)
            await store.complete_purchase(session["id"], now)
        log.info("purchase credited", extra={"user_id": purchase["user_id"], "session_id": session["id"]})
        return WebhookOutcome("credited" if stored else "duplicate", purchase["credits"] if stored else 0)

    async def _purchase_for(self, store: CommerceStore, session: dict[str, Any], now: Any) -> dict[str, Any]:
        purchase = await store.purchase(session["id"], for_update=True)
        if purchase is not None:
            return purchase
        # A session we did not record (created before a crash between Stripe and our commit): trust only
        # what we can check — the package must exist, and the user is the session's client_reference_id.
        metadata = session.get("metadata") or {}
        package = await store.package(str(metadata.get("package_id", "")))
        user_id = session.get("client_reference_id") or metadata.get("user_id")
        if package is None or not user_id:
            raise UnknownPackage("the paid session names no known credit package")
        await store.add_purchase(session["id"], str(user_id), package, now)
        purchase = await store.purchase(session["id"], for_update=True)
        assert purchase is not None
        return purchase
