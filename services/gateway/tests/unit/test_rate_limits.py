"""The pure rate-limit rules: which limits a request counts against, the settings, the decisions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from funmagic_gateway.domain.rate_limits import (
    DEFAULT_TIERS,
    LOCAL_REFUSAL_SECONDS,
    MAX_LEASE,
    CounterLease,
    RateLimit,
    RateLimitCategory,
    RateLimitDecision,
    RateLimitSettings,
    RateLimitTier,
    SubjectKind,
    decide,
    decide_most_constraining,
    lease_size,
    most_constraining,
    requests_to_limit,
)

G = RateLimitCategory.GLOBAL_API
U = RateLimitCategory.USER_API
T = RateLimitCategory.TASK_CREATION
UP = RateLimitCategory.UPLOAD
S = RateLimitCategory.AUTH_SESSION
A = RateLimitCategory.AUTH_ACTION


@pytest.mark.parametrize(
    ("method", "path", "authenticated", "expected"),
    [
        # Not the API: never limited.
        ("GET", "/health", False, []),
        ("GET", "/health/all", True, []),
        ("GET", "/metrics", False, []),
        ("GET", "/openapi.json", False, []),
        ("GET", "/.well-known/jwks.json", False, []),
        ("GET", "/apix/tasks", True, []),
        # Every API call counts globally, per IP.
        ("GET", "/api/tools", False, [G]),
        ("GET", "/api/", False, [G]),
        ("GET", "/api", False, [G]),
        # Session reads.
        ("GET", "/api/auth/session", False, [G, S]),
        ("GET", "/api/auth/session/", False, [G, S]),
        ("HEAD", "/api/auth/session", False, [G, S]),
        ("POST", "/api/auth/session", False, [G]),
        ("GET", "/api/auth/session", True, [G, S, U]),
        # Auth actions are POSTs only.
        ("POST", "/api/auth/sign-in/email", False, [G, A]),
        ("POST", "/api/auth/sign-in/social", False, [G, A]),
        ("POST", "/api/auth/sign-up/email", False, [G, A]),
        ("POST", "/api/auth/forgot-password", False, [G, A]),
        ("POST", "/api/auth/reset-password", False, [G, A]),
        ("POST", "/api/auth/verify-email", False, [G, A]),
        ("post", "/api/auth/sign-in/email", False, [G, A]),
        ("GET", "/api/auth/sign-in/social/callback", False, [G]),
        ("POST", "/api/auth/sign-out", True, [G, U]),
        ("POST", "/api/auth/sign-involved", False, [G]),
        # Signed-in calls also count per user.
        ("GET", "/api/me", True, [G, U]),
        ("GET", "/api/me", False, [G]),
        # Only creating a task is task creation (the original also counted listing).
        ("POST", "/api/tasks", True, [G, U, T]),
        ("POST", "/api/tasks/", True, [G, U, T]),
        ("post", "/api/tasks", True, [G, U, T]),
        ("GET", "/api/tasks", True, [G, U]),
        ("POST", "/api/tasks/123/cancel", True, [G, U]),
        ("GET", "/api/tasks/123", True, [G, U]),
        # Uploads count per user.
        ("POST", "/api/assets/upload", True, [G, U, UP]),
        ("POST", "/api/assets/upload-url", True, [G, U, UP]),
        ("POST", "/api/assets/upload/complete", True, [G, U, UP]),
        ("GET", "/api/assets/upload", True, [G, U]),
        ("GET", "/api/assets", True, [G, U]),
        # Per-user limits need a user: anonymous creation is left to auth (401) and the global limit.
        ("POST", "/api/tasks", False, [G]),
        ("POST", "/api/assets/upload", False, [G]),
    ],
)
def test_requests_to_limit(
    method: str, path: str, authenticated: bool, expected: list[RateLimitCategory]
) -> None:
    assert requests_to_limit(method, path, authenticated) == expected


@pytest.mark.parametrize(
    ("category", "kind"),
    [
        (G, SubjectKind.IP),
        (S, SubjectKind.IP),
        (A, SubjectKind.IP),
        (U, SubjectKind.USER),
        (T, SubjectKind.USER),
        (UP, SubjectKind.USER),
    ],
)
def test_each_category_is_keyed_by_ip_or_user(category: RateLimitCategory, kind: SubjectKind) -> None:
    assert category.subject_kind is kind


def test_category_values_are_the_stable_wire_names() -> None:
    assert [c.value for c in RateLimitCategory] == [
        "global_api",
        "user_api",
        "task_creation",
        "upload",
        "auth_session",
        "auth_action",
    ]


def test_defaults_match_the_original_limits_per_minute() -> None:
    settings = RateLimitSettings()
    expected = {G: 500, U: 200, T: 10, UP: 20, S: 60, A: 10}
    for category, limit in expected.items():
        assert settings.for_category(category) == RateLimit(limit=limit, window_seconds=60)


def test_for_category_returns_each_categorys_own_limit() -> None:
    settings = RateLimitSettings(upload=RateLimit(limit=3, window_seconds=5))
    assert settings.for_category(RateLimitCategory.UPLOAD) == RateLimit(limit=3, window_seconds=5)
    assert settings.for_category(RateLimitCategory.TASK_CREATION).limit == 10


def test_settings_round_trip_through_json() -> None:
    settings = RateLimitSettings(auth_action=RateLimit(limit=5, window_seconds=900))
    assert RateLimitSettings.model_validate_json(settings.model_dump_json()) == settings


def test_partial_settings_json_keeps_defaults_for_the_rest() -> None:
    settings = RateLimitSettings.model_validate_json('{"user_api": {"limit": 7, "window_seconds": 10}}')
    assert settings.user_api == RateLimit(limit=7, window_seconds=10)
    assert settings.global_api.limit == 500


@pytest.mark.parametrize(
    "fields",
    [
        {"limit": 0, "window_seconds": 60},
        {"limit": -1, "window_seconds": 60},
        {"limit": 1_000_001, "window_seconds": 60},
        {"limit": 10, "window_seconds": 0},
        {"limit": 10, "window_seconds": -60},
        {"limit": 10, "window_seconds": 86_401},
        {"limit": "10", "window_seconds": 60},
        {"limit": 10.5, "window_seconds": 60},
        {"limit": 10},
        {"limit": 10, "window_seconds": 60, "burst": 5},
    ],
)
def test_rate_limit_rejects_invalid_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimit.model_validate(fields)


def test_rate_limit_accepts_the_bounds() -> None:
    assert RateLimit(limit=1, window_seconds=1).limit == 1
    assert RateLimit(limit=1_000_000, window_seconds=86_400).window_seconds == 86_400


def test_settings_reject_unknown_categories() -> None:
    with pytest.raises(ValidationError, match="extra"):
        RateLimitSettings.model_validate({"gloabl_api": {"limit": 1, "window_seconds": 1}})


def test_settings_are_immutable() -> None:
    settings = RateLimitSettings()
    with pytest.raises(ValidationError):
        settings.global_api = RateLimit(limit=1, window_seconds=1)  # type: ignore[misc]


# --- tiers ------------------------------------------------------------------------------------------


def tier(name: str, min_purchased: int, multiplier: int) -> RateLimitTier:
    return RateLimitTier(name=name, min_purchased=min_purchased, multiplier=multiplier)


def test_the_default_tiers_are_the_originals() -> None:
    assert (
        RateLimitSettings().tiers
        == DEFAULT_TIERS
        == (
            tier("free", 0, 1),
            tier("basic", 1, 2),
            tier("premium", 1000, 3),
        )
    )


@pytest.mark.parametrize(
    ("purchased", "expected"),
    [(0, "free"), (1, "basic"), (500, "basic"), (999, "basic"), (1000, "premium"), (10**9, "premium")],
)
def test_a_users_tier_is_the_highest_threshold_their_purchases_reach(purchased: int, expected: str) -> None:
    chosen = RateLimitSettings().tier_for(purchased)

    assert chosen is not None
    assert chosen.name == expected


def test_the_tier_does_not_depend_on_the_order_the_tiers_are_listed_in() -> None:
    settings = RateLimitSettings(tiers=(tier("gold", 50, 5), tier("free", 0, 1), tier("silver", 10, 2)))

    assert [settings.multiplier_for(p) for p in (0, 9, 10, 49, 50, 51)] == [1, 1, 2, 2, 5, 5]


def test_without_a_tier_reached_or_an_unknown_history_the_multiplier_is_one() -> None:
    paying_only = RateLimitSettings(tiers=(tier("paid", 1, 4),))

    assert paying_only.tier_for(0) is None
    assert paying_only.multiplier_for(0) == 1
    assert paying_only.multiplier_for(None) == 1, "an unknown history counts as nothing bought"
    assert paying_only.multiplier_for(3) == 4
    assert RateLimitSettings(tiers=()).multiplier_for(10**6) == 1


def test_a_tier_multiplies_the_per_user_api_and_task_creation_limits_only() -> None:
    settings = RateLimitSettings(task_creation=RateLimit(limit=10, window_seconds=30))

    assert settings.for_category(T, 3) == RateLimit(limit=30, window_seconds=30)
    assert settings.for_category(U, 3) == RateLimit(limit=600, window_seconds=60)
    for category in (G, UP, S, A):
        assert settings.for_category(category, 3) == settings.for_category(category)


def test_a_multiplied_limit_may_pass_what_an_admin_may_set() -> None:
    settings = RateLimitSettings(user_api=RateLimit(limit=1_000_000, window_seconds=60))

    assert settings.for_category(U, 100).limit == 100_000_000


def test_tiers_round_trip_through_json_and_old_settings_get_the_default_tiers() -> None:
    settings = RateLimitSettings(tiers=(tier("free", 0, 1), tier("vip", 5, 10)))

    assert RateLimitSettings.model_validate_json(settings.model_dump_json()) == settings
    before_tiers = '{"task_creation": {"limit": 7, "window_seconds": 60}}'
    assert RateLimitSettings.model_validate_json(before_tiers).tiers == DEFAULT_TIERS


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([tier("a", 0, 1), tier("a", 1, 2)], "names must be unique; repeated: a"),
        ([tier("a", 5, 1), tier("b", 5, 2)], "min_purchased values must be unique; repeated: 5"),
    ],
)
def test_tiers_must_be_unambiguous(tiers: list[RateLimitTier], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RateLimitSettings(tiers=tiers)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "x", "min_purchased": -1, "multiplier": 1},
        {"name": "x", "min_purchased": 0, "multiplier": 0},
        {"name": "x", "min_purchased": 0, "multiplier": 101},
        {"name": "x", "min_purchased": "1", "multiplier": 2},
        {"name": "x", "min_purchased": 1, "multiplier": 1.5},
        {"name": "", "min_purchased": 1, "multiplier": 2},
        {"name": "x", "min_purchased": 1},
        {"name": "x", "min_purchased": 1, "multiplier": 2, "bonus": 3},
    ],
)
def test_a_tier_rejects_invalid_values(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimitTier.model_validate(fields)


def test_a_tier_accepts_the_bounds() -> None:
    assert tier("floor", 0, 1).multiplier == 1
    assert tier("ceiling", 1_000_000_000, 100).multiplier == 100


def test_too_many_tiers_are_refused() -> None:
    with pytest.raises(ValidationError):
        RateLimitSettings(tiers=[tier(f"t{i}", i, 1) for i in range(21)])


# --- decisions --------------------------------------------------------------------------------------


def test_a_decision_is_read_from_the_count_and_the_time_left() -> None:
    limit = RateLimit(limit=3, window_seconds=60)

    assert decide(T, limit, 1, 59_001) == RateLimitDecision(T, True, limit=3, remaining=2, reset_seconds=60)
    assert decide(T, limit, 3, 1) == RateLimitDecision(T, True, limit=3, remaining=0, reset_seconds=1)
    assert decide(T, limit, 4, 0) == RateLimitDecision(T, False, limit=3, remaining=0, reset_seconds=1)


def decision(
    category: RateLimitCategory, *, allowed: bool = True, remaining: int = 5, reset: int = 30
) -> RateLimitDecision:
    return RateLimitDecision(category, allowed, limit=10, remaining=remaining, reset_seconds=reset)


def test_most_constraining_of_nothing_is_none() -> None:
    assert most_constraining([]) is None


def test_a_denial_wins_over_fewer_remaining() -> None:
    denied = decision(T, allowed=False, remaining=0, reset=5)
    assert most_constraining([decision(G, remaining=0), denied, decision(U, remaining=1)]) is denied


def test_among_denials_the_latest_reset_wins() -> None:
    # The request cannot pass before both windows reset, so Retry-After must be the longer one.
    early = decision(G, allowed=False, remaining=0, reset=5)
    late = decision(T, allowed=False, remaining=0, reset=50)
    assert most_constraining([early, late]) is late
    assert most_constraining([late, early]) is late


def test_without_denials_the_fewest_remaining_wins() -> None:
    tight = decision(T, remaining=1)
    assert most_constraining(iter([decision(G, remaining=400), tight, decision(U, remaining=3)])) is tight


def test_remaining_ties_are_broken_by_the_later_reset() -> None:
    later = decision(U, remaining=2, reset=40)
    assert most_constraining([decision(G, remaining=2, reset=10), later]) is later


@pytest.mark.parametrize(("remaining", "reset"), [(-1, 10), (0, 0), (3, -5)])
def test_decision_refuses_impossible_numbers(remaining: int, reset: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimitDecision(G, True, limit=10, remaining=remaining, reset_seconds=reset)


# --- leases: hits counted in Redis ahead of use -----------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "counted", "expected"),
    [
        (10, 0, 1),  # small limits are counted hit by hit, as without leases
        (60, 0, 3),
        (500, 0, 31),
        (500, 480, 1),  # near the limit a lease shrinks to one hit
        (500, 600, 1),  # over it too: each further request is still counted once
        (1_000_000, 0, MAX_LEASE),
    ],
)
def test_a_lease_is_a_share_of_what_is_left_of_the_limit(limit: int, counted: int, expected: int) -> None:
    assert lease_size(limit, counted) == expected


def test_the_asking_request_gets_the_first_count_of_a_granted_lease() -> None:
    first, lease = CounterLease.granted(last_count=40, size=10, ttl_ms=30_000, now=100.0)

    assert first == 31
    assert lease == CounterLease(next_count=32, last_count=40, window_ends_at=130.0, granted_at=100.0)


def test_a_lease_hands_out_its_counts_one_by_one_then_is_used_up() -> None:
    limit = RateLimit(limit=100, window_seconds=60)
    lease: CounterLease | None = CounterLease(next_count=5, last_count=7, window_ends_at=160.0)
    counts = []
    while lease is not None and (taken := lease.take(100.0, limit)) is not None:
        count, left_ms, lease = taken
        counts.append((count, left_ms))

    assert counts == [(5, 60_000), (6, 60_000), (7, 60_000)]


def test_a_lease_is_void_once_its_window_ended() -> None:
    lease = CounterLease(next_count=5, last_count=7, window_ends_at=160.0)

    assert lease.take(160.0, RateLimit(limit=100, window_seconds=60)) is None
    assert lease.counted(160.0) == 0
    assert lease.counted(159.9) == 7


def test_a_shortened_window_voids_a_lease_that_would_outlive_it() -> None:
    lease = CounterLease(next_count=5, last_count=7, window_ends_at=160.0)

    assert lease.take(100.0, RateLimit(limit=100, window_seconds=30)) is None


def test_used_up_at_the_limit_a_lease_refuses_every_further_request_without_redis() -> None:
    limit = RateLimit(limit=7, window_seconds=60)
    used_up = CounterLease(next_count=8, last_count=7, window_ends_at=160.0, granted_at=99.5)

    refused = []
    lease = used_up
    for _ in range(2):
        taken = lease.take(100.0, limit)
        assert taken is not None
        count, _, lease = taken
        refused.append(decide(G, limit, count, 1000).allowed)

    assert refused == [False, False]
    assert lease.owed(100.0) == 2, "each refused request is added to the counter with the next lease"
    assert lease.owed(160.0) == 0, "not once the window ended"


def test_a_lease_refuses_on_its_own_for_a_moment_then_asks_redis_again() -> None:
    # Redis may have been reset meanwhile (an operator, a restart): at most once a period it is asked.
    used_up = CounterLease(next_count=8, last_count=7, window_ends_at=160.0, granted_at=100.0)
    limit = RateLimit(limit=7, window_seconds=60)

    assert used_up.take(100.0 + LOCAL_REFUSAL_SECONDS - 0.01, limit) is not None
    assert used_up.take(100.0 + LOCAL_REFUSAL_SECONDS, limit) is None


def test_leased_hits_a_lowered_limit_refuses_are_trusted_only_for_a_moment() -> None:
    # Leased under a limit of 1,000; an admin lowered it to 10 and may have reset the counters.
    lease = CounterLease(next_count=300, last_count=400, window_ends_at=160.0, granted_at=100.0)
    lowered = RateLimit(limit=10, window_seconds=60)

    taken = lease.take(100.5, lowered)
    assert taken is not None
    assert not decide(G, lowered, taken[0], taken[1]).allowed
    assert lease.take(100.0 + LOCAL_REFUSAL_SECONDS, lowered) is None


def test_a_used_up_lease_below_a_raised_limit_needs_a_new_one() -> None:
    # Counted past the old limit of 7; the tier or an admin raised it to 10 within the window.
    used_up = CounterLease(next_count=8, last_count=7, window_ends_at=160.0)

    assert used_up.take(100.0, RateLimit(limit=10, window_seconds=60)) is None


@pytest.mark.parametrize(("next_count", "last_count"), [(0, 5), (3, 0)])
def test_a_lease_must_be_a_range_of_counts(next_count: int, last_count: int) -> None:
    with pytest.raises(ValueError, match="range of counts"):
        CounterLease(next_count=next_count, last_count=last_count, window_ends_at=1.0)


def test_the_highest_multiplier_bounds_every_tier() -> None:
    assert RateLimitSettings().highest_multiplier() == 3
    assert RateLimitSettings(tiers=()).highest_multiplier() == 1


@pytest.mark.parametrize(
    "counted",
    [
        [],
        [(G, 5, 1, 30_000)],
        [(G, 5, 6, 30_000), (U, 5, 9, 50_000), (S, 5, 2, 10_000)],  # two denials: the later reset
        [(G, 5, 6, 30_000), (U, 5, 6, 30_000)],  # equal denials: the first
        [(G, 10, 3, 30_000), (U, 5, 2, 10_000), (S, 8, 5, 50_000)],  # fewest remaining, ties: later reset
        [(G, 10, 3, 30_000), (U, 10, 3, 30_000)],  # equal allowances: the first
        [(G, 5, 5, 1), (U, 5, 4, 60_000)],  # at the limit is still allowed
    ],
)
def test_the_fast_pick_is_the_most_constraining_decision(
    counted: list[tuple[RateLimitCategory, int, int, int]],
) -> None:
    with_limits = [(c, RateLimit(limit=n, window_seconds=60), count, ttl) for c, n, count, ttl in counted]

    expected = most_constraining(decide(*each) for each in with_limits)

    assert decide_most_constraining(with_limits) == expected
