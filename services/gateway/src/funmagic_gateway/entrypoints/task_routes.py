"""`/api/tasks/*` and `/api/admin/tasks/*`: the public face of the tasks service. Routes that only forward
are declared; my tasks and a task's page are composed (`application.task_views`: tasks' answer with the
URLs of its files from storage). Progress streams are in `sse_routes`."""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from funmagic_contracts.api.tasks import AdminTaskQuery, CreateTask, Task, TaskPage, TaskQuery
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.application.task_views import TaskViews
from funmagic_gateway.application.views import CreationPage, TaskDetail
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, caller_of, operations, safe_id
from funmagic_kit.api import Operation, json_body, read_query, require_principal

__all__ = ["task_operations"]


def task_operations(tasks: ServiceClient, views: TaskViews) -> list[Operation]:
    tag, admin, task = "tasks", "admin: tasks", "/v1/tasks/{task_id}"

    async def list_mine(request: web.Request) -> web.Response:
        query = read_query(request, TaskQuery)
        user_id = require_principal(request).user_id
        return json_body(await views.my_tasks(caller_of(request), user_id, query))

    async def get(request: web.Request) -> web.Response:
        task_id = safe_id(request.match_info["task_id"])
        return json_body(await views.task(caller_of(request), task_id))

    shown = Operation("GET", "/api/tasks/{task_id}", get,
                      "One of my tasks, with its input, its outputs (with URLs) and its child tasks", tag,
                      access="user", owner="caller_or_admin", response=TaskDetail, errors=(404, 503),
                      name="get")  # fmt: skip
    cancel = Forward("POST", "/api/tasks/{task_id}/cancel", tasks, task + "/cancel",
                     "Cancel a task; what it did not use is given back", tag, "cancel", access="user",
                     owner="caller_or_admin", reply=Task, errors=(404,))  # fmt: skip
    delete = Forward("DELETE", "/api/tasks/{task_id}", tasks, task,
                     "Delete a task and its child tasks (a running one is cancelled first)", tag, "delete",
                     access="user", owner="caller_or_admin", status=204, errors=(404,),
                     description="Gone from my lists; kept for the credit history and the audit. Its "
                                 "outputs are deleted, but for the ones I published.")  # fmt: skip
    return operations(
        Forward("POST", "/api/tasks", tasks, "/v1/tasks",
                "Start a tool task (send an Idempotency-Key to retry safely)", tag, "create", access="user",
                body=CreateTask, dump="exclude_none", reply=Task, status=202,
                errors=(403, 404, 409, 422, 429), idempotent=True,
                description="Business rule: `input` must match the tool's inputs (its steps' input modes, "
                            "`GET /api/tools/{slug}`): asset ids that are the caller's assets, options the "
                            "steps know (422). Business rule: `input.provider` must be one of the first "
                            "step's `choices` (422 `provider_not_allowed`), its `model` one of the choice's "
                            "`models` (422 `model_not_allowed`), each of its `options` one the choice lets "
                            "users set (422 `option_not_allowed`) with a value it allows (422 "
                            "`option_out_of_range`)."),
        Operation("GET", "/api/tasks", list_mine,
                  "My creations: my tasks, newest first, each with its child tasks and thumbnail", tag,
                  access="user", query=TaskQuery, response=CreationPage, errors=(503,), name="list_mine",
                  description=CURSOR_RULE),
        shown,
        cancel,
        delete,
        Forward("GET", "/api/admin/tasks", tasks, "/v1/admin/tasks",
                "Search all tasks", admin, "search", access="admin", query=AdminTaskQuery, reply=TaskPage,
                description=CURSOR_RULE),
        # Admins read, cancel and delete any task through the same service routes (the service checks the
        # role); a task's files are its owner's, and their URLs come with it.
        replace(shown, path="/api/admin/tasks/{task_id}", summary="Any task, with its payload", tag=admin,
                name="admin_get_task", access="admin", owner=None),
        replace(cancel, path="/api/admin/tasks/{task_id}/cancel", summary="Cancel any task", tag=admin,
                name="admin_cancel_task", access="admin", owner=None),
        replace(delete, path="/api/admin/tasks/{task_id}", summary="Delete any task and its child tasks",
                tag=admin, name="admin_delete_task", access="admin", owner=None),
    )  # fmt: skip
