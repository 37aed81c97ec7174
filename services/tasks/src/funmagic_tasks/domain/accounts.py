"""What a closed account means for tasks: identity's UserDisabled, UserEnabled and UserDeleted, as rules.

Pure: no I/O. Tasks keeps, per user, whether the account is closed (`Standing`): disabled (an admin may
enable it again) or deleted (for good). A closed account's pending and running tasks end the way a cancel
ends them (`task.cancel`: each pays for the steps it completed, providers are asked to stop, credits
releases the rest of its hold, exactly as for the owner's own cancel), and it requests no new task: the
gateway already refuses its revoked tokens, and this refusal closes the window of a request that was
authenticated just before the account closed.

    open ──disable──► disabled ──enable──► open
      │                  │
      └────delete────────┴──────► deleted (final: enabling it changes nothing)

Every transition returns the new standing; one that changes nothing returns the standing as it was, so a
redelivered event is harmless (and the tasks it would cancel have ended already).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from funmagic_kit.errors import Forbidden
from funmagic_tasks.domain import task as task_rules
from funmagic_tasks.domain.task import Task, TaskChange

__all__ = [
    "AccountClosed",
    "Closure",
    "Standing",
    "check_may_request_tasks",
    "delete",
    "disable",
    "enable",
    "end_tasks_of_closed_account",
    "ends_with_a_closed_account",
]

Closure = Literal["disabled", "deleted"]


class AccountClosed(Forbidden, code="account_closed"):
    """The account is disabled or deleted: it requests no task."""


@dataclass(frozen=True)
class Standing:
    """Whether `user_id`'s account is closed, how, and since when (None: open, the default)."""

    user_id: str
    closure: Closure | None = None
    closed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closure is None


# --- rules ---------------------------------------------------------------------------------------------


def ends_with_a_closed_account(task: Task) -> bool:
    """A task still pending or running ends when its account closes; an ended one stays as it ended."""
    return task.is_active


def check_may_request_tasks(standing: Standing) -> None:
    """Raises AccountClosed for a disabled or deleted account."""
    if not standing.is_open:
        raise AccountClosed(f"this account is {standing.closure}; it cannot start tasks")


# --- transitions ---------------------------------------------------------------------------------------


def disable(standing: Standing, *, now: datetime) -> Standing:
    """An admin disabled the account. A deleted account stays deleted; a disabled one keeps its date."""
    if not standing.is_open:
        return standing
    return replace(standing, closure="disabled", closed_at=now)


def enable(standing: Standing) -> Standing:
    """An admin enabled a disabled account again. A deleted account stays deleted."""
    if standing.closure != "disabled":
        return standing
    return replace(standing, closure=None, closed_at=None)


def delete(standing: Standing, *, now: datetime) -> Standing:
    """The account is gone, for good (a disabled account deleted later is deleted from then on)."""
    if standing.closure == "deleted":
        return standing
    return replace(standing, closure="deleted", closed_at=now)


def end_tasks_of_closed_account(tasks: Iterable[Task], *, by: str, now: datetime) -> tuple[TaskChange, ...]:
    """The cancellation of each of the account's tasks that `ends_with_a_closed_account`, by `by` (the admin
    who disabled it, or the user who deleted it), as `task.cancel` decides it; none for the others."""
    return tuple(
        task_rules.cancel(task, by=by, now=now) for task in tasks if ends_with_a_closed_account(task)
    )
