import pytest
from pydantic import ValidationError

from funmagic_contracts.credits import events
from funmagic_contracts.credits.events import (
    CreditsAdjusted,
    CreditsGranted,
    CreditsPurchased,
    CreditsReserved,
)


def test_credit_events_are_published_on_credits_events_keyed_by_user():
    models = [getattr(events, n) for n in events.__all__ if hasattr(getattr(events, n), "EVENT_TYPE")]

    assert len(models) == 7
    assert {(m.TOPIC, m.SUBJECT_FIELD) for m in models} == {("credits.events", "user_id")}


def test_balances_never_go_below_zero():
    with pytest.raises(ValidationError, match="balance_after"):
        CreditsReserved(user_id="u", reservation_id="t", amount=5, balance_after=-1, reserved_after=5)


def test_money_is_whole_credits():
    with pytest.raises(ValidationError, match="amount"):
        CreditsReserved(user_id="u", reservation_id="t", amount=1.5, balance_after=0, reserved_after=0)


def test_a_grant_adds_a_positive_amount_for_a_known_reason():
    with pytest.raises(ValidationError, match="amount"):
        CreditsGranted(user_id="u", amount=0, reason="signup_bonus", reference_id="r", balance_after=0)
    with pytest.raises(ValidationError, match="reason"):
        CreditsGranted(user_id="u", amount=5, reason="birthday", reference_id="r", balance_after=5)


def test_an_admin_adjustment_may_remove_credits():
    assert CreditsAdjusted(user_id="u", amount=-20, admin_id="a", reason="fix", balance_after=0).amount == -20


def test_a_purchase_names_an_iso_currency():
    fields = dict(
        user_id="u", amount=100, package_id="p", payment_reference="cs_1", price_minor=999, balance_after=100
    )
    assert CreditsPurchased(**fields, currency="EUR").currency == "EUR"

    with pytest.raises(ValidationError, match="currency"):
        CreditsPurchased(**fields, currency="usd")
