"""Which rate limits apply to a request, how large they are, and how a limiter's answer is read.

Pure rules, no I/O: the Redis counter lives in `adapters.rate_limiter`, the HTTP plumbing in
`entrypoints.edge`. Differences from the original (ORIGINAL.md §3) are deliberate:
- the window of each limit is honoured (the original hard-coded 60 s);
- uploads are counted per user (the original keyed them by IP, so one NAT shared one bucket);
- only `POST /api/tasks` counts as task creation (the original also counted listing tasks).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "RateLimit",
    "RateLimitCategory",
    "RateLimitDecision",
    "RateLimitSettings",
    "SubjectKind",
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


class RateLimitSettings(BaseModel):
    """One limit per category; field names equal the category values. Defaults match the original."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    global_api: RateLimit = _per_minute(500)
    user_api: RateLimit = _per_minute(200)
    task_creation: RateLimit = _per_minute(10)
    upload: RateLimit = _per_minute(20)
    auth_session: RateLimit = _per_minute(60)
    auth_action: RateLimit = _per_minute(10)

    def for_category(self, category: RateLimitCategory) -> RateLimit:
        limit: RateLimit = getattr(self, RateLimitCategory(category).value)
        return limit


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


def most_constraining(decisions: Iterable[RateLimitDecision]) -> RateLimitDecision | None:
    """The decision the client should be told about; None when there are none.

    A denial wins over any allowance; among denials, the one that resets last, since the request
    cannot succeed before every exceeded window has reset (so its Retry-After is the honest one).
    Otherwise the one with the fewest requests remaining, ties broken by the later reset.
    """
    decisions = list(decisions)
    denied = [d for d in decisions if not d.allowed]
    if denied:
        return max(denied, key=lambda d: d.reset_seconds)
    if not decisions:
        return None
    return min(decisions, key=lambda d: (d.remaining, -d.reset_seconds))


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
