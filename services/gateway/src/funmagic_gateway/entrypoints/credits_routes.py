"""`/api/credits/*`, `/api/webhooks/stripe` and the admin credit routes: the public face of credits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.edge import CLIENT_IP_KEY
from funmagic_gateway.entrypoints.forwarding import idempotency_key_header, relay, safe_id
from funmagic_gateway.entrypoints.schemas import Reply, Request
from funmagic_kit.api import Operation, json_body, read_body, read_query

__all__ = ["CreditsRoutes"]


class Balance(Reply):
    user_id: str
    balance: int = Field(description="Credits the user can spend now.")
    reserved_balance: int = Field(description="Credits held for running tasks.")
    lifetime_earned: int
    lifetime_spent: int


class Transaction(Reply):
    id: str
    type: str = Field(description="purchase, spend, refund, bonus or admin_adjust")
    amount: int
    balance_after: int
    reference_id: str | None = None
    description: str
    created_at: datetime


class TransactionPage(Reply):
    items: list[Transaction]
    next_cursor: str | None = None


class AdminUserCredits(Balance):
    transactions: TransactionPage


class LedgerEntry(Reply):
    position: int
    event_id: str
    version: int
    type: str
    data: dict[str, Any]
    occurred_at: datetime


class LedgerPage(Reply):
    items: list[LedgerEntry]
    next_cursor: str | None = None


class Package(Reply):
    id: str
    name: str
    credits: int
    price_minor: int
    currency: str
    stripe_price_id: str | None = None
    is_active: bool
    sort_order: int


class PackageList(Reply):
    items: list[Package]


class PageQuery(Request):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,19}$", description="`next_cursor` of the previous page."
    )


class CheckoutRequest(Request):
    package_id: str = Field(min_length=1, max_length=64)


class CheckoutResult(Reply):
    session_id: str
    url: str = Field(description="Stripe's hosted payment page: send the browser there.")


class AdjustmentRequest(Request):
    amount: int = Field(
        ge=-1_000_000_000, le=1_000_000_000, description="Signed; the balance never goes below 0."
    )
    reason: str = Field(min_length=1, max_length=500)


class PackageRequest(Request):
    name: str = Field(min_length=1, max_length=100)
    credits: int = Field(gt=0, le=100_000_000)
    price_minor: int = Field(ge=0, le=100_000_000, description="Price in the currency's minor unit (cents).")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stripe_price_id: str | None = Field(None, max_length=100)
    is_active: bool = True
    sort_order: int = Field(0, ge=-1_000_000, le=1_000_000)


class StripeEvent(BaseModel):
    """A Stripe event, delivered by Stripe and verified by its `Stripe-Signature` header."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    data: dict[str, Any]


class WebhookReceipt(Reply):
    received: bool
    outcome: str


class CreditsRoutes:
    def __init__(self, credits: ServiceClient) -> None:
        self._credits = credits

    def operations(self) -> list[Operation]:
        mine, admin, hooks = "credits", "admin: credits", "webhooks"
        return [
            Operation(
                "GET",
                "/api/credits/balance",
                self.balance,
                "My credit balance",
                mine,
                access="user",
                response=Balance,
            ),
            Operation(
                "GET",
                "/api/credits/transactions",
                self.transactions,
                "My credit history, newest first",
                mine,
                access="user",
                query=PageQuery,
                response=TransactionPage,
            ),
            Operation(
                "GET",
                "/api/credits/packages",
                self.packages,
                "Credit packages for sale",
                mine,
                response=PackageList,
            ),
            Operation(
                "POST",
                "/api/credits/checkout",
                self.checkout,
                "Start paying for a credit package",
                mine,
                access="user",
                body=CheckoutRequest,
                response=CheckoutResult,
                status=201,
                errors=(403, 404, 409, 502, 503),
            ),
            Operation(
                "POST",
                "/api/webhooks/stripe",
                self.stripe_webhook,
                "Stripe's payment notifications",
                hooks,
                body=StripeEvent,
                response=WebhookReceipt,
                errors=(503,),
            ),
            Operation(
                "GET",
                "/api/admin/users/{user_id}/credits",
                self.user_credits,
                "A user's balance and history",
                admin,
                access="admin",
                query=PageQuery,
                response=AdminUserCredits,
                errors=(404,),
            ),
            Operation(
                "GET",
                "/api/admin/users/{user_id}/ledger",
                self.user_ledger,
                "A user's ledger events",
                admin,
                access="admin",
                query=PageQuery,
                response=LedgerPage,
                errors=(404,),
            ),
            Operation(
                "POST",
                "/api/admin/users/{user_id}/credits",
                self.adjust,
                "Adjust a user's balance (reason required; never below zero)",
                admin,
                access="admin",
                body=AdjustmentRequest,
                response=Balance,
                status=201,
                errors=(404, 409),
            ),
            Operation(
                "GET",
                "/api/admin/credit-packages",
                self.all_packages,
                "All credit packages",
                admin,
                access="admin",
                response=PackageList,
            ),
            Operation(
                "POST",
                "/api/admin/credit-packages",
                self.add_package,
                "Create a credit package",
                admin,
                access="admin",
                body=PackageRequest,
                response=Package,
                status=201,
            ),
            Operation(
                "PUT",
                "/api/admin/credit-packages/{package_id}",
                self.update_package,
                "Change a credit package",
                admin,
                access="admin",
                body=PackageRequest,
                response=Package,
                errors=(404,),
            ),
            Operation(
                "DELETE",
                "/api/admin/credit-packages/{package_id}",
                self.delete_package,
                "Withdraw a credit package",
                admin,
                access="admin",
                status=204,
                errors=(404,),
            ),
        ]

    async def balance(self, request: web.Request) -> web.Response:
        return await relay(self._credits, request, "GET", "/v1/credits/me", Balance)

    async def transactions(self, request: web.Request) -> web.Response:
        query = read_query(request, PageQuery)
        return await relay(
            self._credits,
            request,
            "GET",
            "/v1/credits/me/transactions",
            TransactionPage,
            params=_params(query),
        )

    async def packages(self, request: web.Request) -> web.Response:
        return await relay(self._credits, request, "GET", "/v1/packages", PackageList)

    async def checkout(self, request: web.Request) -> web.Response:
        body = await read_body(request, CheckoutRequest)
        return await relay(
            self._credits,
            request,
            "POST",
            "/v1/checkout",
            CheckoutResult,
            payload=body.model_dump(),
            extra_headers=idempotency_key_header(request),
        )

    async def stripe_webhook(self, request: web.Request) -> web.Response:
        # Forwarded byte for byte: the signature covers the raw body, which re-encoding would break.
        raw = await request.read()
        reply = await self._credits.call(
            "POST",
            "/v1/webhooks/stripe",
            raw_body=raw,
            extra_headers={
                "Content-Type": "application/json",
                "Stripe-Signature": request.headers.get("Stripe-Signature", ""),
            },
            client_ip=request.get(CLIENT_IP_KEY) or request.remote,
        )
        reply.raise_for_problem()
        return json_body(WebhookReceipt.model_validate(reply.body))

    async def user_credits(self, request: web.Request) -> web.Response:
        query = read_query(request, PageQuery)
        user_id = safe_id(request.match_info["user_id"])
        return await relay(
            self._credits,
            request,
            "GET",
            f"/v1/admin/users/{user_id}/credits",
            AdminUserCredits,
            params=_params(query),
        )

    async def user_ledger(self, request: web.Request) -> web.Response:
        query = read_query(request, PageQuery)
        user_id = safe_id(request.match_info["user_id"])
        return await relay(
            self._credits,
            request,
            "GET",
            f"/v1/admin/users/{user_id}/ledger",
            LedgerPage,
            params=_params(query),
        )

    async def adjust(self, request: web.Request) -> web.Response:
        body = await read_body(request, AdjustmentRequest)
        user_id = safe_id(request.match_info["user_id"])
        return await relay(
            self._credits,
            request,
            "POST",
            f"/v1/admin/users/{user_id}/adjustments",
            Balance,
            payload=body.model_dump(),
            extra_headers=idempotency_key_header(request),
        )

    async def all_packages(self, request: web.Request) -> web.Response:
        return await relay(self._credits, request, "GET", "/v1/admin/packages", PackageList)

    async def add_package(self, request: web.Request) -> web.Response:
        body = await read_body(request, PackageRequest)
        return await relay(
            self._credits, request, "POST", "/v1/admin/packages", Package, payload=body.model_dump()
        )

    async def update_package(self, request: web.Request) -> web.Response:
        body = await read_body(request, PackageRequest)
        package_id = safe_id(request.match_info["package_id"])
        return await relay(
            self._credits,
            request,
            "PUT",
            f"/v1/admin/packages/{package_id}",
            Package,
            payload=body.model_dump(),
        )

    async def delete_package(self, request: web.Request) -> web.Response:
        package_id = safe_id(request.match_info["package_id"])
        return await relay(self._credits, request, "DELETE", f"/v1/admin/packages/{package_id}", None)


def _params(query: PageQuery) -> dict[str, str]:
    return {k: str(v) for k, v in query.model_dump(exclude_none=True).items()}
