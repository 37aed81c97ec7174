"""Tasks as the apps show them: tasks' answers with the URLs of their files, from storage, added.

The creations page shows each task's (and child's) thumbnail, a task's page every output of its steps and
of its children: tasks knows the asset ids, storage the URLs (a presigned URL, or the CDN's for a published
file). One storage call per answer (in batches of its limit), for the ids present only; an asset storage
no longer has for the owner (deleted) gets no URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from funmagic_contracts.api.storage import AssetUrl
from funmagic_contracts.api.tasks import TaskQuery
from funmagic_gateway.application.ports import AssetUrls, Caller, Tasks
from funmagic_gateway.application.views import CreationPage, TaskDetail

__all__ = ["URLS_PER_CALL", "TaskViews"]

# What storage's `POST /v1/internal/assets/urls` takes at once.
URLS_PER_CALL = 200


@dataclass(frozen=True, kw_only=True)
class TaskViews:
    tasks: Tasks
    assets: AssetUrls

    async def my_tasks(self, caller: Caller, user_id: str, query: TaskQuery) -> CreationPage:
        """The creations page of `user_id` (the caller), each task and child with its `thumbnail_url`."""
        page = await self.tasks.my_tasks(caller, query)
        urls = await self._urls(user_id, page.thumbnail_asset_ids())
        for item in page.items:
            for entry in item.with_children():
                entry.thumbnail_url = _url(urls, entry.thumbnail_asset_id)
        return page

    async def task(self, caller: Caller, task_id: str) -> TaskDetail:
        """One task with its children, every output asset with its `url`. The files are the task's
        owner's (an admin reading another user's task sees that user's files)."""
        task = await self.tasks.task(caller, task_id)
        outputs = task.output_assets()
        urls = await self._urls(task.user_id, [asset.asset_id for asset in outputs])
        for asset in outputs:
            asset.url = _url(urls, asset.asset_id)
        return task

    async def _urls(self, user_id: str, asset_ids: Iterable[str]) -> Mapping[str, AssetUrl]:
        unique = list(dict.fromkeys(asset_ids))
        batches = [unique[start : start + URLS_PER_CALL] for start in range(0, len(unique), URLS_PER_CALL)]
        answers = await asyncio.gather(*(self.assets.urls(user_id, batch) for batch in batches))
        return {asset_id: url for answer in answers for asset_id, url in answer.items()}


def _url(urls: Mapping[str, AssetUrl], asset_id: str | None) -> str | None:
    found = urls.get(asset_id) if asset_id else None
    return found.url if found else None
