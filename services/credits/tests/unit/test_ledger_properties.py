"""Properties of the ledger over random command sequences: the invariants always hold, every amount an
event carries is a non-negative whole number (an adjustment's may be negative), and folding the events
from an empty account reproduces the live state exactly."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from funmagic_credits.domain.ledger import (
    Account,
    AdjustCredits,
    Adjusted,
    GrantCredits,
    Granted,
    LedgerEvent,
    LedgerRuleBroken,
    Purchased,
    RecordPurchase,
    Released,
    ReservationClosed,
    ReservationRejected,
    ReserveCredits,
    Reserved,
    SettleReservation,
    Spent,
    check_holds_complete,
    check_invariants,
    decide,
    fold,
)

USERS = ("alice", "bob", "carol")
RESERVATIONS = tuple(f"task-{i}" for i in range(6))

users = st.sampled_from(USERS)
reservation_ids = st.sampled_from(RESERVATIONS)
references = st.sampled_from(("ref-1", "ref-2", "ref-3"))
# Mostly sensible amounts, sometimes zero, negative or huge, so refusals are exercised too.
amounts = st.one_of(st.integers(min_value=1, max_value=60), st.integers(min_value=-20, max_value=0))
charges = st.integers(min_value=0, max_value=120)

commands = st.one_of(
    st.builds(GrantCredits, users, amounts, st.sampled_from(("signup_bonus", "promotion")), references),
    st.builds(RecordPurchase, users, amounts, st.just("pkg"), references, st.just(500), st.just("USD")),
    st.builds(ReserveCredits, users, reservation_ids, st.integers(min_value=0, max_value=80)),
    st.builds(
        SettleReservation,
        users,
        reservation_ids,
        charges,
        st.sampled_from(("completed", "failed", "cancelled")),
    ),
    st.builds(
        AdjustCredits,
        users,
        st.integers(min_value=-80, max_value=40),
        st.just("admin-1"),
        st.sampled_from(("goodwill", "chargeback", " ")),
        references,
    ),
)


def assert_amounts_are_whole_and_non_negative(event: LedgerEvent) -> None:
    def whole(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if isinstance(event, ReservationClosed):  # moves no credits: it has no amount
        return
    assert whole(event.amount), event
    match event:
        case Adjusted():
            assert event.amount != 0, event
        case Granted() | Purchased():
            assert event.amount > 0, event
        case Reserved() | ReservationRejected() | Spent() | Released():
            assert event.amount >= 0, event
        case _:
            raise AssertionError(f"unexpected event {event!r}")
    for name in ("balance_after", "reserved_after"):
        if hasattr(event, name):
            value = getattr(event, name)
            assert whole(value), f"{name} of {event!r}"
            assert value >= 0, f"{name} of {event!r}"


def apply(accounts: dict[str, Account], history: dict[str, list[LedgerEvent]], command) -> list[LedgerEvent]:
    """Decide and fold one command; a refused command changes nothing."""
    before = accounts[command.user_id]
    try:
        events = decide(command, before)
    except LedgerRuleBroken:
        return []
    after = fold(before, events)
    check_invariants(after)
    assert after.version == before.version + len(events)
    for event in events:
        assert_amounts_are_whole_and_non_negative(event)
    accounts[command.user_id] = after
    history[command.user_id] += events
    return events


def assert_balance_after_matches_the_state(before: Account, events: list[LedgerEvent]) -> None:
    """`balance_after`/`reserved_after` of each event are the state right after it."""
    account = before
    for event in events:
        account = fold(account, [event])
        if hasattr(event, "balance_after"):
            assert event.balance_after == account.balance, event
        if hasattr(event, "reserved_after"):
            assert event.reserved_after == account.reserved, event


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, max_size=60))
def test_random_command_sequences_keep_the_invariants_and_replay_exactly(command_list: list) -> None:
    accounts = {user: Account(user_id=user) for user in USERS}
    history: dict[str, list[LedgerEvent]] = {user: [] for user in USERS}

    for command in command_list:
        before = accounts[command.user_id]
        events = apply(accounts, history, command)
        assert_balance_after_matches_the_state(before, events)

    for user in USERS:
        assert fold(Account(user_id=user), history[user]) == accounts[user]


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, max_size=40))
def test_a_refused_command_changes_nothing(command_list: list) -> None:
    accounts = {user: Account(user_id=user) for user in USERS}
    history: dict[str, list[LedgerEvent]] = {user: [] for user in USERS}
    refused = 0
    for command in command_list:
        before = accounts[command.user_id]
        try:
            decide(command, before)
        except LedgerRuleBroken:
            refused += 1
            assert apply(accounts, history, command) == []
            assert accounts[command.user_id] == before
        else:
            apply(accounts, history, command)


class LedgerMachine(RuleBasedStateMachine):
    """One user's account driven by random commands, with a model of what the holds should be."""

    def __init__(self) -> None:
        super().__init__()
        self.account = Account(user_id="alice")
        self.events: list[LedgerEvent] = []
        self.model_holds: dict[str, int] = {}
        self.model_ended: set[str] = set()  # tasks whose settlement is recorded
        self.model_balance = 0
        self.model_spent = 0

    def _run(self, command) -> list[LedgerEvent]:
        try:
            events = decide(command, self.account)
        except LedgerRuleBroken:
            return []
        self.account = fold(self.account, events)
        self.events += events
        for event in events:
            assert_amounts_are_whole_and_non_negative(event)
        return events

    @rule(amount=st.integers(min_value=1, max_value=50), reference=references)
    def grant(self, amount: int, reference: str) -> None:
        self._run(GrantCredits("alice", amount, "promotion", reference))
        self.model_balance += amount

    @rule(task=reservation_ids, price=st.integers(min_value=0, max_value=60))
    def reserve(self, task: str, price: int) -> None:
        events = self._run(ReserveCredits("alice", task, price))
        if task in self.model_holds or task in self.model_ended:
            assert events == [], "held already, or its task has ended: nothing more is held"
        elif price <= self.model_balance:
            assert events == [Reserved(task, price, self.model_balance - price, self.account.reserved)]
            self.model_holds[task] = price
            self.model_balance -= price
        else:
            assert events == [ReservationRejected(task, price, "insufficient_credits")]

    @precondition(lambda self: bool(self.model_holds))
    @rule(data=st.data(), charged=charges)
    def settle_held(self, data: st.DataObject, charged: int) -> None:
        task = data.draw(st.sampled_from(sorted(self.model_holds)))
        held = self.model_holds.pop(task)
        self.model_ended.add(task)
        events = self._run(SettleReservation("alice", task, charged, "completed"))
        spent = min(charged, held)
        assert sum(e.amount for e in events if isinstance(e, Spent)) == spent
        assert sum(e.amount for e in events if isinstance(e, Released)) == held - spent
        self.model_spent += spent
        self.model_balance += held - spent

    @rule(task=reservation_ids, charged=charges)
    def settle_anything(self, task: str, charged: int) -> None:
        if task in self.model_holds:
            return  # settle_held covers it
        events = self._run(SettleReservation("alice", task, charged, "failed"))
        # Nothing held: the task's end is recorded (once), so a reservation asked later holds nothing.
        assert events == ([] if task in self.model_ended else [ReservationClosed(task)])
        self.model_ended.add(task)

    @rule(amount=st.integers(min_value=-60, max_value=30).filter(bool), reference=references)
    def adjust(self, amount: int, reference: str) -> None:
        events = self._run(AdjustCredits("alice", amount, "admin-1", "why", reference))
        if self.model_balance + amount < 0:
            assert events == [], "an adjustment below zero is refused"
        else:
            assert events == [Adjusted(amount, "admin-1", "why", self.model_balance + amount)]
            self.model_balance += amount

    @invariant()
    def holds_together(self) -> None:
        check_invariants(self.account)
        check_holds_complete(self.account)
        assert self.account.balance == self.model_balance
        assert self.account.open_reservations == self.model_holds
        assert self.account.ended_reservations == self.model_ended
        assert self.account.lifetime_spent == self.model_spent
        assert self.account.version == len(self.events)
        assert fold(Account(user_id="alice"), self.events) == self.account


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase
