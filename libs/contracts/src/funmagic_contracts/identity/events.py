"""Integration events of the identity service. Topic ``identity.events``; subject (Kafka key) = user_id."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from funmagic_contracts.base import Id, IntegrationEvent, UtcDatetime
from funmagic_contracts.topics import IDENTITY_EVENTS

__all__ = [
    "RegistrationMethod",
    "Role",
    "UserDeleted",
    "UserDisabled",
    "UserEmailVerified",
    "UserEnabled",
    "UserRegistered",
    "UserRoleChanged",
]

Role = Literal["user", "admin", "super_admin"]
RegistrationMethod = Literal["email", "google", "github"]


class _IdentityEvent(IntegrationEvent):
    TOPIC: ClassVar[str] = IDENTITY_EVENTS.name
    SUBJECT_FIELD: ClassVar[str] = "user_id"
    EVENT_VERSION: ClassVar[int] = 1


class UserRegistered(_IdentityEvent):
    """A new account exists (credits grants the sign-up bonus on it)."""

    EVENT_TYPE: ClassVar[str] = "UserRegistered"

    user_id: Id
    email: str = Field(min_length=3)
    name: str
    method: RegistrationMethod
    registered_at: UtcDatetime


class UserEmailVerified(_IdentityEvent):
    """The user proved they own ``email``."""

    EVENT_TYPE: ClassVar[str] = "UserEmailVerified"

    user_id: Id
    email: str = Field(min_length=3)


class UserRoleChanged(_IdentityEvent):
    """An admin changed the user's role."""

    EVENT_TYPE: ClassVar[str] = "UserRoleChanged"

    user_id: Id
    old_role: Role
    new_role: Role
    changed_by: Id = Field(description="User id of the admin who made the change.")


class UserDisabled(_IdentityEvent):
    """The account can no longer sign in; its sessions are revoked."""

    EVENT_TYPE: ClassVar[str] = "UserDisabled"

    user_id: Id
    by: Id = Field(description="User id of the admin who disabled the account.")
    reason: str


class UserEnabled(_IdentityEvent):
    """A disabled account can sign in again."""

    EVENT_TYPE: ClassVar[str] = "UserEnabled"

    user_id: Id
    by: Id = Field(description="User id of the admin who enabled the account.")
    reason: str


class UserDeleted(_IdentityEvent):
    """The account is gone; other services forget or anonymise what they hold for it."""

    EVENT_TYPE: ClassVar[str] = "UserDeleted"

    user_id: Id
