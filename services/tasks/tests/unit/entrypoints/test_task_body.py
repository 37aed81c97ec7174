"""The body of `POST /v1/tasks` as the use case gets it: the request a body becomes is stored and
fingerprinted exactly as the body reads (without the fields left out), so an Idempotency-Key replay matches
tasks stored before and after any change of the types in between."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from funmagic_tasks.domain.tasks import TaskInput, TaskRequest, fingerprint, request_document
from funmagic_tasks.entrypoints.tasks_http import CreateTaskBody

PARENT = str(uuid.uuid4())
IMAGE = str(uuid.uuid4())


@pytest.mark.parametrize(
    "raw",
    [
        {"toolSlug": "figme", "input": {"imageAssetId": IMAGE.upper()}},
        {"toolSlug": "figme", "stepId": "3d-gen", "parentTaskId": PARENT},
        {"toolSlug": "figme", "input": {"prompt": "", "styleReferenceId": "anime"}},
    ],
    ids=["image", "chained", "style"],
)
def test_a_request_reads_and_hashes_as_its_body(raw: dict) -> None:
    body = CreateTaskBody.model_validate(raw)
    as_sent = body.model_dump(exclude_none=True)

    assert request_document(body.as_request()) == as_sent
    assert (
        fingerprint(body.as_request())
        == hashlib.sha256(json.dumps(as_sent, sort_keys=True).encode()).hexdigest()
    )


def test_the_body_becomes_a_typed_request_with_canonical_ids() -> None:
    body = CreateTaskBody.model_validate(
        {"toolSlug": "figme", "stepId": "3d-gen", "parentTaskId": PARENT.upper(), "input": {"prompt": "hi"}}
    )

    assert body.as_request() == TaskRequest(
        tool_slug="figme", step_id="3d-gen", parent_task_id=PARENT, input=TaskInput(prompt="hi")
    )
