"""Internal HTTP API of credits, called by the gateway (health and /metrics come from the kit).

Routes acting for a user take them from the forwarded, verified access token, never from the body; admin
routes check the role again here, as the route table says. Refusals are the domain's own errors, answered as
problem+json by the kit's middleware.
"""

from __future__ import annotations

__all__ = ["CreditsApp"]

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from funmagic_contracts.api.credits import (
    AdjustmentRequest,
    CheckoutRequest,
    PackageListQuery,
    PackageRequest,
    PageQuery,
    TransactionGroupQuery,
    TransactionQuery,
)
from funmagic_contracts.api.stats import StatsQuery, period_of
from funmagic_credits.adapters.queries import CreditsReads
from funmagic_credits.application.commerce import Commerce
from funmagic_credits.application.ledger import Ledger
from funmagic_credits.domain.commerce import CreditPackage, PackageEntry
from funmagic_credits.domain.ledger import AdjustCredits
from funmagic_kit.api import (
    enforce_access,
    idempotency_key,
    path_uuid,
    read_body,
    read_query,
    request_key,
    require_principal,
)
from funmagic_kit.clock import Clock
from funmagic_kit.rows import to_row


@dataclass(frozen=True, kw_only=True)
class CreditsApp:
    ledger: Ledger
    commerce: Commerce
    reads: CreditsReads
    clock: Clock
    payments_test_mode: bool = False

    def routes(self) -> Sequence[web.RouteDef]:
        admin = partial(enforce_access, "admin")  # checked before the handler runs: 401, or 403
        internal = partial(enforce_access, "internal")  # other services only (the internal credential)
        return [
            web.get("/v1/credits/me", self.my_balance),
            web.get("/v1/credits/me/transactions", self.my_transactions),
            web.get("/v1/credits/me/transaction-groups", self.my_transaction_groups),
            web.get("/v1/packages", self.active_packages),
            web.post("/v1/checkout", self.checkout),
            web.post("/v1/webhooks/stripe", self.stripe_webhook),
            web.get("/v1/admin/users/{user_id}/credits", admin(self.user_credits)),
            web.get("/v1/admin/users/{user_id}/ledger", admin(self.user_ledger)),
            web.post("/v1/admin/users/{user_id}/adjustments", admin(self.adjust)),
            web.get("/v1/admin/packages", admin(self.all_packages)),
            web.post("/v1/admin/packages", admin(self.add_package)),
            web.put("/v1/admin/packages/{package_id}", admin(self.update_package)),
            web.delete("/v1/admin/packages/{package_id}", admin(self.delete_package)),
            web.get("/v1/admin/stats/credits", admin(self.stats)),
            web.get("/v1/internal/users/{user_id}/purchases", internal(self.user_purchases)),
        ]

    # --- the caller's own credits --------------------------------------------------------------------

    async def my_balance(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        return web.json_response(await self.reads.balance(principal.user_id))

    async def my_transactions(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, TransactionQuery)
        page = await self.reads.transactions(
            principal.user_id, limit=query.limit, before=_before(query), type_=query.type
        )
        return web.json_response(page)

    async def my_transaction_groups(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, TransactionGroupQuery)
        page = await self.reads.transaction_groups(
            principal.user_id, limit=query.limit, before=_before(query)
        )
        return web.json_response(page)

    async def active_packages(self, request: web.Request) -> web.Response:
        query = read_query(request, PackageListQuery)
        packages = await self.commerce.packages(active_only=True, locale=query.locale)
        # The texts in the caller's locale; the translations themselves are for the admins' editor.
        items = [_package_view(p, public=True) for p in packages]
        return web.json_response({"items": items, "test_mode": self.payments_test_mode})

    async def checkout(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        body = await read_body(request, CheckoutRequest)
        key = idempotency_key(request) or uuid.uuid4().hex
        return web.json_response(
            await self.commerce.checkout(principal.user_id, body.package_id, key), status=201
        )

    async def stripe_webhook(self, request: web.Request) -> web.Response:
        payload = await request.read()
        outcome = await self.commerce.handle_webhook(payload, request.headers.get("Stripe-Signature", ""))
        return web.json_response({"received": True, "outcome": outcome.status})

    # --- administration ------------------------------------------------------------------------------

    async def user_credits(self, request: web.Request) -> web.Response:
        user_id = path_uuid(request, "user_id", "user")
        query = read_query(request, PageQuery)
        balance = await self.reads.balance(user_id)
        transactions = await self.reads.transactions(user_id, limit=query.limit, before=_before(query))
        return web.json_response({**balance, "transactions": transactions})

    async def user_ledger(self, request: web.Request) -> web.Response:
        query = read_query(request, PageQuery)
        user_id = path_uuid(request, "user_id", "user")
        return web.json_response(await self.reads.ledger(user_id, limit=query.limit, before=_before(query)))

    async def adjust(self, request: web.Request) -> web.Response:
        admin = require_principal(request)  # an admin: the route checked the role
        body = await read_body(request, AdjustmentRequest)
        user_id = path_uuid(request, "user_id", "user")
        # A retried request (same Idempotency-Key) adjusts once; the key with another change is a 409.
        reference = idempotency_key(request) or uuid.uuid4().hex
        await self.ledger.adjust(
            AdjustCredits(user_id, body.amount, admin.user_id, body.reason.strip(), reference)
        )
        return web.json_response(await self.reads.balance(user_id), status=201)

    async def all_packages(self, request: web.Request) -> web.Response:
        packages = await self.commerce.packages(active_only=False)
        items = [_package_view(p) for p in packages]
        return web.json_response({"items": items, "test_mode": self.payments_test_mode})

    async def add_package(self, request: web.Request) -> web.Response:
        body = await read_body(request, PackageRequest)
        # A retried request (same Idempotency-Key and body) creates once.
        key = request_key(request, "packages.create", body)
        package = await self.commerce.add_package(_entry(body), key=key)
        return web.json_response(_package_view(package), status=201)

    async def update_package(self, request: web.Request) -> web.Response:
        body = await read_body(request, PackageRequest)
        package = await self.commerce.update_package(request.match_info["package_id"], _entry(body))
        return web.json_response(_package_view(package))

    async def delete_package(self, request: web.Request) -> web.Response:
        await self.commerce.delete_package(request.match_info["package_id"])
        return web.Response(status=204)

    async def stats(self, request: web.Request) -> web.Response:
        """The admin overview's figures of credits over the window up to now (`CreditStats`)."""
        query = read_query(request, StatsQuery)
        period = period_of(query.window, self.clock.now())
        figures = await self.reads.period(period.since, period.until)
        return web.json_response(
            {"window": query.window, "since": period.since.isoformat(), "until": period.until.isoformat(),
             **figures}
        )  # fmt: skip

    # --- other services ------------------------------------------------------------------------------

    async def user_purchases(self, request: web.Request) -> web.Response:
        """For other services only (the gateway's rate-limit tiers): the credits a user ever bought."""
        return web.json_response(await self.reads.purchases(path_uuid(request, "user_id", "user")))


def _before(query: PageQuery) -> int | None:
    """The position the next page starts below (the cursor is the last position of the previous page)."""
    return int(query.cursor) if query.cursor else None


def _entry(body: PackageRequest) -> PackageEntry:
    return PackageEntry(**body.model_dump())


def _package_view(package: CreditPackage, *, public: bool = False) -> dict[str, Any]:
    view = to_row(
        package,
        created_at=package.created_at.isoformat(),
        updated_at=package.updated_at.isoformat(),
        translations=dict(package.translations),
    )
    if public:
        del view["translations"]
    return view
