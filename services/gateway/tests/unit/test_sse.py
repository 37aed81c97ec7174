"""Task progress as SSE: which events become which entries, their logical keys, and the wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest
from openapi_spec_validator import validate

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.providers.events import (
    StepCompleted,
    StepDelayed,
    StepFailed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.tasks.events import TaskCancelled, TaskCompleted, TaskFailed, TaskOutput, TaskStarted
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.bootstrap import Gateway
from funmagic_gateway.domain.sse import (
    HEARTBEAT_FRAME,
    PROJECTED_EVENT_TYPES,
    RETRY_FRAME,
    InvalidLastEventId,
    SseEntry,
    connected_frame,
    event_frame,
    parse_last_event_id,
    project,
)
from funmagic_gateway.entrypoints.http import PublicApi

TASK, USER, EVENT_ID = (
    "0190a8c2-0000-7000-8000-000000000001",
    "user-1",
    "0190a8c2-0000-7000-8000-0000000000ee",
)


def only_entry(event: object) -> SseEntry:
    projection = project(EVENT_ID, event)  # type: ignore[arg-type]
    assert projection is not None
    assert (projection.task_id, projection.user_id) == (TASK, USER)
    assert len(projection.entries) == 1
    return projection.entries[0]


def test_step_started_names_the_step_by_its_id_and_is_keyed_by_task_step_and_attempt() -> None:
    entry = only_entry(
        StepStarted(task_id=TASK, user_id=USER, step_id="image-gen", provider="openai", attempt=2)
    )

    assert entry == SseEntry(
        "step_started",
        {"taskId": TASK, "stepId": "image-gen", "stepName": "image-gen", "attempt": 2},
        f"step_started:{TASK}:image-gen:2",
    )
    assert not entry.terminal


def test_step_progressed_is_progress() -> None:
    event = StepProgressed(
        task_id=TASK, user_id=USER, step_id="3d-gen", attempt=1, progress=40, message="Modelling"
    )

    assert only_entry(event) == SseEntry(
        "progress", {"taskId": TASK, "stepId": "3d-gen", "progress": 40, "message": "Modelling"}, EVENT_ID
    )


def test_step_delayed_says_why_and_until_when_in_utc() -> None:
    retry_at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    event = StepDelayed(
        task_id=TASK, user_id=USER, step_id="s", attempt=1, reason="rate_limited", retry_at=retry_at
    )

    assert only_entry(event) == SseEntry(
        "delayed",
        {"taskId": TASK, "stepId": "s", "reason": "rate_limited", "retryAt": "2025-01-02T03:04:05Z"},
        EVENT_ID,
    )


def test_step_completed_refers_to_assets_by_id_and_url_and_is_keyed_by_task_step_and_attempt() -> None:
    output = StepOutput(
        assets=(OutputAsset(asset_id="a-1", role="image"), OutputAsset(asset_id="a-2", role="preview")),
        provider_request_id="req-9",
        metadata={"width": 1024},
    )
    entry = only_entry(
        StepCompleted(task_id=TASK, user_id=USER, step_id="image-gen", attempt=3, output=output)
    )

    assert entry == SseEntry(
        "step_completed",
        {
            "taskId": TASK,
            "stepId": "image-gen",
            "output": {
                "assets": [
                    {"assetId": "a-1", "role": "image", "url": "/api/assets/a-1"},
                    {"assetId": "a-2", "role": "preview", "url": "/api/assets/a-2"},
                ],
                "metadata": {"width": 1024},
            },
        },
        f"step_completed:{TASK}:image-gen:3",
    )


def test_task_completed_first_repeats_the_steps_it_lists_started_and_completed_under_their_keys() -> None:
    output = TaskOutput(
        assets=(OutputAsset(asset_id="m-1", role="model"),),
        metadata={
            "steps": [
                {"step_id": "image-gen", "attempt": 1, "assets": [{"asset_id": "i-1", "role": "image"}]},
                {
                    "step_id": "3d-gen",
                    "attempt": 2,
                    "assets": [{"asset_id": "m-1", "role": "model"}],
                    "metadata": {"faces": 9000},
                },
            ]
        },
    )
    projection = project(
        EVENT_ID, TaskCompleted(task_id=TASK, user_id=USER, output=output, charged_credits=50)
    )

    assert projection is not None
    assert [(e.type, e.logical_key) for e in projection.entries] == [
        ("step_started", f"step_started:{TASK}:image-gen:1"),
        ("step_completed", f"step_completed:{TASK}:image-gen:1"),
        ("step_started", f"step_started:{TASK}:3d-gen:2"),
        ("step_completed", f"step_completed:{TASK}:3d-gen:2"),
        ("completed", EVENT_ID),
    ]
    assert projection.entries[3].data == {
        "taskId": TASK,
        "stepId": "3d-gen",
        "output": {
            "assets": [{"assetId": "m-1", "role": "model", "url": "/api/assets/m-1"}],
            "metadata": {"faces": 9000},
        },
    }
    completed = projection.entries[-1]
    assert completed.terminal
    assert completed.data == {
        "taskId": TASK,
        "output": {"assets": [{"assetId": "m-1", "role": "model", "url": "/api/assets/m-1"}]},
        "chargedCredits": 50,
    }


@pytest.mark.parametrize(
    "steps",
    [None, "not a list", [{"step_id": "", "attempt": 1}, {"attempt": 1}, {"step_id": "s", "attempt": 0}, 7]],
)
def test_task_completed_leaves_out_steps_it_cannot_read(steps: object) -> None:
    metadata = {} if steps is None else {"steps": steps}
    event = TaskCompleted(task_id=TASK, user_id=USER, output=TaskOutput(metadata=metadata), charged_credits=0)

    assert [e.type for e in project(EVENT_ID, event).entries] == ["completed"]  # type: ignore[union-attr]


def test_task_failed_carries_the_message_and_the_code() -> None:
    event = TaskFailed(
        task_id=TASK, user_id=USER, error_code="provider_error", error_message="It broke", charged_credits=0
    )
    entry = only_entry(event)

    assert entry == SseEntry(
        "failed",
        {"taskId": TASK, "error": "It broke", "code": "provider_error", "chargedCredits": 0},
        EVENT_ID,
    )
    assert entry.terminal


def test_task_cancelled_is_terminal() -> None:
    entry = only_entry(TaskCancelled(task_id=TASK, user_id=USER, charged_credits=5))

    assert entry == SseEntry("cancelled", {"taskId": TASK, "chargedCredits": 5}, EVENT_ID)
    assert entry.terminal


def test_other_events_are_ignored() -> None:
    failed_step = StepFailed(
        task_id=TASK,
        user_id=USER,
        step_id="s",
        attempt=1,
        error_code="x",
        error_message="y",
        retryable=True,
    )

    assert project(EVENT_ID, failed_step) is None
    assert project(EVENT_ID, TaskStarted(task_id=TASK, user_id=USER, reservation_id="r")) is None
    assert "StepFailed" not in PROJECTED_EVENT_TYPES["providers.events"]
    assert set(PROJECTED_EVENT_TYPES["tasks.events"]) == {
        "TaskCompleted",
        "TaskFailed",
        "TaskCancelled",
        "StudioReplyCompleted",
        "StudioReplyFailed",
        "StudioReplyCancelled",
    }


def test_the_projector_subscribes_to_exactly_the_projected_event_types(gateway: Gateway) -> None:
    projector = [s for s in gateway.parts.subscriptions if s.topic in PROJECTED_EVENT_TYPES]
    subscribed = {s.topic: set(s.event_types) for s in projector}
    # The catalog's changes share the task events' subscription (they empty the catalog cache).
    catalog_changes = {"ToolChanged", "ToolTypeChanged", "BannerChanged"}

    expected = {topic: set(types) for topic, types in PROJECTED_EVENT_TYPES.items()}
    expected["tasks.events"] = expected["tasks.events"] | catalog_changes
    assert subscribed == expected


def test_an_asset_id_is_escaped_in_its_url() -> None:
    output = StepOutput(assets=(OutputAsset(asset_id="../x?y", role="image"),))
    entry = only_entry(StepCompleted(task_id=TASK, user_id=USER, step_id="s", attempt=1, output=output))

    assert entry.data["output"]["assets"][0]["url"] == "/api/assets/..%2Fx%3Fy"


def test_a_stored_entry_is_type_and_data() -> None:
    entry = SseEntry("progress", {"taskId": TASK, "progress": 5}, EVENT_ID)

    assert json.loads(entry.to_json()) == {"type": "progress", "data": {"taskId": TASK, "progress": 5}}


# --- the wire format -----------------------------------------------------------------------------


def test_an_event_frame_has_id_event_and_one_data_line() -> None:
    frame = event_frame("1718000000000-3", "progress", {"taskId": TASK, "progress": 5})

    assert frame == f'id: 1718000000000-3\nevent: progress\ndata: {{"taskId":"{TASK}","progress":5}}\n\n'


def test_data_can_never_break_its_line() -> None:
    message = "line one\nline two\r\n\u2028\x85 café ✓"
    frame = event_frame("1-0", "progress", {"message": message})

    lines = frame.split("\n")
    assert lines[:3] == ["id: 1-0", "event: progress", lines[2]]
    assert lines[3:] == ["", ""]
    assert frame.isascii()
    assert json.loads(lines[2].removeprefix("data: ")) == {"message": message}


def test_connected_has_no_id_and_the_stream_opens_with_retry() -> None:
    assert connected_frame({"taskId": TASK}) == f'event: connected\ndata: {{"taskId":"{TASK}"}}\n\n'
    assert RETRY_FRAME == "retry: 3000\n\n"
    assert HEARTBEAT_FRAME == ": heartbeat\n\n"


# --- Last-Event-ID -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "query", "expected"),
    [
        (None, None, None),
        ("", None, None),
        ("  ", "", None),
        ("1718000000000-0", None, "1718000000000-0"),
        (None, "5-2", "5-2"),
        ("7-1", "5-2", "7-1"),  # the header wins
        ("", "5-2", "5-2"),
        ("18446744073709551615-18446744073709551615", None, "18446744073709551615-18446744073709551615"),
    ],
)
def test_the_resume_point_is_the_header_or_the_query(
    header: str | None, query: str | None, expected: str | None
) -> None:
    assert parse_last_event_id([header, query]) == expected


@pytest.mark.parametrize(
    "value",
    ["abc", "1", "1-", "-1", "1-2-3", "1.5-0", "١٢-٠", "1-0; DROP", "123456789012345678901-0", "+1-0"],
)
def test_a_malformed_resume_point_is_refused(value: str) -> None:
    with pytest.raises(InvalidLastEventId):
        parse_last_event_id([value, None])


# --- the OpenAPI document ------------------------------------------------------------------------


async def test_the_stream_operations_keep_the_openapi_document_valid(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:  # never used: building the document makes no calls
        identity = ServiceClient("identity", "http://127.0.0.1:1", "x" * 32, http)
        api = PublicApi(gateway.sse.operations(), identity)

    validate(api.document)
    paths = api.document["paths"]
    assert set(paths) == {"/api/tasks/{task_id}/stream", "/api/stream"}
    task_stream = paths["/api/tasks/{task_id}/stream"]["get"]
    assert {"200", "204", "400", "401", "404", "429"} <= set(task_stream["responses"])
    assert "text/event-stream" in task_stream["description"]
    for path in paths:  # what a success answers is declared, not only described
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}, path
        assert "503" in paths[path]["get"]["responses"], path
    assert [p["name"] for p in task_stream["parameters"]] == ["task_id", "lastEventId"]
