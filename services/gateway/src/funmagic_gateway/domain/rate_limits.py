"""Which rate limits apply to a request, how large they are, and how a limiter's answer is read.

Pure rules, no I/O: the Redis counter lives in `adapters.rate_limiter`, the HTTP plumbing in
`entrypoints.edge`. Differences from the original (ORIGINAL.md §3) are deliberate:
- the window of each limit is honoured (the original hard-coded 60 s);
- uploads are counted per user (the original keyed them by IP, so one NAT shared one bucket);
- only `POST /api/tasks` counts as task creation (the original also counted listing tasks).

A replica counts hits in leases (`CounterLease`): it adds a block of hits to a window's Redis counter at
once and hands them out to its requests one by one, so a subject busy on one replica costs one round trip
per block, not per request. A lease never hands out a count the counter does not hold, so no replica ever
admits more than the limit; what a replica leased and did not use makes a subject be refused early, by at
most `1 / LEASE_SHARE_OF_HEADROOM` of what was left of the limit when it leased (leases shrink to one hit
near the limit).

Tiers are the original's: a user's tier is the one with the highest `min_purchased` their lifetime
purchased credits reach (free 0 → 1×, basic 1 → 2×, premium 1,000 → 3×), and its multiplier applies to the
per-user API and task-creation limits only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "DEFAULT_TIERS",
    "LEASE_SHARE_OF_HEADROOM",
    "LOCAL_REFUSAL_SECONDS",
    "MAX_LEASE",
    "TIERED_CATEGORIES",
    "CounterLease",
    "RateLimit",
    "RateLimitCategory",
    "RateLimitDecision",
    "RateLimitSettings",
    "RateLimitTier",
    "SubjectKind",
    "decide",
    "decide_most_constraining",
    "lease_size",
    "most_constraining",
    "requests_to_limit",
]


class SubjectKind(StrEnum):
    """What a limit counts per: the client's address, or the signed-in user."""

    IP = "ip"
    USER = "user"


class RateLimitCategory(StrEnum):
    GLOBAL_API = "global_api"
    USER_API = "user_api"
    TASK_CREATION = "task_creation"
    UPLOAD = "upload"
    AUTH_SESSION = "auth_session"
    AUTH_ACTION = "auth_action"

    @property
    def subject_kind(self) -> SubjectKind:
        return _SUBJECT_KINDS[self]


_SUBJECT_KINDS: dict[RateLimitCategory, SubjectKind] = {
    RateLimitCategory.GLOBAL_API: SubjectKind.IP,
    RateLimitCategory.USER_API: SubjectKind.USER,
    RateLimitCategory.TASK_CREATION: SubjectKind.USER,
    RateLimitCategory.UPLOAD: SubjectKind.USER,
    RateLimitCategory.AUTH_SESSION: SubjectKind.IP,
    RateLimitCategory.AUTH_ACTION: SubjectKind.IP,
}


class RateLimit(BaseModel):
    """At most `limit` requests per fixed window of `window_seconds`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # strict: "10" or 10.5 or true in an admin's JSON is a mistake to report, not to coerce.
    limit: int = Field(ge=1, le=1_000_000, strict=True)
    window_seconds: int = Field(ge=1, le=86_400, strict=True)


def _per_minute(limit: int) -> RateLimit:
    return RateLimit(limit=limit, window_seconds=60)


class RateLimitTier(BaseModel):
    """Users who bought at least `min_purchased` credits in all get `multiplier` times the per-user limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=40, strict=True)
    min_purchased: int = Field(ge=0, le=1_000_000_000, strict=True)
    multiplier: int = Field(ge=1, le=100, strict=True)


DEFAULT_TIERS: tuple[RateLimitTier, ...] = (
    RateLimitTier(name="free", min_purchased=0, multiplier=1),
    RateLimitTier(name="basic", min_purchased=1, multiplier=2),
    RateLimitTier(name="premium", min_purchased=1000, multiplier=3),
)
# The limits a tier multiplies: the per-user API limit and task creation (as in the original).
TIERED_CATEGORIES = frozenset({RateLimitCategory.USER_API, RateLimitCategory.TASK_CREATION})


class RateLimitSettings(BaseModel):
    """One limit per category (field names equal the category values) and the tiers. Defaults match the
    original."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    global_api: RateLimit = _per_minute(500)
    user_api: RateLimit = _per_minute(200)
    task_creation: RateLimit = _per_minute(10)
    upload: RateLimit = _per_minute(20)
    auth_session: RateLimit = _per_minute(60)
    auth_action: RateLimit = _per_minute(10)
    tiers: tuple[RateLimitTier, ...] = Field(
        DEFAULT_TIERS,
        max_length=20,
        description="A user's tier is the one with the highest `min_purchased` their lifetime purchased "
        "credits reach (none: 1×); its multiplier applies to `user_api` and `task_creation`. Names and "
        "thresholds are unique.",
    )

    @model_validator(mode="after")
    def _tiers_are_unambiguous(self) -> RateLimitSettings:
        for what, values in (
            ("names", [tier.name for tier in self.tiers]),
            ("min_purchased values", [tier.min_purchased for tier in self.tiers]),
        ):
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"tier {what} must be unique; repeated: {', '.join(repeated)}")
        return self

    def for_category(self, category: RateLimitCategory, multiplier: int = 1) -> RateLimit:
        """The category's limit; a tiered category's multiplied by the user's tier `multiplier`."""
        # A category is a str equal to its field's name (a StrEnum): no conversion on every request.
        limit: RateLimit = getattr(self, category)
        if multiplier == 1 or category not in TIERED_CATEGORIES:
            return limit
        # Not validated again: a multiplied limit may exceed what an admin may set directly.
        return limit.model_copy(update={"limit": limit.limit * multiplier})

    def tier_for(self, lifetime_purchased: int) -> RateLimitTier | None:
        """The tier with the highest `min_purchased` that `lifetime_purchased` reaches, or None."""
        reached = [tier for tier in self.tiers if tier.min_purchased <= lifetime_purchased]
        return max(reached, key=lambda tier: tier.min_purchased, default=None)

    def highest_multiplier(self) -> int:
        """The largest multiplier any tier gives: a bound on a user's limits while their tier is unknown."""
        return max((tier.multiplier for tier in self.tiers), default=1)

    def multiplier_for(self, lifetime_purchased: int | None) -> int:
        """The multiplier of a user's tier; an unknown purchase history counts as none (0 bought)."""
        tier = self.tier_for(lifetime_purchased or 0)
        return tier.multiplier if tier is not None else 1


@dataclass(frozen=True)
class RateLimitDecision:
    """A limiter's answer for one category: the numbers behind the X-RateLimit-* headers."""

    category: RateLimitCategory
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def __post_init__(self) -> None:
        # Headers built from these must never show a negative remainder or "retry in 0 s".
        if self.remaining < 0:
            raise ValueError(f"remaining must be >= 0, got {self.remaining}")
        if self.reset_seconds < 1:
            raise ValueError(f"reset_seconds must be >= 1, got {self.reset_seconds}")


def decide(category: RateLimitCategory, limit: RateLimit, count: int, ttl_ms: int) -> RateLimitDecision:
    """The decision for a request that made a window's counter `count`, `ttl_ms` before it resets."""
    return RateLimitDecision(
        category=category,
        allowed=count <= limit.limit,
        limit=limit.limit,
        remaining=max(0, limit.limit - count),
        reset_seconds=_reset_seconds(ttl_ms),
    )


def _reset_seconds(ttl_ms: int) -> int:
    # Rounded up, so a client that waits this long finds a fresh window.
    return max(1, math.ceil(int(ttl_ms) / 1000))


def _constraint_rank(allowed: bool, remaining: int, reset_seconds: int) -> tuple[int, int, int]:
    """Smallest is most constraining: a denial (the latest reset first) before any allowance (the fewest
    remaining, then the latest reset)."""
    return (1, remaining, -reset_seconds) if allowed else (0, -reset_seconds, 0)


def decide_most_constraining(
    counted: Iterable[tuple[RateLimitCategory, RateLimit, int, int]],
) -> RateLimitDecision | None:
    """`most_constraining(decide(…) for each (category, limit, count, ttl_ms))`, building only the decision
    it picks: this runs for every request."""
    best: tuple[RateLimitCategory, RateLimit, int, int] | None = None
    best_rank: tuple[int, int, int] | None = None
    for category, limit, count, ttl_ms in counted:
        rank = _constraint_rank(count <= limit.limit, max(0, limit.limit - count), _reset_seconds(ttl_ms))
        # Strictly smaller: the first of equals stays, as `min` picks it.
        if best_rank is None or rank < best_rank:
            best, best_rank = (category, limit, count, ttl_ms), rank
    return decide(*best) if best is not None else None


# A lease takes at most this share of what is left of a limit, and never more than MAX_LEASE hits.
LEASE_SHARE_OF_HEADROOM = 16
MAX_LEASE = 1024
# How long a lease used up at the limit refuses on its own before asking Redis again.
LOCAL_REFUSAL_SECONDS = 1.0


def lease_size(limit: int, counted: int) -> int:
    """How many hits to add to a window's counter at once, when it is known to hold `counted` already:
    a share of what is left, at least one (so the counter still sees every request once over the limit)."""
    return max(1, min(MAX_LEASE, (limit - counted) // LEASE_SHARE_OF_HEADROOM))


@dataclass(frozen=True)
class CounterLease:
    """Hits of one window's counter this replica added in Redis ahead of use: it hands out the counts
    `next_count`..`last_count` to its requests until the window ends at `window_ends_at` (seconds on the
    replica's monotonic clock)."""

    next_count: int
    last_count: int
    window_ends_at: float
    # When Redis granted it: refusing on its own is trusted for LOCAL_REFUSAL_SECONDS after that.
    granted_at: float = 0.0

    def __post_init__(self) -> None:
        # next_count == last_count + 1: used up. Beyond it only at the limit: refused requests (`owed`).
        if self.last_count < 1 or self.next_count < 1:
            raise ValueError(f"a lease of {self.next_count}..{self.last_count} is not a range of counts")

    @classmethod
    def granted(cls, last_count: int, size: int, ttl_ms: int, now: float) -> tuple[int, CounterLease]:
        """Redis added `size` hits, reaching `last_count`, `ttl_ms` before the window ends: the first count
        goes to the request that asked, the lease keeps the rest."""
        first = last_count - size + 1
        return first, cls(first + 1, last_count, now + ttl_ms / 1000, now)

    def take(self, now: float, limit: RateLimit) -> tuple[int, int, CounterLease] | None:
        """The next request's count and the ms until its window ends, with the lease after it; None when a
        new lease is needed: the window ended, it is now shorter than what is left of it, or the lease is
        used up below the limit.

        Used up at or over the limit, the lease goes on counting without Redis for LOCAL_REFUSAL_SECONDS
        after it was granted: the counter holds the limit already, so every further request of the window is
        refused whatever other replicas add. Those hits are `owed` to the counter, added with the next lease
        (every request counts, as in the original, so a limit raised within the window still sees them).
        After that it asks Redis again (at most once a period per refused subject): a counter an operator
        reset, or a window Redis restarted, frees the subject within that period.
        """
        left_ms = math.ceil((self.window_ends_at - now) * 1000)
        if left_ms <= 0 or left_ms > limit.window_seconds * 1000:
            return None
        refusing = self.next_count > limit.limit
        if self.next_count > self.last_count and not refusing:
            return None
        # A refusal (at the limit, or below leased hits a lowered limit no longer allows) is trusted only
        # for a moment after Redis granted the lease.
        if refusing and now - self.granted_at >= LOCAL_REFUSAL_SECONDS:
            return None
        # Built directly, not with dataclasses.replace: this runs for every counter of every request.
        return (
            self.next_count,
            left_ms,
            CounterLease(self.next_count + 1, self.last_count, self.window_ends_at, self.granted_at),
        )

    def counted(self, now: float) -> int:
        """What the counter is known to hold: this lease's last count in its window, nothing after it."""
        return self.last_count if now < self.window_ends_at else 0

    def owed(self, now: float) -> int:
        """Refused requests counted here but not yet in Redis; none once the window ended."""
        return max(0, self.next_count - self.last_count - 1) if now < self.window_ends_at else 0


def most_constraining(decisions: Iterable[RateLimitDecision]) -> RateLimitDecision | None:
    """The decision the client should be told about; None when there are none.

    A denial wins over any allowance; among denials, the one that resets last, since the request
    cannot succeed before every exceeded window has reset (so its Retry-After is the honest one).
    Otherwise the one with the fewest requests remaining, ties broken by the later reset.
    """
    return min(
        decisions, key=lambda d: _constraint_rank(d.allowed, d.remaining, d.reset_seconds), default=None
    )


_API_PREFIX = "/api/"
# Each matches the path itself and anything below it ("/api/auth/sign-in/email", ...).
_AUTH_ACTION_TREES = ("/api/auth/sign-in", "/api/auth/sign-up")
_AUTH_ACTION_PATHS = frozenset(
    {"/api/auth/forgot-password", "/api/auth/reset-password", "/api/auth/verify-email"}
)
_AUTH_SESSION_PATH = "/api/auth/session"
_TASKS_PATH = "/api/tasks"
# A prefix on purpose: "/api/assets/upload", "/api/assets/upload-url", "/api/assets/uploads/..." all upload.
_UPLOAD_PREFIX = "/api/assets/upload"


def requests_to_limit(method: str, path: str, is_authenticated: bool) -> list[RateLimitCategory]:
    """The categories one request counts against, broadest first. Non-API paths are never limited."""
    if not (path == _API_PREFIX.rstrip("/") or path.startswith(_API_PREFIX)):
        return []
    # Methods are upper-case on the wire; normalising means "post" can never slip past a POST rule.
    method = method.upper()
    exact = path.rstrip("/") or "/"
    categories = [RateLimitCategory.GLOBAL_API]
    # HEAD is answered by the GET handler in aiohttp, so it must cost the same.
    if method in ("GET", "HEAD") and exact == _AUTH_SESSION_PATH:
        categories.append(RateLimitCategory.AUTH_SESSION)
    if method == "POST" and _is_auth_action(exact):
        categories.append(RateLimitCategory.AUTH_ACTION)
    if is_authenticated:
        categories.append(RateLimitCategory.USER_API)
        # Per-user categories need a user to count against; anonymous calls are rejected by auth anyway.
        if method == "POST" and exact == _TASKS_PATH:
            categories.append(RateLimitCategory.TASK_CREATION)
        if method == "POST" and path.startswith(_UPLOAD_PREFIX):
            categories.append(RateLimitCategory.UPLOAD)
    return categories


def _is_auth_action(exact_path: str) -> bool:
    if exact_path in _AUTH_ACTION_PATHS:
        return True
    return any(exact_path == tree or exact_path.startswith(f"{tree}/") for tree in _AUTH_ACTION_TREES)
