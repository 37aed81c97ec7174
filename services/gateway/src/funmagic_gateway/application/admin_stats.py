"""The admin app's overview in one call: tasks' figures (tasks), credits' figures (credits) over one window,
and the providers of user tools with their last health check (providers), asked for at once, as the admin
(each service checks the role). No service reads another's database: each counts its own, in SQL.

All or nothing, as the user overview (`user_overview`): when one part cannot be had, the answer is that
part's refusal (a 503 when its service failed or is down), never an overview with a part missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from funmagic_contracts.api.credits import CreditStats
from funmagic_contracts.api.providers import Provider
from funmagic_contracts.api.stats import StatsQuery
from funmagic_contracts.api.tasks import TaskStats
from funmagic_gateway.application.ports import Caller, CreditFigures, ProviderRegistry, TaskFigures
from funmagic_gateway.application.views import AdminStatsOverview, ProviderHealth

__all__ = ["AdminStats"]


@dataclass(frozen=True, kw_only=True)
class AdminStats:
    tasks: TaskFigures
    credits: CreditFigures
    providers: ProviderRegistry

    async def overview(self, caller: Caller, query: StatsQuery) -> AdminStatsOverview:
        tasks, credits, providers = await _all_of(
            self.tasks.task_stats(caller, query),
            self.credits.credit_stats(caller, query),
            self.providers.web_providers(caller),
        )
        return AdminStatsOverview(
            window=query.window,
            # Both services cut the same period from the window (`period_of`); tasks' stands for both (they
            # differ only when a bucket ends between the two answers).
            since=tasks.since,
            until=tasks.until,
            tasks=tasks,
            credits=credits,
            providers=[
                ProviderHealth.model_validate(provider.model_dump())
                for provider in sorted(providers, key=lambda p: p.name)
            ],
        )


async def _all_of(
    tasks: Awaitable[TaskStats], credits: Awaitable[CreditStats], providers: Awaitable[Sequence[Provider]]
) -> tuple[TaskStats, CreditStats, Sequence[Provider]]:
    """The three answers, asked for concurrently; the first refusal (in this order) when any failed."""
    answers = await asyncio.gather(tasks, credits, providers, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    found_tasks, found_credits, found_providers = answers
    return found_tasks, found_credits, found_providers  # type: ignore[return-value]
