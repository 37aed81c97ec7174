"""The collector's policy for a service process: startup's objects frozen, collections less often."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from funmagic_kit.collector import (
    FULL_AFTER_MIDDLE,
    MIDDLE_AFTER_YOUNG,
    YOUNG_THRESHOLD,
    settle_after_startup,
)


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_what_startup_built_is_frozen_and_never_walked_again() -> None:
    built_at_startup = {"routes": [object() for _ in range(10)]}

    settle_after_startup()

    assert gc.get_freeze_count() > 0
    assert not any(built_at_startup is tracked for tracked in gc.get_objects())


@pytest.mark.usefixtures("restored_collector")
def test_collections_run_less_often_than_cpythons_defaults() -> None:
    settle_after_startup()

    assert gc.get_threshold() == (YOUNG_THRESHOLD, MIDDLE_AFTER_YOUNG, FULL_AFTER_MIDDLE)
    assert YOUNG_THRESHOLD > 700
    assert FULL_AFTER_MIDDLE > 10


@pytest.mark.usefixtures("restored_collector")
def test_garbage_left_by_startup_is_collected_before_the_freeze() -> None:
    class Node:
        partner: Node | None = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    alive = weakref.ref(first)
    del first, second  # a cycle: only the collector frees it (a frozen one never)

    settle_after_startup()

    assert alive() is None
