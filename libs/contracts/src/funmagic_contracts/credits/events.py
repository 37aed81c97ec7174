"""Integration events of the credits service: the ledger. Topic ``credits.events``; subject = ``user_id``.

``balance_after`` is the user's available (spendable) credits after the event and ``reserved_after`` the
credits held for running tasks after it; a reservation moves credits from balance to reserved. Neither is
ever negative.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from funmagic_contracts.base import Credits, Id, IntegrationEvent, SignedCredits
from funmagic_contracts.topics import CREDITS_EVENTS

__all__ = [
    "CreditsAdjusted",
    "CreditsGranted",
    "CreditsPurchased",
    "CreditsReleased",
    "CreditsReservationRejected",
    "CreditsReserved",
    "CreditsSpent",
    "GrantReason",
    "RejectionReason",
]

GrantReason = Literal["signup_bonus", "promotion"]
RejectionReason = Literal["insufficient_credits"]


class _CreditsEvent(IntegrationEvent):
    TOPIC: ClassVar[str] = CREDITS_EVENTS.name
    SUBJECT_FIELD: ClassVar[str] = "user_id"
    EVENT_VERSION: ClassVar[int] = 1


class CreditsGranted(_CreditsEvent):
    """Free credits were added to the balance."""

    EVENT_TYPE: ClassVar[str] = "CreditsGranted"

    user_id: Id
    amount: Credits = Field(gt=0)
    reason: GrantReason
    reference_id: Id = Field(
        description="What the grant is for (e.g. the UserRegistered event id); one grant each."
    )
    balance_after: Credits


class CreditsPurchased(_CreditsEvent):
    """The user paid for a credit package and the credits were added to the balance."""

    EVENT_TYPE: ClassVar[str] = "CreditsPurchased"

    user_id: Id
    amount: Credits = Field(gt=0, description="Credits added, bonus included.")
    package_id: Id
    payment_reference: Id = Field(
        description="The payment provider's reference (Stripe checkout session id)."
    )
    price_minor: int = Field(ge=0, description="Price paid in the currency's minor unit (cents).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD.")
    balance_after: Credits
    bonus_credits: Credits = Field(
        0, description="Of `amount`, the package's bonus credits (0: none, or an event from before bonuses)."
    )


class CreditsReserved(_CreditsEvent):
    """Credits were held for a task (``reservation_id`` = task id)."""

    EVENT_TYPE: ClassVar[str] = "CreditsReserved"

    user_id: Id
    reservation_id: Id
    amount: Credits
    balance_after: Credits
    reserved_after: Credits


class CreditsReservationRejected(_CreditsEvent):
    """Credits could not be held for a task; the task fails."""

    EVENT_TYPE: ClassVar[str] = "CreditsReservationRejected"

    user_id: Id
    reservation_id: Id
    amount: Credits
    reason: RejectionReason


class CreditsSpent(_CreditsEvent):
    """Part or all of a reservation was charged."""

    EVENT_TYPE: ClassVar[str] = "CreditsSpent"

    user_id: Id
    reservation_id: Id
    amount: Credits
    balance_after: Credits
    reserved_after: Credits


class CreditsReleased(_CreditsEvent):
    """The uncharged rest of a reservation went back to the balance."""

    EVENT_TYPE: ClassVar[str] = "CreditsReleased"

    user_id: Id
    reservation_id: Id
    amount: Credits
    balance_after: Credits
    reserved_after: Credits


class CreditsAdjusted(_CreditsEvent):
    """An admin added (positive ``amount``) or removed (negative) credits by hand."""

    EVENT_TYPE: ClassVar[str] = "CreditsAdjusted"

    user_id: Id
    amount: SignedCredits
    admin_id: Id
    reason: str
    balance_after: Credits
