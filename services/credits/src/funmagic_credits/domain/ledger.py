"""A user's credit account as an event-sourced aggregate: `decide(state, command) -> events`, `evolve`.

Pure: no I/O. The rules are named (`reservation_must_not_exceed_balance`…) and every state the functions
produce satisfies `check_invariants`. Money is integer credits.

- `balance` is what the user can spend; `reserved` is held for running tasks (one open reservation per
  task); a reservation moves credits from balance to reserved, settling it spends the charged part and
  releases the rest back to the balance.
- `balance + reserved == lifetime_earned - lifetime_spent + adjustments` at all times.
- The holds: a state folded from all of a stream's events knows every open one (`reserved` is their sum,
  `check_holds_complete`); a state loaded for one decision knows only the holds that decision concerns, so
  the work of a decision does not grow with a user's open holds (`check_invariants` holds for both).
- A reservation's task ends once: after its settlement, a reservation asked for it again (a dead-lettered
  `TaskRequested` replayed late, after the task timed out or was cancelled) holds nothing
  (`reservation_must_not_outlive_its_task`); a task that ends with nothing held records `ReservationClosed`,
  so its settlement is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import singledispatch
from typing import Literal

from funmagic_kit.errors import Conflict, IdempotencyKeyReused, Refused

__all__ = [
    "Account",
    "AdjustCredits",
    "Adjusted",
    "GrantCredits",
    "Granted",
    "InvalidAmount",
    "InvariantViolated",
    "LedgerEvent",
    "LedgerRuleBroken",
    "Purchased",
    "RecordPurchase",
    "Released",
    "ReservationClosed",
    "ReservationRejected",
    "ReserveCredits",
    "Reserved",
    "SettleReservation",
    "Spent",
    "WouldGoNegative",
    "a_repeat_must_ask_for_the_same_adjustment",
    "causes_of",
    "check_holds_complete",
    "check_invariants",
    "decide",
    "evolve",
    "fold",
    "idempotency_key",
    "settled_among",
    "settlement_key",
]


class LedgerRuleBroken(Refused, code="ledger_rule_broken"):
    """A command the ledger refuses outright (nothing is recorded)."""


class InvalidAmount(LedgerRuleBroken, code="invalid_amount"):
    """An amount that is not a positive whole number of credits (or a charge above the hold)."""


class WouldGoNegative(LedgerRuleBroken, Conflict, code="would_go_negative"):
    """The command would take the balance (or a hold) below zero."""


# --- state ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    user_id: str
    version: int = 0
    balance: int = 0
    reserved: int = 0
    lifetime_earned: int = 0
    lifetime_spent: int = 0
    adjustments: int = 0
    # reservation id (the task id) -> credits held; settled ones are removed. Every open one when folded
    # from the stream's events; when loaded for a decision, only the ones that decision concerns.
    open_reservations: dict[str, int] = field(default_factory=dict)
    # reservation ids whose task has ended (its settlement recorded). Every one when folded; when loaded for
    # a decision, only the ones that decision concerns (a reservation asked again after its settlement).
    ended_reservations: frozenset[str] = frozenset()


# --- commands ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantCredits:
    user_id: str
    amount: int
    reason: Literal["signup_bonus", "promotion"]
    reference_id: str


@dataclass(frozen=True)
class RecordPurchase:
    user_id: str
    amount: int  # the package's credits
    package_id: str
    payment_reference: str
    price_minor: int
    currency: str
    bonus: int = 0  # the package's bonus credits, credited with `amount` in the same event


@dataclass(frozen=True)
class ReserveCredits:
    user_id: str
    reservation_id: str
    amount: int


@dataclass(frozen=True)
class SettleReservation:
    user_id: str
    reservation_id: str
    charged: int
    outcome: Literal["completed", "failed", "cancelled"]


@dataclass(frozen=True)
class AdjustCredits:
    user_id: str
    amount: int
    admin_id: str
    reason: str
    reference_id: str


Command = GrantCredits | RecordPurchase | ReserveCredits | SettleReservation | AdjustCredits


def idempotency_key(command: Command) -> str:
    """What makes a command the same command again: its cause (a task, a payment, a grant reference)."""
    match command:
        case GrantCredits():
            return f"grant:{command.reason}:{command.reference_id}"
        case RecordPurchase():
            return f"purchase:{command.payment_reference}"
        case ReserveCredits():
            return f"reserve:{command.reservation_id}"
        case SettleReservation():
            return settlement_key(command.reservation_id)
        case AdjustCredits():
            return f"adjust:{command.reference_id}"
    raise TypeError(f"not a ledger command: {command!r}")


def causes_of(command: Command) -> tuple[str, ...]:
    """The causes whose being applied a decision on `command` needs to know: its own (a repeat changes
    nothing) and, for a reservation, its task's settlement (`reservation_must_not_outlive_its_task`)."""
    if isinstance(command, ReserveCredits):
        return idempotency_key(command), settlement_key(command.reservation_id)
    return (idempotency_key(command),)


_SETTLEMENT = "settle:"


def settlement_key(reservation_id: str) -> str:
    """The idempotency key of a reservation's settlement (its task's end)."""
    return _SETTLEMENT + reservation_id


def settled_among(keys: Iterable[str]) -> frozenset[str]:
    """The reservations whose settlement is among these idempotency keys."""
    return frozenset(key.removeprefix(_SETTLEMENT) for key in keys if key.startswith(_SETTLEMENT))


# --- events --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Granted:
    amount: int
    reason: str
    reference_id: str
    balance_after: int


@dataclass(frozen=True)
class Purchased:
    amount: int
    package_id: str
    payment_reference: str
    price_minor: int
    currency: str
    balance_after: int
    # Of `amount` (everything credited), the package's bonus; 0 in events recorded before bonuses existed.
    bonus_credits: int = 0


@dataclass(frozen=True)
class Reserved:
    reservation_id: str
    amount: int
    balance_after: int
    reserved_after: int


@dataclass(frozen=True)
class ReservationRejected:
    reservation_id: str
    amount: int
    reason: str


@dataclass(frozen=True)
class Spent:
    reservation_id: str
    amount: int
    balance_after: int
    reserved_after: int


@dataclass(frozen=True)
class Released:
    reservation_id: str
    amount: int
    balance_after: int
    reserved_after: int


@dataclass(frozen=True)
class ReservationClosed:
    """The reservation's task ended with nothing held for it (refused, or not asked yet): nothing to spend or
    release, but the settlement is recorded, so a reservation asked later holds nothing."""

    reservation_id: str


@dataclass(frozen=True)
class Adjusted:
    amount: int
    admin_id: str
    reason: str
    balance_after: int


LedgerEvent = (
    Granted | Purchased | Reserved | ReservationRejected | Spent | Released | ReservationClosed | Adjusted
)


# --- rules ---------------------------------------------------------------------------------------------


def amount_must_be_positive(amount: int) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidAmount(f"amounts are positive whole credits, not {amount!r}")


def bonus_must_not_be_negative(bonus: int) -> None:
    if not _whole(bonus) or bonus < 0:
        raise InvalidAmount(f"a purchase's bonus is a whole number of credits, 0 or more, not {bonus!r}")


def _whole(amount: object) -> bool:
    return isinstance(amount, int) and not isinstance(amount, bool)


def reservation_must_not_exceed_balance(account: Account, amount: int) -> bool:
    return amount <= account.balance


def reservation_must_not_outlive_its_task(account: Account, reservation_id: str) -> bool:
    """False once the task's settlement is recorded: its credits would stay held with no end to come."""
    return reservation_id not in account.ended_reservations


def adjustment_must_not_go_below_zero(account: Account, amount: int) -> None:
    if account.balance + amount < 0:
        raise WouldGoNegative(
            f"an adjustment of {amount} would leave {account.balance + amount} credits; the balance is "
            f"{account.balance} (credits held for running tasks cannot be taken)"
        )


def a_repeat_must_ask_for_the_same_adjustment(command: AdjustCredits, earlier: Adjusted) -> None:
    """A command whose cause was applied before decides nothing; for an adjustment that is right only when
    it asks for what the first did. The same key with another amount or reason is a client's mistake, and
    answering it as applied would tell the admin a change was made that was not."""
    asked = (command.amount, command.reason, command.admin_id)
    if asked != (earlier.amount, earlier.reason, earlier.admin_id):
        raise IdempotencyKeyReused()


# --- decide --------------------------------------------------------------------------------------------


@singledispatch
def decide(command: object, account: Account) -> list[LedgerEvent]:
    raise TypeError(f"not a ledger command: {command!r}")


@decide.register
def _grant(command: GrantCredits, account: Account) -> list[LedgerEvent]:
    amount_must_be_positive(command.amount)
    return [Granted(command.amount, command.reason, command.reference_id, account.balance + command.amount)]


@decide.register
def _purchase(command: RecordPurchase, account: Account) -> list[LedgerEvent]:
    amount_must_be_positive(command.amount)
    bonus_must_not_be_negative(command.bonus)
    # One event for the credits and the bonus: a purchase is credited once (its payment is the idempotency
    # key), so the bonus can never be granted without the purchase, or twice.
    credited = command.amount + command.bonus
    return [
        Purchased(
            credited,
            command.package_id,
            command.payment_reference,
            command.price_minor,
            command.currency,
            account.balance + credited,
            bonus_credits=command.bonus,
        )
    ]


@decide.register
def _reserve(command: ReserveCredits, account: Account) -> list[LedgerEvent]:
    if not _whole(command.amount) or command.amount < 0:
        raise InvalidAmount(f"a reservation cannot be {command.amount!r}")
    if command.reservation_id in account.open_reservations:
        return []  # already held: the same task asked twice
    if not reservation_must_not_outlive_its_task(account, command.reservation_id):
        return []  # the task has ended: nobody waits for an answer, and nothing may be held for it
    if not reservation_must_not_exceed_balance(account, command.amount):
        return [ReservationRejected(command.reservation_id, command.amount, "insufficient_credits")]
    return [
        Reserved(
            command.reservation_id,
            command.amount,
            account.balance - command.amount,
            account.reserved + command.amount,
        )
    ]


@decide.register
def _settle(command: SettleReservation, account: Account) -> list[LedgerEvent]:
    held = account.open_reservations.get(command.reservation_id)
    if held is None:
        if command.reservation_id in account.ended_reservations:
            return []  # settled already
        return [ReservationClosed(command.reservation_id)]  # refused, or not asked yet: nothing is held
    if not _whole(command.charged) or command.charged < 0:
        raise InvalidAmount(f"a charge cannot be {command.charged!r}")
    # Never more than was held: a task cannot cost more than its price.
    spent = min(command.charged, held)
    released = held - spent
    events: list[LedgerEvent] = []
    balance, reserved = account.balance, account.reserved
    if spent:
        reserved -= spent
        events.append(Spent(command.reservation_id, spent, balance, reserved))
    if released or not spent:
        reserved -= released
        balance += released
        events.append(Released(command.reservation_id, released, balance, reserved))
    return events


@decide.register
def _adjust(command: AdjustCredits, account: Account) -> list[LedgerEvent]:
    if command.amount == 0 or isinstance(command.amount, bool) or not isinstance(command.amount, int):
        raise InvalidAmount("an adjustment is a non-zero whole number of credits")
    if not command.reason.strip():
        raise InvalidAmount("an adjustment needs a reason")
    adjustment_must_not_go_below_zero(account, command.amount)
    return [Adjusted(command.amount, command.admin_id, command.reason, account.balance + command.amount)]


# --- evolve --------------------------------------------------------------------------------------------


@singledispatch
def evolve(event: object, account: Account) -> Account:
    raise TypeError(f"not a ledger event: {event!r}")


@evolve.register
def _granted(event: Granted, account: Account) -> Account:
    return _earned(account, event.amount)


@evolve.register
def _purchased(event: Purchased, account: Account) -> Account:
    return _earned(account, event.amount)


def _earned(account: Account, amount: int) -> Account:
    return _next(account, balance=account.balance + amount, lifetime_earned=account.lifetime_earned + amount)


@evolve.register
def _reserved(event: Reserved, account: Account) -> Account:
    return _next(
        account,
        balance=account.balance - event.amount,
        reserved=account.reserved + event.amount,
        open_reservations={**account.open_reservations, event.reservation_id: event.amount},
    )


@evolve.register
def _rejected(event: ReservationRejected, account: Account) -> Account:
    return _next(account)


@evolve.register
def _spent(event: Spent, account: Account) -> Account:
    remaining = account.open_reservations[event.reservation_id] - event.amount
    return _next(
        account,
        reserved=account.reserved - event.amount,
        lifetime_spent=account.lifetime_spent + event.amount,
        open_reservations=_shrink(account.open_reservations, event.reservation_id, remaining),
        ended_reservations=_ended(account.ended_reservations, event.reservation_id, remaining),
    )


@evolve.register
def _released(event: Released, account: Account) -> Account:
    remaining = account.open_reservations[event.reservation_id] - event.amount
    return _next(
        account,
        balance=account.balance + event.amount,
        reserved=account.reserved - event.amount,
        open_reservations=_shrink(account.open_reservations, event.reservation_id, remaining),
        ended_reservations=_ended(account.ended_reservations, event.reservation_id, remaining),
    )


@evolve.register
def _closed(event: ReservationClosed, account: Account) -> Account:
    return _next(account, ended_reservations=account.ended_reservations | {event.reservation_id})


@evolve.register
def _adjusted(event: Adjusted, account: Account) -> Account:
    return _next(
        account, balance=account.balance + event.amount, adjustments=account.adjustments + event.amount
    )


def _shrink(reservations: dict[str, int], reservation_id: str, remaining: int) -> dict[str, int]:
    # A settlement ends the reservation: what it did not spend was released in the same decision.
    rest = dict(reservations)
    if remaining <= 0:
        rest.pop(reservation_id, None)
    else:
        rest[reservation_id] = remaining
    return rest


def _ended(ended: frozenset[str], reservation_id: str, remaining: int) -> frozenset[str]:
    return ended | {reservation_id} if remaining <= 0 else ended


def _next(account: Account, **changes: object) -> Account:
    return replace(account, version=account.version + 1, **changes)  # type: ignore[arg-type]


def fold(account: Account, events: list[LedgerEvent]) -> Account:
    for event in events:
        account = evolve(event, account)
    return account


class InvariantViolated(AssertionError):
    """A state the ledger must never reach; raised even under `python -O` (not an `assert`)."""


def check_invariants(account: Account) -> None:
    """Raises InvariantViolated naming the broken invariant (of a full state and of a decision's view)."""
    expected = account.lifetime_earned - account.lifetime_spent + account.adjustments
    held = sum(account.open_reservations.values())
    broken = [
        (account.balance < 0, f"balance {account.balance} < 0"),
        (account.reserved < 0, f"reserved {account.reserved} < 0"),
        (any(amount < 0 for amount in account.open_reservations.values()), "an open reservation < 0"),
        (held > account.reserved, f"the open reservations hold {held} > reserved {account.reserved}"),
        (
            account.balance + account.reserved != expected,
            f"balance + reserved = {account.balance + account.reserved}, "
            f"earned - spent ± adjustments = {expected}",
        ),
    ]
    for is_broken, message in broken:
        if is_broken:
            raise InvariantViolated(message)


def check_holds_complete(account: Account) -> None:
    """For a state that knows every open hold (folded from all its events): they add up to `reserved`."""
    held = sum(account.open_reservations.values())
    if held != account.reserved:
        raise InvariantViolated(f"reserved {account.reserved} != the open reservations' {held}")
