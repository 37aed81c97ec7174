"""Users and the rules about them: emails, passwords, roles, the profile a user edits. Pure: no I/O."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from funmagic_identity.domain.errors import (
    InvalidInput,
    LastSuperAdmin,
    NotAllowed,
    PasswordNotSet,
    WeakPassword,
    WrongPassword,
)

__all__ = [
    "NAME_MAX_LENGTH",
    "ROLES",
    "ProfileChange",
    "Role",
    "User",
    "check_password_policy",
    "display_name",
    "normalise_email",
    "password_change_is_allowed",
    "profile_changes",
    "role_change_is_allowed",
    "status_change_is_allowed",
]

Role = Literal["user", "admin", "super_admin"]
ROLES: tuple[Role, ...] = ("user", "admin", "super_admin")

NAME_MAX_LENGTH = 100
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
# The most common passwords of public breach lists that pass the length rule; a real deployment can add a
# breached-password check, this keeps the obvious ones out.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "0123456789",
        "12345678910",
        "qwertyuiop",
        "password123",
        "password1234",
        "passwordpassword",
        "iloveyou123",
        "1q2w3e4r5t",
        "qwerty12345",
        "abcdefghij",
        "letmein1234",
        "welcome1234",
        "administrator",
    }
)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    email: str
    name: str
    # The provider's picture URL of an OAuth sign-up, as the provider gave it.
    image: str | None = None
    # The avatar the user chose: a storage asset id (module `avatar`), preferred over `image` when shown.
    avatar_asset_id: str | None = None
    role: Role = "user"
    email_verified: bool = False
    has_password: bool = False
    disabled: bool = False
    created_at: datetime
    updated_at: datetime


def normalise_email(email: str) -> str:
    """One spelling per mailbox: NFKC, trimmed, lower-cased. Raises InvalidInput (a ValueError) when it is
    not an address."""
    value = unicodedata.normalize("NFKC", email).strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise InvalidInput("not a valid email address")
    return value


def display_name(name: str, email: str) -> str:
    """The name a user goes by: the one given, trimmed, or else their email's local part."""
    return name.strip() or email.split("@", 1)[0]


class ProfileChange(BaseModel):
    """What a user asks to change in their own profile. A field left None stays as it is; `clear_avatar`
    removes the chosen avatar (and `avatar_asset_id` must then be None)."""

    model_config = ConfigDict(frozen=True)

    name: str | None = None
    avatar_asset_id: str | None = None
    clear_avatar: bool = False


def profile_changes(user: User, change: ProfileChange) -> dict[str, str | None]:
    """The columns to update for `change`: only what differs from `user`, the name trimmed and NFKC-folded.

    Rules: a name is 1–100 characters once trimmed, with no control characters (it is shown in the header and
    in mails); an avatar is set or cleared, not both. Which asset may be an avatar (the user's own, of the
    `avatar` upload module) is checked where storage can be asked: the gateway, before it forwards.
    """
    if change.clear_avatar and change.avatar_asset_id is not None:
        raise InvalidInput("set an avatar or clear it, not both", field="avatar_asset_id")
    changes: dict[str, str | None] = {}
    if change.name is not None:
        name = unicodedata.normalize("NFKC", change.name).strip()
        if not name:
            raise InvalidInput("a name cannot be empty", field="name")
        if len(name) > NAME_MAX_LENGTH:
            raise InvalidInput(f"a name has at most {NAME_MAX_LENGTH} characters", field="name")
        if any(unicodedata.category(char) == "Cc" for char in name):
            raise InvalidInput("a name cannot contain control characters", field="name")
        if name != user.name:
            changes["name"] = name
    if change.clear_avatar and user.avatar_asset_id is not None:
        changes["avatar_asset_id"] = None
    if change.avatar_asset_id is not None and change.avatar_asset_id != user.avatar_asset_id:
        changes["avatar_asset_id"] = change.avatar_asset_id
    return changes


def password_change_is_allowed(
    user: User, *, has_password: bool, current_password_matches: bool, new_password: str
) -> None:
    """A signed-in user changes their password only by proving the current one, and only to one that
    passes the policy. An account without a password (OAuth only) sets one through the reset link, which
    proves the mailbox; a session alone is not enough to add a way in."""
    if not has_password:
        raise PasswordNotSet("this account has no password yet; set one with a password reset link")
    if not current_password_matches:
        raise WrongPassword("the current password is wrong", field="current_password")
    check_password_policy(new_password, email=user.email, name=user.name)


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    problems: list[str] = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"use at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"use at most {PASSWORD_MAX_LENGTH} characters")
    if password.strip() != password or not password.strip():
        problems.append("do not start or end with spaces")
    if len(set(password)) < 4:
        problems.append("use more than three different characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        problems.append("this password is too common")
    local_part = email.split("@", 1)[0].lower()
    if (local_part and len(local_part) >= 4 and local_part in lowered) or (
        name and len(name) >= 4 and name.lower() in lowered
    ):
        problems.append("do not use your email or name in the password")
    if problems:
        raise WeakPassword(problems)


def role_change_is_allowed(
    *, actor_id: str, actor_role: Role, target: User, new_role: Role, super_admins: int
) -> None:
    """Only a super_admin grants or removes admin rights; nobody demotes the last super_admin."""
    if actor_role != "super_admin":
        raise NotAllowed("only a super_admin can change roles")
    if target.role == "super_admin" and new_role != "super_admin" and super_admins <= 1:
        raise LastSuperAdmin("the last super_admin cannot be demoted")
    if target.disabled and new_role != "user":
        raise NotAllowed("enable the account before granting a role")
    del actor_id  # a super_admin may demote themselves while another super_admin remains


def status_change_is_allowed(*, actor_id: str, actor_role: Role, target: User) -> None:
    """Admins disable users, only a super_admin disables an admin, nobody a super_admin or themselves."""
    if actor_id == target.id:
        raise NotAllowed("you cannot disable or enable your own account")
    if target.role == "super_admin":
        raise NotAllowed("a super_admin cannot be disabled; demote them first")
    if target.role == "admin" and actor_role != "super_admin":
        raise NotAllowed("only a super_admin can disable or enable an admin")
    if actor_role not in ("admin", "super_admin"):
        raise NotAllowed("only admins can disable or enable accounts")
