"""An admin's view of one user in one call: the account (identity), the balance and the latest credit
transactions (credits) and the latest tasks (tasks), asked for at once. No service reads another's database:
the gateway asks each for its part, as the admin (each checks the role). All or nothing: when one part
cannot be had, the answer is that part's refusal (a 503 when its service failed or is down), never a
partial view an admin could take for the whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from funmagic_contracts.api.credits import AdminUserCredits, Balance
from funmagic_contracts.api.identity import UserView
from funmagic_contracts.api.tasks import AdminTaskQuery, TaskPage
from funmagic_gateway.application.ports import Caller, Tasks, UserCredits, Users
from funmagic_gateway.application.views import AdminUserOverview

__all__ = ["RECENT", "UserOverviews"]

# How many of the latest transactions and tasks the overview shows (the original's number).
RECENT = 10


@dataclass(frozen=True, kw_only=True)
class UserOverviews:
    users: Users
    credits: UserCredits
    tasks: Tasks

    async def overview(self, caller: Caller, user_id: str) -> AdminUserOverview:
        user, credits, tasks = await _all_of(
            self.users.user(caller, user_id),
            self.credits.user_credits(caller, user_id, transactions=RECENT),
            self.tasks.search(caller, AdminTaskQuery(user_id=user_id, limit=RECENT)),
        )
        return AdminUserOverview(
            user=user,
            credits=Balance.model_validate(credits.model_dump(exclude={"transactions"})),
            transactions=credits.transactions.items[:RECENT],
            tasks=tasks.items[:RECENT],
        )


async def _all_of(
    user: Awaitable[UserView], credits: Awaitable[AdminUserCredits], tasks: Awaitable[TaskPage]
) -> tuple[UserView, AdminUserCredits, TaskPage]:
    """The three answers, asked for concurrently; the first refusal (in this order) when any failed."""
    answers = await asyncio.gather(user, credits, tasks, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    found_user, found_credits, found_tasks = answers
    return found_user, found_credits, found_tasks  # type: ignore[return-value]
