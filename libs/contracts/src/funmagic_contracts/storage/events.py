"""Integration events of the storage service. Topic ``storage.events``; subject (Kafka key) = ``user_id``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from funmagic_contracts.base import Id, IntegrationEvent
from funmagic_contracts.topics import STORAGE_EVENTS

__all__ = [
    "AssetCreated",
    "AssetDeleted",
    "AssetPublished",
    "AssetUnpublished",
    "Visibility",
]

Visibility = Literal["public", "private", "admin-private"]


class _StorageEvent(IntegrationEvent):
    TOPIC: ClassVar[str] = STORAGE_EVENTS.name
    SUBJECT_FIELD: ClassVar[str] = "user_id"
    EVENT_VERSION: ClassVar[int] = 1


class AssetCreated(_StorageEvent):
    """A stored object was confirmed and registered as an asset of ``user_id``."""

    EVENT_TYPE: ClassVar[str] = "AssetCreated"

    asset_id: Id
    user_id: Id
    bucket: str = Field(min_length=1)
    storage_key: str = Field(min_length=1)
    visibility: Visibility
    module: str = Field(
        min_length=1, description='The feature the asset belongs to, e.g. "figme", "uploads".'
    )
    mime_type: str = Field(min_length=1)
    size: int = Field(ge=0, description="Size in bytes.")
    task_id: Id | None = Field(default=None, description="The task that produced the asset, if any.")


class AssetPublished(_StorageEvent):
    """A public copy of the asset exists at ``cdn_url``."""

    EVENT_TYPE: ClassVar[str] = "AssetPublished"

    asset_id: Id
    user_id: Id
    public_key: str = Field(min_length=1, description="Storage key of the public copy.")
    cdn_url: str = Field(min_length=1)


class AssetUnpublished(_StorageEvent):
    """The public copy of the asset was removed."""

    EVENT_TYPE: ClassVar[str] = "AssetUnpublished"

    asset_id: Id
    user_id: Id


class AssetDeleted(_StorageEvent):
    """The asset was deleted."""

    EVENT_TYPE: ClassVar[str] = "AssetDeleted"

    asset_id: Id
    user_id: Id
