"""Buying credits: the packages on sale, Checkout Sessions out, payment webhooks in, each purchase credited
exactly once."""

from __future__ import annotations

__all__ = ["CheckoutStarted", "Commerce", "WebhookOutcome"]

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypedDict

from funmagic_credits.application.ledger import Ledger
from funmagic_credits.application.ports import (
    CheckoutSessionReport,
    CommerceStore,
    CreditsUnitOfWork,
    PaymentGateway,
    PaymentWebhooks,
)
from funmagic_credits.domain.commerce import (
    CreditPackage,
    PackageEntry,
    Purchase,
    UnknownPackage,
    UnknownPaidPackage,
    check_package,
    localized,
    package_must_be_for_sale,
)
from funmagic_credits.domain.ledger import RecordPurchase
from funmagic_kit.audit import AdminAction
from funmagic_kit.clock import Clock
from funmagic_kit.errors import Malformed
from funmagic_kit.ports import UnitOfWorkFactory
from funmagic_kit.request_once import RequestKey

log = logging.getLogger(__name__)

PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")


class CheckoutStarted(TypedDict):
    session_id: str
    url: str  # the provider's hosted payment page


@dataclass(frozen=True)
class WebhookOutcome:
    status: Literal["credited", "duplicate", "ignored", "unpaid"]
    credits: int = 0


@dataclass(frozen=True, kw_only=True)
class Commerce:
    """The shop and its payments, over the ports they need; `success_url` and `cancel_url` are where the
    provider's payment page sends the user back to."""

    uow: UnitOfWorkFactory[CreditsUnitOfWork]
    ledger: Ledger
    payments: PaymentGateway
    webhooks: PaymentWebhooks
    clock: Clock
    success_url: str
    cancel_url: str

    # --- the shop --------------------------------------------------------------------------------------

    async def packages(self, *, active_only: bool, locale: str | None = None) -> list[CreditPackage]:
        """The packages; with a `locale`, their names and descriptions in it (else English)."""
        async with self.uow() as uow:
            packages = await uow.commerce.packages(active_only=active_only)
        return [localized(p, locale) for p in packages] if locale else packages

    async def add_package(self, entry: PackageEntry, *, key: RequestKey | None = None) -> CreditPackage:
        """A new package; with `key`, once: a retry answers with the package its first request created."""
        entry = check_package(entry)
        async with self.uow() as uow:
            if key is not None and (earlier := await uow.claim(key)) is not None:
                created = await uow.commerce.package(earlier)
                if created is None:
                    raise UnknownPackage("the package this request created was withdrawn since")
                return created
            package = await uow.commerce.add_package(entry, self.clock.now())
            uow.record(
                AdminAction("package.created", "credit_package", package.id, dataclasses.asdict(entry))
            )
            if key is not None:
                uow.created(key, package.id)
        return package

    async def update_package(self, package_id: str, entry: PackageEntry) -> CreditPackage:
        entry = check_package(entry)
        async with self.uow() as uow:
            package = await uow.commerce.update_package(package_id, entry, self.clock.now())
            if package is not None:
                uow.record(
                    AdminAction("package.updated", "credit_package", package_id, dataclasses.asdict(entry))
                )
        if package is None:
            raise UnknownPackage("no such credit package")
        return package

    async def delete_package(self, package_id: str) -> None:
        async with self.uow() as uow:
            deleted = await uow.commerce.delete_package(package_id, self.clock.now())
            if deleted:
                uow.record(AdminAction("package.deleted", "credit_package", package_id))
        if not deleted:
            raise UnknownPackage("no such credit package")

    # --- paying ----------------------------------------------------------------------------------------

    async def checkout(self, user_id: str, package_id: str, idempotency_key: str) -> CheckoutStarted:
        async with self.uow() as uow:
            package = package_must_be_for_sale(await uow.commerce.package(package_id))
        # Outside any transaction: no connection is held while the provider answers.
        session = await self.payments.create_checkout_session(
            package,
            user_id=user_id,
            success_url=self.success_url,
            cancel_url=self.cancel_url,
            idempotency_key=f"checkout:{user_id}:{package_id}:{idempotency_key}",
        )
        async with self.uow() as uow:
            await uow.commerce.add_purchase(session.id, user_id, package, self.clock.now())
        return {"session_id": session.id, "url": session.url}

    async def handle_webhook(self, payload: bytes, signature_header: str) -> WebhookOutcome:
        event = self.webhooks.read(payload, signature_header)  # refuses before anything is stored
        now = self.clock.now()
        async with self.uow() as uow:
            store = uow.commerce
            if not await store.remember_payment_event(event.id, event.type, now):
                return WebhookOutcome("duplicate")
            if event.type not in PAID_EVENTS:
                return WebhookOutcome("ignored")
            session = event.session
            if session is None:
                raise Malformed(f"a {event.type} event without its Checkout Session")
            if session.payment_status != "paid":
                return WebhookOutcome("unpaid")  # delayed methods: credited on async_payment_succeeded
            purchase = await self._purchase_for(store, session, now)
            command = RecordPurchase(
                user_id=purchase.user_id,
                amount=purchase.credits,
                bonus=purchase.bonus_credits,
                package_id=purchase.package_id,
                payment_reference=session.id,
                price_minor=session.amount_total or purchase.price_minor,
                currency=(session.currency or purchase.currency).upper(),
            )
            stored = await self.ledger.execute(uow, command)
            await store.complete_purchase(session.id, now)
        log.info("purchase credited", extra={"user_id": purchase.user_id, "session_id": session.id})
        credited = purchase.credits + purchase.bonus_credits
        return WebhookOutcome("credited" if stored else "duplicate", credited if stored else 0)

    async def _purchase_for(
        self, store: CommerceStore, session: CheckoutSessionReport, now: datetime
    ) -> Purchase:
        purchase = await store.purchase(session.id, for_update=True)
        if purchase is not None:
            return purchase
        # A session we did not record (created before a crash between the provider and our commit): trust
        # only what we can check — the package must exist, and the user is the session's client reference.
        package = await store.package(session.package_id)
        if package is None or not session.user_id:
            raise UnknownPaidPackage("the paid session names no known credit package")
        await store.add_purchase(session.id, session.user_id, package, now)
        purchase = await store.purchase(session.id, for_update=True)
        if purchase is None:  # just added in this transaction
            raise AssertionError(f"purchase {session.id} vanished")
        return purchase
