"""What the gateway's compositions need of the services, as Protocols; `adapters.services` has the
clients that call them over HTTP, unit tests hand-written fakes.

Every call acts for a `Caller`: the user's token, address and agent go along, so each service decides
for itself what the user may see (the gateway combines answers; it never widens what a service shows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from funmagic_contracts.api.audit import AuditPage, AuditQuery
from funmagic_contracts.api.credits import AdminUserCredits, CreditStats
from funmagic_contracts.api.identity import UserView
from funmagic_contracts.api.providers import Provider
from funmagic_contracts.api.stats import StatsQuery
from funmagic_contracts.api.storage import AssetUrl
from funmagic_contracts.api.tasks import AdminTaskQuery, TaskPage, TaskQuery, TaskStats
from funmagic_gateway.application.views import CreationPage, TaskDetail
from funmagic_gateway.domain.rate_limits import RateLimitSettings

__all__ = [
    "AssetUrls",
    "AuditLog",
    "Caller",
    "CreditFigures",
    "ProviderRegistry",
    "Purchases",
    "RateLimitSettingsRecords",
    "TaskFigures",
    "Tasks",
    "UserCredits",
    "Users",
]


@dataclass(frozen=True)
class Caller:
    """Who a call to a service is made for: the verified user's access token (None: only the gateway's
    own credential goes), and the client's address and agent as the gateway believes them."""

    token: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None


class Tasks(Protocol):
    async def my_tasks(self, caller: Caller, query: TaskQuery) -> CreationPage:
        """The caller's top-level tasks with their families folded in (tasks' `GET /v1/tasks`)."""

    async def task(self, caller: Caller, task_id: str) -> TaskDetail:
        """One task with its payload and children, if the caller may see it (its owner, or an admin)."""

    async def search(self, caller: Caller, query: AdminTaskQuery) -> TaskPage:
        """Any tasks (the caller must be an admin)."""


class TaskFigures(Protocol):
    async def task_stats(self, caller: Caller, query: StatsQuery) -> TaskStats:
        """Tasks' figures over the window (the caller must be an admin)."""


class CreditFigures(Protocol):
    async def credit_stats(self, caller: Caller, query: StatsQuery) -> CreditStats:
        """Credits' figures over the window (the caller must be an admin)."""


class ProviderRegistry(Protocol):
    async def web_providers(self, caller: Caller) -> Sequence[Provider]:
        """The providers of user tools (web scope), with their last health check (the caller must be an
        admin)."""


class AssetUrls(Protocol):
    async def urls(self, user_id: str, asset_ids: Sequence[str]) -> Mapping[str, AssetUrl]:
        """A URL for each of `asset_ids` (at most 200) that `user_id` owns; the others are absent."""


class Users(Protocol):
    async def user(self, caller: Caller, user_id: str) -> UserView:
        """One account as an admin sees it, with its `session_count`."""


class UserCredits(Protocol):
    async def user_credits(self, caller: Caller, user_id: str, *, transactions: int) -> AdminUserCredits:
        """A user's balance and their latest `transactions`, newest first (the caller must be an admin)."""


class Purchases(Protocol):
    async def lifetime_purchased(self, user_id: str) -> int:
        """The credits `user_id` ever bought (credits' ledger)."""


class RateLimitSettingsRecords(Protocol):
    """Where the rate-limit settings are kept durably (identity's database; Redis only caches them)."""

    async def load(self) -> RateLimitSettings | None:
        """The stored settings; None when none were ever stored."""

    async def save(self, settings: RateLimitSettings, caller: Caller) -> None:
        """Stores them whole; returns once they are stored (`caller`: whose change it is)."""


class AuditLog(Protocol):
    async def audit_page(self, caller: Caller, query: AuditQuery) -> AuditPage:
        """One service's audit entries, newest first, after the query's cursor."""
        ...
