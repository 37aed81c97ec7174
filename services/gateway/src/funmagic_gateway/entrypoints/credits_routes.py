"""`/api/credits/*`, `/api/webhooks/stripe` and the admin credit routes: the public face of credits.

Every route is a declared forward but Stripe's webhook, whose body goes on byte for byte.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from funmagic_contracts.api.credits import (
    MAX_BONUS_FACTOR,
    AdjustmentRequest,
    AdminPackage,
    AdminPackageList,
    AdminUserCredits,
    Balance,
    CheckoutRequest,
    CheckoutResult,
    LedgerPage,
    PackageList,
    PackageListQuery,
    PackageRequest,
    PageQuery,
    StripeEvent,
    TransactionGroupPage,
    TransactionGroupQuery,
    TransactionPage,
    TransactionQuery,
    WebhookReceipt,
)
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.edge import CLIENT_IP_KEY
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, answer, operations
from funmagic_kit.api import Operation

__all__ = ["credits_operations"]

_PACKAGE_RULE = (
    f"Business rule: `bonus_credits` is at most {MAX_BONUS_FACTOR} times `credits` (422), a bound between "
    "two fields that the schema cannot state."
)


_GROUPS_DOC = (
    "A task started from another's output (a FigMe 3D model from its image) belongs to that task's root: "
    "the group holds the charges and refunds of the whole chain, `net_amount` their sum. Purchases, "
    "bonuses and adjustments are groups of one. "
)


def credits_operations(credits: ServiceClient) -> list[Operation]:
    mine, admin, hooks = "credits", "admin: credits", "webhooks"
    user_credits, package = "/api/admin/users/{user_id}/credits", "/api/admin/credit-packages/{package_id}"
    return operations(
        Forward("GET", "/api/credits/balance", credits, "/v1/credits/me",
                "My credit balance", mine, "balance", access="user", reply=Balance),
        Forward("GET", "/api/credits/transactions", credits, "/v1/credits/me/transactions",
                "My credit history, newest first", mine, "transactions", access="user",
                query=TransactionQuery, reply=TransactionPage),
        Forward("GET", "/api/credits/transaction-groups", credits, "/v1/credits/me/transaction-groups",
                "My credit history by task: the entries of one root task together", mine,
                "transaction_groups", access="user", query=TransactionGroupQuery, reply=TransactionGroupPage,
                description=_GROUPS_DOC + CURSOR_RULE),
        Forward("GET", "/api/credits/packages", credits, "/v1/packages",
                "Credit packages for sale", mine, "packages", access="public",
                query=PackageListQuery, reply=PackageList),
        Forward("POST", "/api/credits/checkout", credits, "/v1/checkout",
                "Start paying for a credit package", mine, "checkout", access="user", body=CheckoutRequest,
                reply=CheckoutResult, status=201, errors=(403, 404, 409, 502, 503), idempotent=True),
        Operation("POST", "/api/webhooks/stripe", _stripe_webhook(credits),
                  "Stripe's payment notifications", hooks, access="public", body=StripeEvent,
                  response=WebhookReceipt,
                  errors=(503,), name="stripe_webhook",
                  description="Business rule: the body must be signed by Stripe: its `Stripe-Signature` "
                              "header (timestamp and v1 signature over the raw body with the webhook secret) "
                              "is checked first (400 `invalid_signature`)."),
        Forward("GET", user_credits, credits, "/v1/admin/users/{user_id}/credits",
                "A user's balance and history", admin, "user_credits", access="admin", query=PageQuery,
                reply=AdminUserCredits, errors=(404,)),
        Forward("GET", "/api/admin/users/{user_id}/ledger", credits, "/v1/admin/users/{user_id}/ledger",
                "A user's ledger events", admin, "user_ledger", access="admin", query=PageQuery,
                reply=LedgerPage, errors=(404,)),
        Forward("POST", user_credits, credits, "/v1/admin/users/{user_id}/adjustments",
                "Adjust a user's balance (reason required; never below zero)", admin, "adjust",
                access="admin", body=AdjustmentRequest, reply=Balance, status=201, errors=(404, 409),
                idempotent=True),
        Forward("GET", "/api/admin/credit-packages", credits, "/v1/admin/packages",
                "All credit packages", admin, "all_packages", access="admin", reply=AdminPackageList),
        Forward("POST", "/api/admin/credit-packages", credits, "/v1/admin/packages",
                "Create a credit package", admin, "add_package", access="admin", body=PackageRequest,
                reply=AdminPackage, status=201, errors=(409,), description=_PACKAGE_RULE, idempotent=True),
        Forward("PUT", package, credits, "/v1/admin/packages/{package_id}",
                "Change a credit package", admin, "update_package", access="admin", body=PackageRequest,
                reply=AdminPackage, errors=(404,), description=_PACKAGE_RULE),
        Forward("DELETE", package, credits, "/v1/admin/packages/{package_id}",
                "Withdraw a credit package", admin, "delete_package", access="admin", status=204,
                errors=(404,)),
    )  # fmt: skip


def _stripe_webhook(credits: ServiceClient) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def stripe_webhook(request: web.Request) -> web.Response:
        # Forwarded byte for byte: the signature covers the raw body, which re-encoding would break.
        reply = await credits.call(
            "POST",
            "/v1/webhooks/stripe",
            raw_body=await request.read(),
            extra_headers={
                "Content-Type": "application/json",
                "Stripe-Signature": request.headers.get("Stripe-Signature", ""),
            },
            client_ip=request.get(CLIENT_IP_KEY) or request.remote,
        )
        return answer(reply, WebhookReceipt)

    return stripe_webhook
