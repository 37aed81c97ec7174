"""Credit packages and their purchases: the records of buying credits and its refusals. Pure.

A package is what the shop sells (credits, plus any bonus credits, for a price); a purchase is one Checkout
Session for a package, pending until the payment provider reports it paid, when the ledger records the
credits and the bonus (once, in one `Purchased` event).

Localisation as the catalog does it: the base columns are English; `translations` holds per-locale overrides
of `name` and `description`, field by field. A request for `ja` (or `pt-BR`) looks at that locale, then its
language, then the English base, for each field on its own; an empty translation falls back too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from funmagic_kit.errors import Conflict, Malformed, NotFound

__all__ = [
    "MAX_BONUS_FACTOR",
    "MAX_DESCRIPTION_LENGTH",
    "PACKAGE_LOCALES",
    "CreditPackage",
    "InvalidPackage",
    "PackageEntry",
    "PackageUnavailable",
    "Purchase",
    "UnknownPackage",
    "UnknownPaidPackage",
    "bonus_must_be_within_bound",
    "check_package",
    "locale_chain",
    "localized",
    "package_must_be_for_sale",
]

# The web app's languages other than English (English is the base columns).
PACKAGE_LOCALES: tuple[str, ...] = ("de", "es", "fr", "ja", "ko", "pt", "vi", "zh")
MAX_NAME_LENGTH, MAX_DESCRIPTION_LENGTH = 100, 500
# A bonus of at most ten times the package's credits: generous for any promotion, and it stops a typo (an
# extra zero or three) from giving away a fortune.
MAX_BONUS_FACTOR = 10
_LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")


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
    description: str | None = None
    bonus_credits: int = 0
    is_popular: bool = False
    # {"<locale>": {"name": text, "description": text}}; the locales of PACKAGE_LOCALES only.
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
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
    bonus_credits: int = 0  # credited on top of `credits`, as the package had it at checkout


class UnknownPackage(NotFound, code="unknown_package"):
    """No credit package with this id (or it was deleted)."""


class UnknownPaidPackage(Malformed, code="unknown_package"):
    """A paid session names no package we know: the report itself is wrong, not a missing resource."""


class PackageUnavailable(Conflict, code="package_unavailable"):
    """A checkout for a package that exists but is not for sale now."""


class InvalidPackage(Malformed, code="invalid_package"):
    """A package an admin sent that breaks a rule; `field` names the field at fault as the API spells it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


def bonus_must_be_within_bound(credits: int, bonus_credits: int) -> None:
    if bonus_credits < 0 or bonus_credits > credits * MAX_BONUS_FACTOR:
        raise InvalidPackage(
            "bonus_credits", f"a bonus is 0 to {MAX_BONUS_FACTOR} times the package's credits ({credits})"
        )


def check_package(entry: PackageEntry) -> PackageEntry:
    """The entry as stored: the rules checked, texts trimmed, empty translations dropped."""
    bonus_must_be_within_bound(entry.credits, entry.bonus_credits)
    description = (entry.description or "").strip() or None
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidPackage("description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
    translations: dict[str, dict[str, str]] = {}
    for locale, texts in entry.translations.items():
        where = f"translations.{locale}"
        if locale not in PACKAGE_LOCALES:
            raise InvalidPackage(where, f"translations are for {', '.join(PACKAGE_LOCALES)}")
        kept: dict[str, str] = {}
        for key, text in texts.items():
            limit = {"name": MAX_NAME_LENGTH, "description": MAX_DESCRIPTION_LENGTH}.get(key)
            if limit is None:
                raise InvalidPackage(f"{where}.{key}", "a translation has a name and a description")
            text = (text or "").strip()
            if len(text) > limit:
                raise InvalidPackage(f"{where}.{key}", f"at most {limit} characters")
            if text:
                kept[key] = text
        if kept:
            translations[locale] = kept
    return replace(entry, description=description, translations=translations)


def locale_chain(locale: str | None) -> tuple[str, ...]:
    """Where to look for a locale's texts, most specific first: `pt-BR` → (`pt-BR`, `pt`). The English base
    comes after the chain; no locale means the base alone (the catalog's rule)."""
    if not locale:
        return ()
    if not _LOCALE.match(locale):
        raise InvalidPackage("locale", "a locale such as 'de' or 'de-AT'")
    language = locale.split("-", 1)[0]
    return (locale, language) if language != locale else (locale,)


def localized(package: CreditPackage, locale: str | None) -> CreditPackage:
    """The package with its name and description in `locale`, each falling back on its own to English."""
    chain = locale_chain(locale)

    def text(key: str) -> str | None:
        for each in chain:
            value = package.translations.get(each, {}).get(key)
            if isinstance(value, str) and value.strip():
                return value
        return None

    return replace(
        package,
        name=text("name") or package.name,
        description=text("description") or package.description,
    )


def package_must_be_for_sale(package: CreditPackage | None) -> CreditPackage:
    if package is None:
        raise UnknownPackage("no such credit package")
    if not package.is_active:
        raise PackageUnavailable("this credit package is not for sale")
    return package
