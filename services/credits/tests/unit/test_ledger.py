"""The credit account aggregate, given/when/then: given past events, when a command is decided, then
these events (and the state they fold into)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from funmagic_credits.domain.ledger import (
    Account,
    AdjustCredits,
    Adjusted,
    GrantCredits,
    Granted,
    InvalidAmount,
    LedgerEvent,
    Purchased,
    RecordPurchase,
    Released,
    ReservationClosed,
    ReservationRejected,
    ReserveCredits,
    Reserved,
    SettleReservation,
    Spent,
    WouldGoNegative,
    a_repeat_must_ask_for_the_same_adjustment,
    check_holds_complete,
    check_invariants,
    decide,
    evolve,
    fold,
    idempotency_key,
)
from funmagic_kit.errors import IdempotencyKeyReused

USER = "user-1"


def given(*events: LedgerEvent) -> Account:
    account = fold(Account(user_id=USER), list(events))
    check_invariants(account)
    return account


def when(account: Account, command: object) -> tuple[list[LedgerEvent], Account]:
    """Decide, fold the decision into the account and check it still holds together."""
    events = decide(command, account)
    after = fold(account, events)
    check_invariants(after)
    return events, after


def granted(amount: int, reference: str = "start") -> Granted:
    return Granted(amount, "promotion", reference, amount)


def a_user_with(balance: int) -> Account:
    return given(granted(balance))


# --- earning --------------------------------------------------------------------------------------------


def test_a_grant_adds_to_the_balance_and_to_what_was_earned() -> None:
    events, after = when(a_user_with(10), GrantCredits(USER, 50, "signup_bonus", USER))

    assert events == [Granted(50, "signup_bonus", USER, 60)]
    assert (after.balance, after.lifetime_earned, after.version) == (60, 60, 2)


def test_a_purchase_adds_to_the_balance_and_to_what_was_earned() -> None:
    events, after = when(a_user_with(5), RecordPurchase(USER, 100, "pkg-1", "cs_1", 999, "USD"))

    assert events == [Purchased(100, "pkg-1", "cs_1", 999, "USD", 105)]
    assert (after.balance, after.lifetime_earned, after.reserved) == (105, 105, 0)


# --- reserving -------------------------------------------------------------------------------------------


def test_a_reservation_within_the_balance_moves_credits_from_balance_to_reserved() -> None:
    events, after = when(a_user_with(50), ReserveCredits(USER, "task-1", 30))

    assert events == [Reserved("task-1", 30, balance_after=20, reserved_after=30)]
    assert (after.balance, after.reserved, after.open_reservations) == (20, 30, {"task-1": 30})


def test_a_reservation_of_the_whole_balance_is_held() -> None:
    events, after = when(a_user_with(30), ReserveCredits(USER, "task-1", 30))

    assert events == [Reserved("task-1", 30, 0, 30)]
    assert after.balance == 0


def test_a_reservation_above_the_balance_is_rejected_with_an_event_and_changes_nothing_else() -> None:
    before = a_user_with(10)

    events, after = when(before, ReserveCredits(USER, "task-1", 11))

    assert events == [ReservationRejected("task-1", 11, "insufficient_credits")]
    assert replace(after, version=before.version) == before, "only the version moves"
    assert after.version == before.version + 1


def test_credits_already_held_cannot_be_reserved_again_by_another_task() -> None:
    account = given(granted(50), Reserved("task-1", 40, 10, 40))

    events, _ = when(account, ReserveCredits(USER, "task-2", 11))

    assert events == [ReservationRejected("task-2", 11, "insufficient_credits")]


def test_the_same_reservation_twice_decides_nothing() -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30))

    events, after = when(account, ReserveCredits(USER, "task-1", 30))

    assert events == []
    assert after == account


@pytest.mark.parametrize("amount", [-1, True, False, 1.5, 0.0, "5", None])
def test_a_reservation_that_is_not_a_whole_number_of_credits_is_refused(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        decide(ReserveCredits(USER, "task-1", amount), a_user_with(50))  # type: ignore[arg-type]


# --- settling --------------------------------------------------------------------------------------------


def test_a_completed_task_spends_what_it_charged() -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30))

    events, after = when(account, SettleReservation(USER, "task-1", 30, "completed"))

    assert events == [Spent("task-1", 30, balance_after=20, reserved_after=0)]
    assert (after.balance, after.reserved, after.lifetime_spent) == (20, 0, 30)
    assert after.open_reservations == {}


def test_a_partly_used_reservation_spends_the_charge_and_releases_the_rest() -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30))

    events, after = when(account, SettleReservation(USER, "task-1", 10, "failed"))

    assert events == [Spent("task-1", 10, 20, 20), Released("task-1", 20, 40, 0)]
    assert (after.balance, after.reserved, after.lifetime_spent) == (40, 0, 10)
    assert after.open_reservations == {}


def test_a_failed_task_that_charged_nothing_releases_everything() -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30))

    events, after = when(account, SettleReservation(USER, "task-1", 0, "failed"))

    assert events == [Released("task-1", 30, 50, 0)]
    assert (after.balance, after.reserved, after.lifetime_spent) == (50, 0, 0)


def test_a_charge_above_the_hold_never_takes_more_than_was_held() -> None:
    account = given(granted(100), Reserved("task-1", 30, 70, 30))

    events, after = when(account, SettleReservation(USER, "task-1", 1_000, "completed"))

    assert events == [Spent("task-1", 30, 70, 0)]
    assert (after.balance, after.lifetime_spent) == (70, 30), "the rest of the balance is untouched"


def test_settling_one_reservation_leaves_the_others_held() -> None:
    account = given(granted(100), Reserved("task-1", 30, 70, 30), Reserved("task-2", 20, 50, 50))

    events, after = when(account, SettleReservation(USER, "task-1", 5, "completed"))

    assert events == [Spent("task-1", 5, 50, 45), Released("task-1", 25, 75, 20)]
    assert after.open_reservations == {"task-2": 20}


def test_a_zero_price_reservation_settles_with_a_release_of_nothing() -> None:
    account = given(granted(10), Reserved("free-task", 0, 10, 0))
    assert account.open_reservations == {"free-task": 0}

    events, after = when(account, SettleReservation(USER, "free-task", 0, "completed"))

    assert events == [Released("free-task", 0, 10, 0)]
    assert after.open_reservations == {}


def test_a_zero_price_reservation_is_held_even_with_an_empty_balance() -> None:
    events, after = when(given(), ReserveCredits(USER, "free-task", 0))

    assert events == [Reserved("free-task", 0, 0, 0)]
    assert after.open_reservations == {"free-task": 0}


def test_settling_a_reservation_never_made_records_that_its_task_ended() -> None:
    account = a_user_with(50)

    events, after = when(account, SettleReservation(USER, "never-reserved", 10, "cancelled"))

    assert events == [ReservationClosed("never-reserved")]
    assert (after.balance, after.reserved) == (50, 0), "nothing held, nothing moved"


def test_settling_a_rejected_reservation_moves_nothing() -> None:
    account = given(ReservationRejected("task-1", 30, "insufficient_credits"))

    assert decide(SettleReservation(USER, "task-1", 30, "failed"), account) == [ReservationClosed("task-1")]


def test_a_reservation_asked_after_its_task_ended_holds_nothing() -> None:
    # A dead-lettered TaskRequested replayed after the task timed out: its credits would stay held forever.
    account = given(granted(50), ReservationClosed("task-1"))

    events, after = when(account, ReserveCredits(USER, "task-1", 30))

    assert events == []
    assert (after.balance, after.reserved) == (50, 0)


def test_a_reservation_asked_again_after_its_settlement_holds_nothing() -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30), Spent("task-1", 30, 20, 0))

    assert decide(ReserveCredits(USER, "task-1", 30), account) == []


def test_settling_a_closed_reservation_again_decides_nothing() -> None:
    account = given(ReservationClosed("task-1"))

    assert decide(SettleReservation(USER, "task-1", 0, "failed"), account) == []


def test_settling_twice_decides_nothing_the_second_time() -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30))
    _, settled = when(account, SettleReservation(USER, "task-1", 10, "completed"))

    events, after = when(settled, SettleReservation(USER, "task-1", 30, "completed"))

    assert events == []
    assert after == settled


@pytest.mark.parametrize("charged", [-1, True, 2.5, "5", None])
def test_a_charge_that_is_not_a_whole_number_of_credits_is_refused(charged: object) -> None:
    account = given(granted(50), Reserved("task-1", 30, 20, 30))

    with pytest.raises(InvalidAmount):
        decide(SettleReservation(USER, "task-1", charged, "completed"), account)  # type: ignore[arg-type]


# --- adjusting -------------------------------------------------------------------------------------------


def test_an_adjustment_moves_the_balance_either_way() -> None:
    up, after_up = when(a_user_with(10), AdjustCredits(USER, 5, "admin-1", "goodwill", "adj-1"))
    down, after_down = when(after_up, AdjustCredits(USER, -15, "admin-1", "chargeback", "adj-2"))

    assert up == [Adjusted(5, "admin-1", "goodwill", 15)]
    assert down == [Adjusted(-15, "admin-1", "chargeback", 0)]
    assert (after_down.balance, after_down.adjustments) == (0, -10)


def test_an_adjustment_below_zero_is_refused() -> None:
    with pytest.raises(WouldGoNegative):
        decide(AdjustCredits(USER, -11, "admin-1", "too much", "adj-1"), a_user_with(10))


def test_an_adjustment_cannot_take_credits_held_for_a_running_task() -> None:
    account = given(granted(50), Reserved("task-1", 40, 10, 40))

    with pytest.raises(WouldGoNegative):
        decide(AdjustCredits(USER, -11, "admin-1", "too much", "adj-1"), account)


def test_an_adjustment_needs_a_reason() -> None:
    with pytest.raises(InvalidAmount):
        decide(AdjustCredits(USER, 5, "admin-1", "   ", "adj-1"), a_user_with(10))


def test_a_repeated_adjustment_asking_for_the_same_change_passes() -> None:
    earlier = Adjusted(-4, "admin-1", "chargeback", 6)

    repeat = AdjustCredits(USER, -4, "admin-1", "chargeback", "adj-1")

    a_repeat_must_ask_for_the_same_adjustment(repeat, earlier)


@pytest.mark.parametrize(
    "repeat",
    [
        AdjustCredits(USER, -5, "admin-1", "chargeback", "adj-1"),
        AdjustCredits(USER, -4, "admin-1", "goodwill", "adj-1"),
        AdjustCredits(USER, -4, "admin-2", "chargeback", "adj-1"),
    ],
    ids=["another amount", "another reason", "another admin"],
)
def test_an_adjustment_key_used_for_another_change_is_refused(repeat: AdjustCredits) -> None:
    earlier = Adjusted(-4, "admin-1", "chargeback", 6)

    with pytest.raises(IdempotencyKeyReused) as refused:
        a_repeat_must_ask_for_the_same_adjustment(repeat, earlier)
    assert (refused.value.code, refused.value.field) == ("idempotency_key_reused", "Idempotency-Key")


@pytest.mark.parametrize("amount", [0, True, False, 1.5, "5"])
def test_an_adjustment_that_is_not_a_non_zero_whole_number_is_refused(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        decide(AdjustCredits(USER, amount, "admin-1", "why", "adj-1"), a_user_with(10))  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [0, -1, -100, True, False, 1.5, "5", None])
@pytest.mark.parametrize(
    "command",
    [
        lambda amount: GrantCredits(USER, amount, "promotion", "ref"),
        lambda amount: RecordPurchase(USER, amount, "pkg", "cs_1", 100, "USD"),
    ],
    ids=["grant", "purchase"],
)
def test_earning_anything_but_a_positive_whole_number_is_refused(command, amount: object) -> None:
    with pytest.raises(InvalidAmount):
        decide(command(amount), a_user_with(10))


# --- idempotency keys ------------------------------------------------------------------------------------


def test_the_idempotency_key_is_the_cause_of_each_command() -> None:
    assert idempotency_key(GrantCredits(USER, 50, "signup_bonus", USER)) == f"grant:signup_bonus:{USER}"
    assert idempotency_key(GrantCredits(USER, 50, "promotion", "promo-7")) == "grant:promotion:promo-7"
    assert idempotency_key(RecordPurchase(USER, 1, "pkg", "cs_9", 1, "USD")) == "purchase:cs_9"
    assert idempotency_key(ReserveCredits(USER, "task-1", 3)) == "reserve:task-1"
    assert idempotency_key(SettleReservation(USER, "task-1", 3, "completed")) == "settle:task-1"
    assert idempotency_key(AdjustCredits(USER, 3, "admin-1", "why", "adj-1")) == "adjust:adj-1"


def test_the_idempotency_key_ignores_what_is_not_the_cause() -> None:
    assert idempotency_key(ReserveCredits(USER, "task-1", 3)) == idempotency_key(
        ReserveCredits(USER, "task-1", 99)
    )
    assert idempotency_key(SettleReservation(USER, "task-1", 0, "failed")) == idempotency_key(
        SettleReservation(USER, "task-1", 30, "completed")
    )
    assert idempotency_key(ReserveCredits(USER, "task-1", 3)) != idempotency_key(
        SettleReservation(USER, "task-1", 3, "completed")
    ), "reserving and settling one task are different causes"
    assert idempotency_key(GrantCredits(USER, 5, "signup_bonus", "x")) != idempotency_key(
        GrantCredits(USER, 5, "promotion", "x")
    )


def test_an_unknown_command_has_no_idempotency_key_and_no_decision() -> None:
    with pytest.raises(TypeError):
        idempotency_key(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        decide(object(), Account(USER))
    with pytest.raises(TypeError):
        evolve(object(), Account(USER))


# --- invariants ------------------------------------------------------------------------------------------


def test_every_event_moves_the_version_by_one() -> None:
    account = given(
        granted(50),
        Reserved("task-1", 30, 20, 30),
        ReservationRejected("task-2", 99, "insufficient_credits"),
        Spent("task-1", 10, 20, 20),
        Released("task-1", 20, 40, 0),
        Adjusted(-5, "admin-1", "why", 35),
    )

    assert account.version == 6


@pytest.mark.parametrize(
    ("broken", "names"),
    [
        (Account(USER, balance=-1, lifetime_earned=0, adjustments=-1), "balance"),
        (Account(USER, reserved=-1, adjustments=-1), "reserved"),
        (Account(USER, balance=10, lifetime_earned=9), "earned - spent"),
        (
            Account(USER, balance=0, reserved=5, lifetime_earned=5, open_reservations={"t": 4, "u": 2}),
            "open reservations hold 6 > reserved 5",
        ),
        (
            Account(USER, balance=0, reserved=5, lifetime_earned=5, open_reservations={"t": 6, "u": -1}),
            "an open reservation < 0",
        ),
    ],
)
def test_check_invariants_catches_a_broken_state(broken: Account, names: str) -> None:
    with pytest.raises(AssertionError, match=names):
        check_invariants(broken)


def test_a_decisions_view_knows_only_its_holds_so_they_may_add_up_to_less_than_reserved() -> None:
    view = Account(USER, balance=0, reserved=5, lifetime_earned=5, open_reservations={"t": 4})

    check_invariants(view)
    with pytest.raises(AssertionError, match="reserved 5 != the open reservations' 4"):
        check_holds_complete(view)


def test_a_state_folded_from_all_its_events_knows_every_hold() -> None:
    account = fold(
        Account(USER),
        [
            Granted(50, "signup_bonus", USER, 50),
            Reserved("task-1", 30, 20, 30),
            Reserved("task-2", 5, 15, 35),
        ],
    )

    check_holds_complete(account)
    assert account.open_reservations == {"task-1": 30, "task-2": 5}


def test_check_invariants_accepts_a_consistent_state() -> None:
    check_invariants(
        Account(
            USER,
            version=4,
            balance=12,
            reserved=8,
            lifetime_earned=30,
            lifetime_spent=5,
            adjustments=-5,
            open_reservations={"a": 3, "b": 5},
        )
    )
