"""What the identity handlers need from the outside world, as Protocols: the store a transaction binds,
the transaction itself, hashing, tokens, revocations and OAuth. The adapters layer provides the concrete
classes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from funmagic_identity.domain.settings import SettingName, StoredSetting
from funmagic_identity.domain.users import Role, User
from funmagic_kit.ports import UnitOfWork

__all__ = [
    "AccessTokenIssuer",
    "IdentityStore",
    "IdentityUnitOfWork",
    "OAuthGateway",
    "OAuthProfile",
    "OAuthStates",
    "OutgoingMail",
    "PasswordHasher",
    "Revocations",
    "SessionPage",
    "SessionRecord",
    "SettingsStore",
    "SignInGuard",
    "UnitOfWorkFactory",
    "UserPage",
]


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    async def burn(self, password: str) -> None:
        """Spend the same time as a verification, so an unknown email answers as slowly as a known one."""


class AccessTokenIssuer(Protocol):
    ttl_seconds: int

    def issue(self, user: User, session_id: str, now: datetime) -> str: ...


class SignInGuard(Protocol):
    """Counts wrong passwords per account, so a distributed guesser is slowed down too."""

    async def retry_after(self, email: str) -> int | None:
        """Seconds until the account may be tried again, or None when it may be tried now."""

    async def failed(self, email: str) -> None: ...

    async def succeeded(self, email: str) -> None: ...


class Revocations(Protocol):
    """Tells every gateway replica at once that tokens stopped being valid."""

    async def session_revoked(self, user_id: str, session_id: str) -> None: ...

    async def tokens_invalid_before(self, user_id: str, moment: datetime) -> None: ...


@dataclass(frozen=True)
class OAuthProfile:
    provider: str
    account_id: str
    email: str | None
    email_verified: bool
    name: str
    image: str | None
    access_token: str
    refresh_token: str | None


class OAuthGateway(Protocol):
    def provider_names(self) -> Sequence[str]: ...

    def authorization_url(self, provider: str, *, state: str, code_challenge: str) -> str: ...

    async def fetch_profile(self, provider: str, *, code: str, code_verifier: str) -> OAuthProfile: ...


class OAuthStates(Protocol):
    """Where a started OAuth flow waits for its callback: single-use and short-lived."""

    async def put(self, state: str, value: dict[str, str | None], ttl_seconds: int) -> None: ...

    async def take(self, state: str) -> dict[str, str | None] | None: ...


@dataclass(frozen=True)
class SessionRecord:
    id: str
    user_id: str
    created_at: datetime
    last_refreshed_at: datetime
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class OutgoingMail:
    recipient: str
    subject: str
    body: str
    purpose: str


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    next_cursor: str | None


@dataclass(frozen=True)
class SessionPage:
    sessions: list[SessionRecord]
    next_cursor: str | None


class IdentityStore(Protocol):
    async def add_user(self, user: User, password_hash: str | None) -> None: ...
    async def user_by_id(self, user_id: str, *, for_update: bool = False) -> User | None: ...
    async def user_by_email(self, email: str, *, for_update: bool = False) -> User | None: ...
    async def password_hash(self, user_id: str) -> str | None: ...
    async def set_password_hash(self, user_id: str, password_hash: str | None, now: datetime) -> None: ...
    async def update_user(self, user_id: str, now: datetime, **changes: Any) -> User: ...
    async def count_super_admins(self) -> int: ...
    async def search_users(
        self, *, query: str | None, role: Role | None, limit: int, cursor: str | None
    ) -> UserPage:
        """Newest first; `cursor` is a page's `next_cursor` (another is refused: the kit's InvalidCursor)."""

    async def add_session(self, session: SessionRecord, refresh_token_hash: bytes) -> None: ...
    async def session(self, session_id: str, *, for_update: bool = False) -> SessionRecord | None: ...
    async def session_by_refresh_hash(
        self, token_hash: bytes
    ) -> tuple[SessionRecord, datetime | None] | None:
        """The session a refresh token belongs to, and when that token was rotated (None: not yet)."""

    async def rotate_refresh_token(
        self, session_id: str, old_hash: bytes, new_hash: bytes, now: datetime
    ) -> bool:
        """Retires `old_hash` and adds `new_hash`; False when `old_hash` was no longer current."""

    async def revoke_session(self, session_id: str, reason: str, now: datetime) -> bool: ...
    async def revoke_user_sessions(self, user_id: str, reason: str, now: datetime) -> list[str]: ...
    async def revoke_other_sessions(
        self, user_id: str, keep_session_id: str, reason: str, now: datetime
    ) -> list[str]:
        """Revokes every live session of the user except `keep_session_id`; answers the revoked ids."""

    async def sessions_of(
        self, user_id: str, now: datetime, *, limit: int, cursor: str | None
    ) -> SessionPage:
        """The user's sessions neither revoked nor expired at `now`, newest first; `cursor` is a page's
        `next_cursor` (another is refused: the kit's InvalidCursor)."""

    async def count_active_sessions(self, user_id: str, now: datetime) -> int:
        """Sessions of the user neither revoked nor expired at `now`."""

    async def add_verification(
        self, identifier: str, token_hash: bytes, expires_at: datetime, now: datetime
    ) -> None: ...
    async def consume_verification(self, token_hash: bytes, purpose: str, now: datetime) -> str | None:
        """Marks the token used and returns its user id; None when unknown, used, expired or not `purpose`."""

    async def drop_verifications(self, identifier: str, now: datetime) -> None: ...

    async def account_user(self, provider: str, account_id: str) -> str | None: ...
    async def link_account(
        self,
        user_id: str,
        provider: str,
        account_id: str,
        access_token: str,
        refresh_token: str | None,
        now: datetime,
    ) -> None: ...

    async def queue_mail(self, mail: OutgoingMail, now: datetime) -> None: ...


class SettingsStore(Protocol):
    """The platform settings identity keeps for other services (one row per name)."""

    async def setting(self, name: SettingName) -> StoredSetting | None: ...
    async def save_setting(self, setting: StoredSetting) -> None:
        """Stores the setting whole, in place of what was stored under its name."""


class IdentityUnitOfWork(UnitOfWork, Protocol):
    """One transaction over the identity store; `publish` puts events in the outbox with it."""

    store: IdentityStore
    settings: SettingsStore


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> IdentityUnitOfWork: ...
