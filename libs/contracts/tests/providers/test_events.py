from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from funmagic_contracts.base import OutputAsset
from funmagic_contracts.providers import events
from funmagic_contracts.providers.events import StepCompleted, StepDelayed, StepOutput, StepProgressed

STEP = dict(task_id="t", user_id="u", step_id="3d-gen", attempt=1)


def test_step_events_are_keyed_by_task_and_health_by_provider():
    models = [getattr(events, n) for n in events.__all__ if hasattr(getattr(events, n), "EVENT_TYPE")]

    assert {m.TOPIC for m in models} == {"providers.events"}
    assert {m.EVENT_TYPE for m in models if m.SUBJECT_FIELD != "task_id"} == {"ProviderHealthChanged"}


@pytest.mark.parametrize("progress", [-1, 101])
def test_progress_is_a_percentage(progress):
    with pytest.raises(ValidationError, match="progress"):
        StepProgressed(**STEP, progress=progress, message="")


def test_a_delay_has_a_known_reason_and_an_aware_retry_time():
    StepDelayed(**STEP, reason="provider_429", retry_at=datetime(2025, 1, 1, tzinfo=UTC))

    with pytest.raises(ValidationError, match="reason"):
        StepDelayed(**STEP, reason="tired", retry_at=datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError, match="retry_at"):
        StepDelayed(**STEP, reason="rate_limited", retry_at=datetime(2025, 1, 1))


def test_a_completed_step_lists_its_assets_by_role():
    output = StepOutput(
        assets=(OutputAsset(asset_id="m", role="model"), OutputAsset(asset_id="p", role="preview"))
    )

    event = StepCompleted(**STEP, output=output)

    assert {a.role: a.asset_id for a in event.output.assets} == {"model": "m", "preview": "p"}
    assert event.output.provider_request_id is None
