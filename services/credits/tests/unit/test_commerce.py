"""The shop's rules: what a package may hold, its texts per locale, and a purchase with a bonus."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from funmagic_credits.adapters.postgres import transaction_row
from funmagic_credits.application.ledger import to_integration_event
from funmagic_credits.application.ports import StoredEvent
from funmagic_credits.domain.commerce import (
    CreditPackage,
    InvalidPackage,
    PackageEntry,
    check_package,
    localized,
)
from funmagic_credits.domain.ledger import (
    Account,
    InvalidAmount,
    Purchased,
    RecordPurchase,
    check_invariants,
    decide,
    fold,
)

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def entry(**changes: object) -> PackageEntry:
    base = PackageEntry("Starter", 100, 499, "USD", None, True, 1)
    return replace(base, **changes)  # type: ignore[arg-type]


def package(**changes: object) -> CreditPackage:
    return CreditPackage(**{**entry(**changes).__dict__, "id": "p-1", "created_at": NOW, "updated_at": NOW})


# --- what a package may hold ----------------------------------------------------------------------------


def test_a_bonus_of_up_to_ten_times_the_credits_is_accepted() -> None:
    assert check_package(entry(bonus_credits=0)).bonus_credits == 0
    assert check_package(entry(bonus_credits=1000)).bonus_credits == 1000


@pytest.mark.parametrize("bonus", [-1, 1001])
def test_a_negative_or_outsized_bonus_is_refused_naming_the_field(bonus: int) -> None:
    with pytest.raises(InvalidPackage) as refused:
        check_package(entry(bonus_credits=bonus))
    assert refused.value.field == "bonus_credits"


def test_a_description_is_trimmed_and_at_most_500_characters() -> None:
    assert check_package(entry(description="  Good start  ")).description == "Good start"
    assert check_package(entry(description="   ")).description is None
    assert check_package(entry(description="x" * 500)).description == "x" * 500
    with pytest.raises(InvalidPackage) as refused:
        check_package(entry(description="x" * 501))
    assert refused.value.field == "description"


def test_translations_are_for_the_web_apps_locales_only() -> None:
    with pytest.raises(InvalidPackage) as refused:
        check_package(entry(translations={"xx": {"name": "?"}}))
    assert refused.value.field == "translations.xx"
    with pytest.raises(InvalidPackage) as refused:
        check_package(entry(translations={"en": {"name": "Starter"}}))  # English is the base texts
    assert refused.value.field == "translations.en"


def test_a_translation_has_only_a_name_and_a_description_within_their_lengths() -> None:
    with pytest.raises(InvalidPackage) as refused:
        check_package(entry(translations={"ja": {"title": "?"}}))
    assert refused.value.field == "translations.ja.title"
    with pytest.raises(InvalidPackage) as refused:
        check_package(entry(translations={"ja": {"description": "あ" * 501}}))
    assert refused.value.field == "translations.ja.description"


def test_empty_translations_are_dropped() -> None:
    checked = check_package(
        entry(translations={"ja": {"name": " スターター ", "description": ""}, "de": {"name": " "}})
    )
    assert checked.translations == {"ja": {"name": "スターター"}}


# --- texts per locale -----------------------------------------------------------------------------------


def test_a_package_reads_in_the_locale_with_english_for_what_is_not_translated() -> None:
    pack = package(description="For a start", translations={"ja": {"name": "スターター"}})
    ja = localized(pack, "ja")
    assert (ja.name, ja.description) == ("スターター", "For a start")
    assert (localized(pack, "de").name, localized(pack, None).name) == ("Starter", "Starter")


def test_a_regional_locale_falls_back_to_its_language() -> None:
    pack = package(translations={"pt": {"name": "Inicial", "description": "Para começar"}})
    assert localized(pack, "pt-BR").name == "Inicial"
    assert localized(pack, "pt-BR").description == "Para começar"


def test_an_unreadable_locale_is_refused() -> None:
    with pytest.raises(InvalidPackage):
        localized(package(), "japanese")


# --- a purchase with a bonus ----------------------------------------------------------------------------


def test_a_purchase_credits_the_package_and_its_bonus_in_one_event() -> None:
    account = Account("u-1", version=1, balance=50, lifetime_earned=50)
    events = decide(RecordPurchase("u-1", 100, "p-1", "cs_1", 499, "USD", bonus=20), account)
    assert events == [Purchased(120, "p-1", "cs_1", 499, "USD", 170, bonus_credits=20)]
    after = fold(account, events)
    check_invariants(after)
    assert (after.balance, after.lifetime_earned) == (170, 170)


def test_a_purchase_without_a_bonus_is_as_before() -> None:
    events = decide(RecordPurchase("u-1", 100, "p-1", "cs_1", 499, "USD"), Account("u-1"))
    assert events == [Purchased(100, "p-1", "cs_1", 499, "USD", 100)]


def test_a_negative_bonus_is_refused() -> None:
    with pytest.raises(InvalidAmount):
        decide(RecordPurchase("u-1", 100, "p-1", "cs_1", 499, "USD", bonus=-5), Account("u-1"))


def test_the_ledger_entry_and_the_published_event_say_which_part_is_the_bonus() -> None:
    event = Purchased(120, "p-1", "cs_1", 499, "USD", 170, bonus_credits=20)
    row = transaction_row(StoredEvent("e-1", 7, "u-1", 2, event, NOW))
    assert row is not None
    assert (row[2], row[3], row[6]) == ("purchase", 120, "Purchase of 100 credits + 20 bonus")
    published = to_integration_event("u-1", event)
    assert (published.amount, published.bonus_credits) == (120, 20)  # type: ignore[attr-defined]


def test_a_purchase_recorded_before_bonuses_reads_as_no_bonus() -> None:
    old = Purchased(**{"amount": 100, "package_id": "p", "payment_reference": "cs", "price_minor": 1,
                       "currency": "USD", "balance_after": 100})  # fmt: skip
    assert old.bonus_credits == 0
    row = transaction_row(StoredEvent("e-1", 7, "u-1", 2, old, NOW))
    assert row is not None
    assert row[6] == "Purchase of 100 credits"
