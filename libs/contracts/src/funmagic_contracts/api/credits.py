"""`/api/credits/*`, `/api/webhooks/stripe` and the admin credit routes: the models of credits' public face.

Request models and the credits route they are the body (or query) of — the same fields and rules:

    PageQuery          GET /v1/credits/me/transactions, /v1/admin/users/{user_id}/credits and /ledger (query)
    CheckoutRequest    POST /v1/checkout
    AdjustmentRequest  POST /v1/admin/users/{user_id}/adjustments
    PackageListQuery   GET /v1/packages (query: `locale`, the catalog's rule — names and descriptions in that
                       locale, falling back to its language, then English, per field)
    PackageRequest     POST /v1/admin/packages, PUT /v1/admin/packages/{package_id}
    StatsQuery         GET /v1/admin/stats/credits (query; `funmagic_contracts.api.stats`) → CreditStats

`StripeEvent` documents what Stripe posts to /api/webhooks/stripe; the gateway forwards those bytes
unparsed (the signature covers them). `LifetimePurchases` is the answer of the internal
`GET /v1/internal/users/{user_id}/purchases` (the gateway's rate-limit tiers read it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from funmagic_contracts.api.base import Reply, Request
from funmagic_contracts.api.catalog import LOCALE_DOC, Locale
from funmagic_contracts.api.stats import StatsWindow

__all__ = [
    "MAX_BONUS_FACTOR",
    "PACKAGE_LOCALES",
    "AdjustmentRequest",
    "AdminPackage",
    "AdminPackageList",
    "AdminUserCredits",
    "Balance",
    "CheckoutRequest",
    "CheckoutResult",
    "CreditStats",
    "LedgerEntry",
    "LedgerPage",
    "LifetimePurchases",
    "Package",
    "PackageList",
    "PackageListQuery",
    "PackageLocale",
    "PackageRequest",
    "PackageTranslation",
    "PageQuery",
    "Revenue",
    "StripeEvent",
    "Transaction",
    "TransactionGroup",
    "TransactionGroupPage",
    "TransactionGroupQuery",
    "TransactionPage",
    "TransactionQuery",
    "TransactionType",
    "WebhookReceipt",
]


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


class TransactionGroup(Reply):
    """The entries of one root task (its charges and refunds, and its child tasks'), or one other entry."""

    root_task_id: str | None = Field(
        description="The task at the top of the chain these entries paid for; null for an entry of no task."
    )
    tool_slug: str | None = Field(None, description="The root task's tool, when known.")
    net_amount: int = Field(
        description="What the group changed the balance by (negative: credits spent): the sum of its charges "
        "and other entries. A refund only gives back the unused part of a task's hold, which is no entry, "
        "so refunds are not added."
    )
    first_at: datetime
    last_at: datetime
    entries: list[Transaction] = Field(description="Newest first.")


class TransactionGroupPage(Reply):
    items: list[TransactionGroup] = Field(description="Newest group (by its newest entry) first.")
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


class LifetimePurchases(Reply):
    user_id: str
    lifetime_purchased: int = Field(ge=0, description="Credits the user ever bought (bonuses included).")


# The web app's languages other than English: a package's base texts are English.
PackageLocale = Literal["de", "es", "fr", "ja", "ko", "pt", "vi", "zh"]
PACKAGE_LOCALES: tuple[str, ...] = ("de", "es", "fr", "ja", "ko", "pt", "vi", "zh")
# The largest bonus, as a multiple of the package's credits (a typo cannot give away a fortune).
MAX_BONUS_FACTOR = 10


class Package(Reply):
    id: str
    name: str = Field(description="In the requested locale (public list), else English.")
    description: str | None = Field(None, description="In the requested locale (public list), else English.")
    credits: int
    bonus_credits: int = Field(0, description="Granted on top of `credits` when the package is bought.")
    is_popular: bool = Field(False, description="Shown with a “Popular” badge.")
    price_minor: int
    currency: str
    stripe_price_id: str | None = None
    is_active: bool
    sort_order: int


class PackageList(Reply):
    items: list[Package]
    test_mode: bool = Field(
        False,
        description="Payments go to Stripe's test mode (a test key): no money moves; say so to the buyer.",
    )


class AdminPackage(Package):
    translations: dict[str, Any] = Field(
        default_factory=dict, description="`{locale: {name, description}}`; `name`/`description` are English."
    )


class AdminPackageList(Reply):
    items: list[AdminPackage]
    test_mode: bool = False


class PackageListQuery(Request):
    locale: Locale | None = Field(None, description=LOCALE_DOC)


class PageQuery(Request):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(
        None, max_length=19, pattern=r"^[0-9]{1,19}$", description="`next_cursor` of the previous page."
    )


TransactionType = Literal["purchase", "spend", "refund", "bonus", "admin_adjust"]


class TransactionQuery(PageQuery):
    type: TransactionType | None = Field(None, description="Only entries of this type.")


class TransactionGroupQuery(PageQuery):
    """A page of groups: `limit` groups, `cursor` the previous page's `next_cursor`."""


class CheckoutRequest(Request):
    package_id: str = Field(min_length=1, max_length=64)


class CheckoutResult(Reply):
    session_id: str
    url: str = Field(description="Stripe's hosted payment page: send the browser there.")


class AdjustmentRequest(Request):
    amount: int = Field(
        ge=-1_000_000_000,
        le=1_000_000_000,
        description="Signed and never 0; the balance never goes below 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("amount")
    @classmethod
    def _not_zero(cls, amount: int) -> int:
        if amount == 0:
            raise ValueError("an adjustment of 0 changes nothing")
        return amount


class PackageTranslation(Request):
    name: str | None = Field(None, max_length=100)
    description: str | None = Field(None, max_length=500)


class PackageRequest(Request):
    name: str = Field(min_length=1, max_length=100, description="English (the base text).")
    description: str | None = Field(None, max_length=500, description="English (the base text).")
    credits: int = Field(gt=0, le=100_000_000)
    bonus_credits: int = Field(
        0,
        ge=0,
        le=1_000_000_000,
        description=f"Credited on top of `credits` when bought; at most {MAX_BONUS_FACTOR} × `credits`.",
    )
    is_popular: bool = False
    price_minor: int = Field(ge=0, le=100_000_000, description="Price in the currency's minor unit (cents).")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    stripe_price_id: str | None = Field(None, max_length=100)
    is_active: bool = True
    sort_order: int = Field(0, ge=-1_000_000, le=1_000_000)
    translations: dict[PackageLocale, PackageTranslation] = Field(
        default_factory=dict,
        description="Name and description per locale; an empty text falls back to English.",
    )

    @field_validator("bonus_credits")
    @classmethod
    def _bonus_within_bound(cls, bonus: int, info: ValidationInfo) -> int:
        credits = info.data.get("credits")  # declared before: checked already (absent when it failed)
        if isinstance(credits, int) and bonus > credits * MAX_BONUS_FACTOR:
            raise ValueError(f"a bonus is at most {MAX_BONUS_FACTOR} times the package's credits")
        return bonus


class StripeEvent(BaseModel):
    """A Stripe event, delivered by Stripe and verified by its `Stripe-Signature` header."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    data: dict[str, Any]


class WebhookReceipt(Reply):
    received: bool
    outcome: str


# --- the admin overview's figures ----------------------------------------------------------------------


class Revenue(Reply):
    currency: str = Field(description="ISO 4217, upper case.")
    amount_minor: int = Field(description="What was paid, in the currency's minor unit (cents).")
    purchases: int = Field(ge=0)


class CreditStats(Reply):
    window: StatsWindow
    since: datetime = Field(description="The period's start (inclusive).")
    until: datetime = Field(description="The period's end (exclusive): the end of the current bucket.")
    credits_sold: int = Field(
        description="Credits bought in the window (a package's bonus credits included)."
    )
    purchases: int = Field(ge=0, description="Paid purchases credited in the window.")
    revenue: list[Revenue] = Field(description="What those purchases paid, per currency.")
    credits_spent: int = Field(
        description="Credits charged for tasks in the window. A task holds its price while it runs and is "
        "charged only what it used; the rest goes back (`credits_refunded`) and was never spent."
    )
    credits_refunded: int = Field(
        description="Held credits given back in the window: the unused part of tasks that failed, were "
        "cancelled or cost less than held."
    )
    bonus_granted: int = Field(
        description="Bonus credits granted in the window (sign-up bonuses, promotions)."
    )
    credits_adjusted: int = Field(description="The net of admins' adjustments in the window (signed).")
