"""Root tasks: given what was recorded of the parent, when a task is requested, then its root is…"""

from __future__ import annotations

from funmagic_credits.domain.task_roots import TaskRoot, root_of

ADA, BOB = "user-ada", "user-bob"


def test_a_task_without_a_parent_is_its_own_root() -> None:
    assert root_of("t1", ADA, "figme", None, None) == TaskRoot("t1", ADA, "t1", "figme")


def test_a_child_belongs_to_its_parents_root() -> None:
    parent = TaskRoot("t1", ADA, "t1", "figme")

    child = root_of("t2", ADA, "image-to-3d", "t1", parent)

    assert child == TaskRoot("t2", ADA, "t1", "image-to-3d")


def test_a_grandchild_belongs_to_the_top_of_the_chain() -> None:
    child = TaskRoot("t2", ADA, "t1", "image-to-3d")

    assert root_of("t3", ADA, "background-remove", "t2", child).root_task_id == "t1"


def test_a_parent_never_recorded_is_taken_as_the_root() -> None:
    assert root_of("t2", ADA, "image-to-3d", "t-before-roots", None).root_task_id == "t-before-roots"


def test_a_parent_of_another_user_is_not_followed() -> None:
    someone_elses = TaskRoot("t1", BOB, "t0", "figme")

    assert root_of("t2", ADA, "image-to-3d", "t1", someone_elses).root_task_id == "t2"
