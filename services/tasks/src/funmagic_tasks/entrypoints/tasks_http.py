"""Internal HTTP API of tasks for the gateway: create, list, read and cancel tasks (user and admin)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from funmagic_kit.api import path_uuid, read_body, read_query, require_principal, require_role
from funmagic_kit.errors import TransientError
from funmagic_kit.http import HttpProblem, problem
from funmagic_tasks.application.tasks import TaskNotFound, TaskService
from funmagic_tasks.domain.tasks import MAX_PROMPT_LENGTH, TaskRefused

__all__ = ["TasksApp", "tasks_error_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Status = Literal["pending", "running", "completed", "failed", "cancelled"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_PROMPT_LENGTH + 1)


class TaskInputBody(_Body):
    imageAssetId: str | None = None
    prompt: str | None = Field(None, max_length=MAX_PROMPT_LENGTH)
    styleReferenceId: str | None = Field(None, max_length=64)

    @field_validator("imageAssetId")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuid.UUID(value))


class CreateTaskBody(_Body):
    toolSlug: str = Field(min_length=1, max_length=63)
    stepId: str | None = Field(None, min_length=1, max_length=63)
    parentTaskId: str | None = None
    input: TaskInputBody = Field(default_factory=TaskInputBody)

    @field_validator("parentTaskId")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return None if value is None else str(uuid.UUID(value))


class TaskQuery(_Body):
    status: Status | None = None
    tool: str | None = Field(None, max_length=63)
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=300)


class AdminTaskQuery(TaskQuery):
    user_id: str | None = Field(None, max_length=64)


def tasks_error_middleware() -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except TaskNotFound as error:
            return problem(404, "Not Found", str(error), code="not_found")
        except TaskRefused as error:
            titles = {404: "Not Found", 409: "Conflict", 429: "Too Many Requests"}
            extra = {"field": error.field} if error.field else {}
            return problem(
                error.status,
                titles.get(error.status, "Unprocessable Content"),
                str(error),
                code=error.code,
                **extra,
            )
        except TransientError as error:
            return problem(503, "Service Unavailable", str(error), code="unavailable")

    return middleware


class TasksApp:
    def __init__(self, tasks: TaskService) -> None:
        self._tasks = tasks

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/v1/tasks", self.create),
            web.get("/v1/tasks", self.list_mine),
            web.get("/v1/tasks/{task_id}", self.get),
            web.post("/v1/tasks/{task_id}/cancel", self.cancel),
            web.get("/v1/admin/tasks", self.search),
        ]

    async def create(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        body = await read_body(request, CreateTaskBody)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= 200 and key.isprintable()):
            raise HttpProblem(
                422, "Unprocessable Content", "Idempotency-Key must be 1–200 printable characters"
            )
        task, created = await self._tasks.create(principal.user_id, body.model_dump(exclude_none=True), key)
        return web.json_response(task, status=202 if created else 200)

    async def list_mine(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        query = read_query(request, TaskQuery)
        return web.json_response(await self._page(principal.user_id, query))

    async def search(self, request: web.Request) -> web.Response:
        require_role(request, "admin")
        query = read_query(request, AdminTaskQuery)
        return web.json_response(await self._page(query.user_id, query))

    async def _page(self, user_id: str | None, query: TaskQuery) -> dict:
        try:
            return await self._tasks.list(
                user_id=user_id,
                status=query.status,
                tool_slug=query.tool,
                limit=query.limit,
                cursor=query.cursor,
            )
        except ValueError:
            raise HttpProblem(422, "Unprocessable Content", "the cursor is invalid") from None

    async def get(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        task_id = path_uuid(request, "task_id", "task")
        return web.json_response(
            await self._tasks.get(principal.user_id, task_id, admin=principal.has_role("admin"))
        )

    async def cancel(self, request: web.Request) -> web.Response:
        principal = require_principal(request)
        task_id = path_uuid(request, "task_id", "task")
        return web.json_response(
            await self._tasks.cancel(principal.user_id, task_id, admin=principal.has_role("admin"))
        )
