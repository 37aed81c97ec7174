"""Which root task each task belongs to, so a user's transactions can be grouped by the work they paid for.

A task started from another task's output (`TaskRequested.parent_task_id`, e.g. a FigMe 3D model made from
a FigMe image) belongs to that task's root; a task without a parent is its own root. The chain is resolved
once, when the task is requested, from the parent's recorded root.

Rules:
- A task without a parent is its own root.
- A child's root is its parent's root.
- A parent credits has no root for (requested before roots were recorded) is taken as the root.
- A parent of another user is not followed (tasks refuses such a parent; a group never mixes users).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TaskRoot", "root_of"]


@dataclass(frozen=True)
class TaskRoot:
    task_id: str
    user_id: str
    root_task_id: str
    tool_slug: str


def root_of(
    task_id: str, user_id: str, tool_slug: str, parent_task_id: str | None, parent: TaskRoot | None
) -> TaskRoot:
    """The root of a task just requested; `parent` is what was recorded for `parent_task_id`, if anything."""
    if parent_task_id is None or (parent is not None and parent.user_id != user_id):
        root = task_id
    elif parent is None:
        root = parent_task_id
    else:
        root = parent.root_task_id
    return TaskRoot(task_id=task_id, user_id=user_id, root_task_id=root, tool_slug=tool_slug)
