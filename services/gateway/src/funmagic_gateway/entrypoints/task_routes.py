"""`/api/tasks/*` and `/api/admin/tasks/*`: the public face of the tasks service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import idempotency_key_header, relay, safe_id
from funmagic_gateway.entrypoints.schemas import Reply, Request
from funmagic_kit.api import Operation, read_body, read_query

__all__ = ["TaskRoutes"]

Status = Literal["pending", "running", "completed", "failed", "cancelled"]


class TaskInput(Request):
    imageAssetId: str | None = Field(None, description="An asset of yours (upload it first).")
    prompt: str | None = Field(None, max_length=4000)
    styleReferenceId: str | None = Field(None, max_length=64)


class CreateTask(Request):
    toolSlug: str = Field(min_length=1, max_length=63, examples=["background-remove"])
    stepId: str | None = Field(
        None,
        max_length=63,
        description="Run only this step (default: the whole pipeline, or the first step).",
    )
    parentTaskId: str | None = Field(
        None, description="A completed task of yours whose output this step continues."
    )
    input: TaskInput = Field(default_factory=TaskInput)


class TaskError(Reply):
    code: str
    message: str | None = None


class Task(Reply):
    id: str
    user_id: str
    tool_id: str
    tool_slug: str
    parent_task_id: str | None = None
    status: Status
    step_ids: list[str]
    current_step_id: str | None = None
    completed_step_ids: list[str]
    price: int
    charged_credits: int | None = None
    error: TaskError | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    payload: dict[str, Any] | None = Field(None, description="input, per-step outputs, output, error")


class TaskPage(Reply):
    items: list[Task]
    next_cursor: str | None = None


class TaskQuery(Request):
    status: Status | None = None
    tool: str | None = Field(None, max_length=63)
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=300)


class AdminTaskQuery(TaskQuery):
    user_id: str | None = Field(None, max_length=64)


class TaskRoutes:
    def __init__(self, tasks: ServiceClient) -> None:
        self._tasks = tasks

    def operations(self) -> list[Operation]:
        tag, admin = "tasks", "admin: tasks"
        return [
            Operation("POST", "/api/tasks", self.create,
                      "Start a tool task (send an Idempotency-Key to retry safely)", tag, access="user",
                      body=CreateTask, response=Task, status=202, errors=(404, 409, 422, 429)),
            Operation("GET", "/api/tasks", self.list_mine, "My tasks, newest first", tag, access="user",
                      query=TaskQuery, response=TaskPage),
            Operation("GET", "/api/tasks/{task_id}", self.get, "One of my tasks, with its input and output",
                      tag, access="user", response=Task, errors=(404,)),
            Operation("POST", "/api/tasks/{task_id}/cancel", self.cancel,
                      "Cancel a task; what it did not use is given back", tag, access="user", response=Task,
                      errors=(404,)),
            Operation("GET", "/api/admin/tasks", self.search, "Search all tasks", admin, access="admin",
                      query=AdminTaskQuery, response=TaskPage),
            Operation("GET", "/api/admin/tasks/{task_id}", self.get, "Any task, with its payload", admin,
                      access="admin", response=Task, errors=(404,), name="admin_get_task"),
            Operation("POST", "/api/admin/tasks/{task_id}/cancel", self.cancel, "Cancel any task", admin,
                      access="admin", response=Task, errors=(404,), name="admin_cancel_task"),
        ]  # fmt: skip

    async def create(self, request: web.Request) -> web.Response:
        body = await read_body(request, CreateTask)
        return await relay(
            self._tasks, request, "POST", "/v1/tasks", Task, payload=body.model_dump(exclude_none=True),
            extra_headers=idempotency_key_header(request),
        )  # fmt: skip

    async def list_mine(self, request: web.Request) -> web.Response:
        query = read_query(request, TaskQuery)
        params = {k: str(v) for k, v in query.model_dump(exclude_none=True).items()}
        return await relay(self._tasks, request, "GET", "/v1/tasks", TaskPage, params=params)

    async def search(self, request: web.Request) -> web.Response:
        query = read_query(request, AdminTaskQuery)
        params = {k: str(v) for k, v in query.model_dump(exclude_none=True).items()}
        return await relay(self._tasks, request, "GET", "/v1/admin/tasks", TaskPage, params=params)

    async def get(self, request: web.Request) -> web.Response:
        task_id = safe_id(request.match_info["task_id"])
        return await relay(self._tasks, request, "GET", f"/v1/tasks/{task_id}", Task)

    async def cancel(self, request: web.Request) -> web.Response:
        task_id = safe_id(request.match_info["task_id"])
        return await relay(self._tasks, request, "POST", f"/v1/tasks/{task_id}/cancel", Task)
