"""`/api/tasks/*` and `/api/admin/tasks/*`: the public face of the tasks service, every route a declared
forward (progress streams are in `sse_routes`)."""

from __future__ import annotations

from dataclasses import replace

from funmagic_contracts.api.tasks import AdminTaskQuery, CreateTask, Task, TaskPage, TaskQuery
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import Forward, operations
from funmagic_kit.api import Operation

__all__ = ["task_operations"]


def task_operations(tasks: ServiceClient) -> list[Operation]:
    tag, admin, task = "tasks", "admin: tasks", "/v1/tasks/{task_id}"
    get = Forward("GET", "/api/tasks/{task_id}", tasks, task,
                  "One of my tasks, with its input and output", tag, "get", access="user", reply=Task,
                  errors=(404,))  # fmt: skip
    cancel = Forward("POST", "/api/tasks/{task_id}/cancel", tasks, task + "/cancel",
                     "Cancel a task; what it did not use is given back", tag, "cancel", access="user",
                     reply=Task, errors=(404,))  # fmt: skip
    return operations(
        Forward("POST", "/api/tasks", tasks, "/v1/tasks",
                "Start a tool task (send an Idempotency-Key to retry safely)", tag, "create", access="user",
                body=CreateTask, dump="exclude_none", reply=Task, status=202, errors=(404, 409, 422, 429),
                idempotent=True),
        Forward("GET", "/api/tasks", tasks, "/v1/tasks",
                "My tasks, newest first", tag, "list_mine", access="user", query=TaskQuery, reply=TaskPage),
        get,
        cancel,
        Forward("GET", "/api/admin/tasks", tasks, "/v1/admin/tasks",
                "Search all tasks", admin, "search", access="admin", query=AdminTaskQuery, reply=TaskPage),
        # Admins read and cancel any task through the same service routes (the service checks the role).
        replace(get, path="/api/admin/tasks/{task_id}", summary="Any task, with its payload", tag=admin,
                name="admin_get_task", access="admin"),
        replace(cancel, path="/api/admin/tasks/{task_id}/cancel", summary="Cancel any task", tag=admin,
                name="admin_cancel_task", access="admin"),
    )  # fmt: skip
