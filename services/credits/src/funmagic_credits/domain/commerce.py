"""Credit packages and their purchases: the records of buying credits and its refusals. Pure.

A package is what the shop sells (credits for a price); a purchase is one Checkout Session for a package,
pending until the payment provider reports it paid, when the ledger records the credits (once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from funmagic_kit.errors import Conflict, Malformed, NotFound

__all__ = [
    "CreditPackage",
    "PackageEntry",
    "PackageUnavailable",
    "Purchase",
    "UnknownPackage",
    "UnknownPaidPackage",
    "package_must_be_for_sale",
]


@dataclass(frozen=True)
class PackageEntry:
    """What an admin sets on a package."""

    name: str
    credits: int
    price_minor: int
    currency: str
    stripe_price_id: str | None
    is_active: bool
    sort_order: int


@dataclass(frozen=True)
class CreditPackage(PackageEntry):
    id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Purchase:
    session_id: str
    user_id: str
    package_id: str
    credits: int
    price_minor: int
    currency: str
    status: str  # pending | completed


class UnknownPackage(NotFound, code="unknown_package"):
    """No credit package with this id (or it was deleted)."""


class UnknownPaidPackage(Malformed, code="unknown_package"):
    """A paid session names no package we know: the report itself is wrong, not a missing resource."""


class PackageUnavailable(Conflict, code="package_unavailable"):
    """A checkout for a package that exists but is not for sale now."""


def package_must_be_for_sale(package: CreditPackage | None) -> CreditPackage:
    if package is None:
        raise UnknownPackage("no such credit package")
    if not package.is_active:
        raise PackageUnavailable("this credit package is not for sale")
    return package
