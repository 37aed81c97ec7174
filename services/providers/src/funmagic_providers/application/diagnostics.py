"""Provider diagnostics, read: the step jobs of a task with the calls each made to its provider (recorded
and redacted by the runner as they happened; see `domain.provider_calls`)."""

from __future__ import annotations

from dataclasses import dataclass

from funmagic_kit.ports import UnitOfWorkFactory
from funmagic_providers.application.ports import ProvidersUnitOfWork
from funmagic_providers.domain.provider_calls import ProviderCall
from funmagic_providers.domain.step_job import StepJob

__all__ = ["JobCalls", "ProviderDiagnostics"]


@dataclass(frozen=True)
class JobCalls:
    job: StepJob
    calls: list[ProviderCall]


@dataclass(frozen=True, kw_only=True)
class ProviderDiagnostics:
    uow: UnitOfWorkFactory[ProvidersUnitOfWork]

    async def of_task(self, task_id: str) -> list[JobCalls]:
        """Every step job of the task (each step, attempt), oldest first, with its calls. None for a task
        providers never saw: that is an empty list, not an error (the task may have had no step yet).
        User tasks' (`web`) jobs only: a studio reply's job, whose task id is the reply's, carries an admin's
        chat (prompts, instructions, answers), which only its owner may read — through the studio."""
        async with self.uow() as uow:
            jobs = [job for job in await uow.jobs.of_task(task_id) if job.scope == "web"]
            calls = await uow.provider_calls.of_jobs([job.id for job in jobs])
        return [JobCalls(job, calls.get(job.id, [])) for job in jobs]
