"""Internal HTTP API of tasks for the gateway: create, list, read, cancel and delete tasks (user, admin), and
the admin overview's figures of tasks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

from aiohttp import web

from funmagic_contracts.api.stats import StatsQuery
from funmagic_contracts.api.tasks import AdminTaskQuery, CreateTask, TaskQuery
from funmagic_kit.api import (
    idempotency_key,
    path_uuid,
    read_body,
    read_query,
    require_principal,
    require_role,
)
from funmagic_tasks.application.tasks import TaskService
from funmagic_tasks.domain.tasks import ProviderPick, TaskInput, TaskRequest

__all__ = ["TasksApp"]


class CreateTaskBody(CreateTask):
    """The public body (`funmagic_contracts.api.tasks.CreateTask`: its fields and rules, ids canonical),
    and the request it is for the use case."""

    def as_request(self) -> TaskRequest:
        return TaskRequest(
            tool_slug=self.toolSlug,
            step_id=self.stepId,
            parent_task_id=self.parentTaskId,
            input=TaskInput(
                image_asset_id=self.input.imageAssetId,
                prompt=self.input.prompt,
                style_reference_id=self.input.styleReferenceId,
                provider=self._pick(),
            ),
        )

    def _pick(self) -> ProviderPick | None:
        pick = self.input.provider
        if pick is None:
            return None
        return ProviderPick(name=pick.name, model=pick.model, options=MappingProxyType(dict(pick.options)))


@dataclass(frozen=True)
class TasksApp:
    tasks: TaskService

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/v1/tasks", self.create),
            web.get("/v1/tasks", self.list_mine),
            web.get("/v1/tasks/{task_id}", self.get),
            web.post("/v1/tasks/{task_id}/cancel", self.cancel),
            web.delete("/v1/tasks/{task_id}", self.delete),
            web.get("/v1/admin/tasks", self.search),
            web.get("/v1/admin/stats/tasks", self.stats),
        ]

    async def create(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        body = await read_body(request, CreateTaskBody)
        key = idempotency_key(request)
        task, created = await self.tasks.create(principal.user_id, body.as_request(), key)
        return web.json_response(task, status=202 if created else 200)

    async def list_mine(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, TaskQuery)
        return web.json_response(
            await self.tasks.list_mine(
                principal.user_id, status=query.status, tool_slug=query.tool, category=query.category,
                limit=query.limit, cursor=query.cursor,
            )
        )  # fmt: skip

    async def search(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminTaskQuery)
        return web.json_response(
            await self.tasks.search(
                user_id=query.user_id, status=query.status, tool_slug=query.tool, category=query.category,
                include_deleted=query.include_deleted, created_from=query.created_from,
                created_to=query.created_to, limit=query.limit, cursor=query.cursor,
            )
        )  # fmt: skip

    async def stats(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, StatsQuery)
        return web.json_response(await self.tasks.stats(query.window))

    async def get(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        task_id = path_uuid(request, "task_id", "task")
        return web.json_response(
            await self.tasks.get(principal.user_id, task_id, admin=principal.has_role("admin"))
        )

    async def cancel(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        task_id = path_uuid(request, "task_id", "task")
        return web.json_response(
            await self.tasks.cancel(principal.user_id, task_id, admin=principal.has_role("admin"))
        )

    async def delete(self, request: web.Request) -> web.Response:
        """The owner deletes their task; an admin any task (the same route, the role decides)."""
        principal = require_principal(request)
        task_id = path_uuid(request, "task_id", "task")
        await self.tasks.delete(principal.user_id, task_id, admin=principal.has_role("admin"))
        return web.Response(status=204)
