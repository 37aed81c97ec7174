"""One realistic example of every event, for the AsyncAPI document, docs and tests (fixed ids and times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from funmagic_contracts.base import IntegrationEvent, OutputAsset
from funmagic_contracts.credits.events import (
    CreditsAdjusted,
    CreditsGranted,
    CreditsPurchased,
    CreditsReleased,
    CreditsReservationRejected,
    CreditsReserved,
    CreditsSpent,
)
from funmagic_contracts.envelope import Envelope
from funmagic_contracts.identity.events import (
    UserDeleted,
    UserDisabled,
    UserEmailVerified,
    UserEnabled,
    UserRegistered,
    UserRoleChanged,
)
from funmagic_contracts.providers.events import (
    ProviderHealthChanged,
    StepCompleted,
    StepDelayed,
    StepFailed,
    StepOutput,
    StepProgressed,
    StepStarted,
)
from funmagic_contracts.registry import EventKey
from funmagic_contracts.storage.events import AssetCreated, AssetDeleted, AssetPublished, AssetUnpublished
from funmagic_contracts.tasks.events import (
    BannerChanged,
    StepInput,
    StepOutputDiscarded,
    StepRequested,
    StudioChatDeleted,
    StudioReplyCancelled,
    StudioReplyCompleted,
    StudioReplyFailed,
    StudioUsage,
    TaskCancelled,
    TaskCancelRequested,
    TaskCompleted,
    TaskDeleted,
    TaskFailed,
    TaskOutput,
    TaskRequested,
    TaskStarted,
    ToolChanged,
    ToolTypeChanged,
)

__all__ = ["EXAMPLES", "example_envelope"]

AT = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
USER = "0194690a-7c00-7000-8000-00000000a001"
ADMIN = "0194690a-7c00-7000-8000-00000000a0ad"
TASK = "0194690a-7c00-7000-8000-00000000b001"
PARENT_TASK = "0194690a-7c00-7000-8000-00000000b000"
TOOL = "0194690a-7c00-7000-8000-00000000c001"
TOOL_TYPE = "0194690a-7c00-7000-8000-00000000c101"
ASSET = "0194690a-7c00-7000-8000-00000000d001"
SOURCE_ASSET = "0194690a-7c00-7000-8000-00000000d000"
PREVIEW_ASSET = "0194690a-7c00-7000-8000-00000000d002"
PROVIDER = "0194690a-7c00-7000-8000-00000000e001"
CHAT = "0194690a-7c00-7000-8000-00000000a100"
MESSAGE = "0194690a-7c00-7000-8000-00000000a101"

_EXAMPLES: tuple[IntegrationEvent, ...] = (
    UserRegistered(
        user_id=USER, email="ada@example.com", name="Ada Lovelace", method="email", registered_at=AT
    ),
    UserEmailVerified(user_id=USER, email="ada@example.com"),
    UserRoleChanged(user_id=USER, old_role="user", new_role="admin", changed_by=ADMIN),
    UserDisabled(user_id=USER, by=ADMIN, reason="chargeback"),
    UserEnabled(user_id=USER, by=ADMIN, reason="resolved"),
    UserDeleted(user_id=USER),
    TaskRequested(
        task_id=TASK,
        user_id=USER,
        tool_id=TOOL,
        tool_slug="figme",
        step_ids=("3d-gen",),
        price=30,
        parent_task_id=PARENT_TASK,
        idempotency_key="b7e4c1f0-2f0a-4d59-9d4e-0c8f1a2b3c4d",
    ),
    TaskStarted(task_id=TASK, user_id=USER, reservation_id=TASK),
    StepRequested(
        task_id=TASK,
        user_id=USER,
        step_id="3d-gen",
        step_type="3d-gen",
        provider="tripo",
        model="v3.0-20250812",
        scope="web",
        input=StepInput(asset_ids=(SOURCE_ASSET,), options={"pbr": True}),
        attempt=1,
        deadline_at=AT + timedelta(minutes=10),
    ),
    TaskCancelRequested(task_id=TASK, user_id=USER, by=USER),
    TaskCompleted(
        task_id=TASK,
        user_id=USER,
        output=TaskOutput(
            assets=(
                OutputAsset(asset_id=ASSET, role="model"),
                OutputAsset(asset_id=PREVIEW_ASSET, role="preview"),
            )
        ),
        charged_credits=30,
    ),
    TaskFailed(
        task_id=TASK,
        user_id=USER,
        error_code="provider_error",
        error_message="The provider could not process the image.",
        charged_credits=0,
    ),
    TaskCancelled(task_id=TASK, user_id=USER, charged_credits=0),
    TaskDeleted(task_id=PARENT_TASK, user_id=USER, deleted_task_ids=(PARENT_TASK, TASK), by=USER),
    StepOutputDiscarded(task_id=TASK, user_id=USER, step_id="image-gen", attempt=1, asset_ids=(ASSET,)),
    StudioReplyCompleted(
        message_id=MESSAGE,
        chat_id=CHAT,
        admin_id=ADMIN,
        content="Here is a watercolour fox.",
        images=(OutputAsset(asset_id=ASSET, role="image"),),
        response_id="resp_67ccd2bed1ec8190b14f964abc054267",
        usage=StudioUsage(input_tokens=36, output_tokens=87, total_tokens=123),
    ),
    StudioReplyFailed(
        message_id=MESSAGE,
        chat_id=CHAT,
        admin_id=ADMIN,
        error_code="content_policy",
        error_message="OpenAI's safety system refused the request.",
    ),
    StudioReplyCancelled(message_id=MESSAGE, chat_id=CHAT, admin_id=ADMIN, by=ADMIN),
    StudioChatDeleted(chat_id=CHAT, admin_id=ADMIN, message_ids=(MESSAGE,), by=ADMIN),
    ToolChanged(tool_id=TOOL, slug="figme", action="updated"),
    ToolTypeChanged(tool_type_id=TOOL_TYPE, name="image", change="created", is_active=True),
    BannerChanged(banner_id="0194690a-7c00-7000-8000-00000000f001", action="created"),
    CreditsGranted(
        user_id=USER, amount=50, reason="signup_bonus", reference_id="signup:" + USER, balance_after=50
    ),
    CreditsPurchased(
        user_id=USER,
        amount=550,
        package_id="0194690a-7c00-7000-8000-000000001001",
        payment_reference="cs_test_a1b2c3",
        price_minor=999,
        currency="USD",
        balance_after=600,
    ),
    CreditsReserved(user_id=USER, reservation_id=TASK, amount=30, balance_after=570, reserved_after=30),
    CreditsReservationRejected(user_id=USER, reservation_id=TASK, amount=30, reason="insufficient_credits"),
    CreditsSpent(user_id=USER, reservation_id=TASK, amount=30, balance_after=570, reserved_after=0),
    CreditsReleased(user_id=USER, reservation_id=TASK, amount=0, balance_after=570, reserved_after=0),
    CreditsAdjusted(user_id=USER, amount=-20, admin_id=ADMIN, reason="duplicate grant", balance_after=550),
    AssetCreated(
        asset_id=ASSET,
        user_id=USER,
        bucket="funmagic-private",
        storage_key=f"{USER}/figme/1736942400000_model.glb",
        visibility="private",
        module="figme",
        mime_type="model/gltf-binary",
        size=2_480_133,
        task_id=TASK,
    ),
    AssetPublished(
        asset_id=ASSET,
        user_id=USER,
        public_key=f"shared/{USER}/{ASSET}/model.glb",
        cdn_url=f"https://cdn.example.com/shared/{USER}/{ASSET}/model.glb",
    ),
    AssetUnpublished(asset_id=ASSET, user_id=USER),
    AssetDeleted(asset_id=ASSET, user_id=USER),
    StepStarted(task_id=TASK, user_id=USER, step_id="3d-gen", provider="tripo", attempt=1),
    StepProgressed(task_id=TASK, user_id=USER, step_id="3d-gen", attempt=1, progress=40, message="Modelling"),
    StepDelayed(
        task_id=TASK,
        user_id=USER,
        step_id="3d-gen",
        attempt=1,
        reason="rate_limited",
        retry_at=AT + timedelta(seconds=2),
    ),
    StepCompleted(
        task_id=TASK,
        user_id=USER,
        step_id="3d-gen",
        attempt=1,
        output=StepOutput(
            assets=(
                OutputAsset(asset_id=ASSET, role="model"),
                OutputAsset(asset_id=PREVIEW_ASSET, role="preview"),
            ),
            provider_request_id="tripo-task-42",
            metadata={"face_count": 20000},
        ),
    ),
    StepFailed(
        task_id=TASK,
        user_id=USER,
        step_id="3d-gen",
        attempt=1,
        error_code="provider_timeout",
        error_message="No result within 10 minutes.",
        retryable=True,
    ),
    ProviderHealthChanged(provider_id=PROVIDER, name="tripo", scope="web", is_healthy=False, checked_at=AT),
)

EXAMPLES: dict[EventKey, IntegrationEvent] = {(e.EVENT_TYPE, e.EVENT_VERSION): e for e in _EXAMPLES}
"""One example instance per ``(type, version)``."""


def example_envelope(event: IntegrationEvent) -> Envelope:
    """The event in an envelope with a fixed id and time, so exported documents are stable."""
    return Envelope.wrap(
        event,
        id=UUID("0194690a-7c00-7000-8000-000000000001"),
        time=AT,
        correlation_id="0194690a-7c00-7000-8000-000000000000",
    )
