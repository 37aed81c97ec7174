"""The composition root as the runtime calls it: `SPEC.build` serves the routes, the typed subscriptions,
the service's unit of work and the sweeper; `SPEC.commands["seed"]` seeds the catalog of the database it is
given and prints what it did."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from funmagic_kit.runtime import Runtime, open_runtime
from funmagic_kit.workers import Periodic
from funmagic_tasks.adapters.unit_of_work import TasksUnitOfWork
from funmagic_tasks.bootstrap import SPEC
from funmagic_tasks.config import TasksSettings


@pytest.fixture
async def runtime(settings: TasksSettings) -> AsyncIterator[Runtime]:
    """The adapters as an operator command gets them (the test's database, the stack's Redis, no Kafka)."""
    async with open_runtime(SPEC, settings) as runtime:
        yield runtime


async def test_the_service_serves_its_routes_subscriptions_unit_of_work_and_sweeper(runtime) -> None:
    parts = await SPEC.build(runtime)

    paths = {route.path for route in parts.routes}
    assert {"/v1/tasks", "/v1/tasks/{task_id}/cancel", "/v1/tools/{slug}", "/v1/admin/banners"} <= paths
    assert ("DELETE", "/v1/tasks/{task_id}") in {(route.method, route.path) for route in parts.routes}
    assert "/v1/admin/tool-types/{type_id}/active-tools-count" in paths
    assert {"/v1/admin/studio/chats", "/v1/admin/studio/chats/{chat_id}/messages"} <= paths
    assert {s.topic: set(s.event_types) for s in parts.subscriptions} == {
        "credits.events": {"CreditsReserved", "CreditsReservationRejected"},
        # StepStarted only matters to studio replies (a task's start is the gateway's to show).
        "providers.events": {"StepStarted", "StepCompleted", "StepFailed"},
        # A closed account's tasks are cancelled, and it requests no more.
        "identity.events": {"UserDisabled", "UserEnabled", "UserDeleted"},
    }
    assert parts.unit_of_work is not None
    async with parts.unit_of_work() as uow:
        assert isinstance(uow, TasksUnitOfWork)
        assert await uow.tasks.active_count("nobody") == 0
    assert [(type(w), getattr(w, "name", None)) for w in parts.workers] == [
        (Periodic, "overdue-tasks"),
        (Periodic, "overdue-studio-replies"),
    ]


async def test_the_seed_command_seeds_the_catalog_and_says_what_it_did(runtime, capsys) -> None:
    assert await SPEC.commands["seed"](runtime, ["--image-provider", "openai"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert await SPEC.commands["seed"](runtime, []) == 0
    second = capsys.readouterr().out.splitlines()

    assert {"tool type image: created", "tool figme: created", "tool image-to-3d: created"} <= set(first)
    assert "tool figme: unchanged" in second
    assert all(line.endswith(": unchanged") for line in second)


async def test_the_seed_command_refuses_an_invalid_provider_name(runtime, capsys) -> None:
    assert await SPEC.commands["seed"](runtime, ["--image-provider", "Not A Name"]) == 2

    assert "seed refused: config.steps[0].provider.name" in capsys.readouterr().err
