"""The identity store on Postgres, and identity's unit of work: the kit's, with the store bound to it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from funmagic_identity.application.ports import OutgoingMail, SessionPage, SessionRecord, UserPage
from funmagic_identity.domain.errors import EmailAlreadyRegistered, InvalidInput
from funmagic_identity.domain.settings import SettingName, StoredSetting
from funmagic_identity.domain.users import Role, User
from funmagic_kit.crypto import SecretBox
from funmagic_kit.db import PostgresUnitOfWork
from funmagic_kit.pagination import decode_cursor, page_of
from funmagic_kit.rows import from_row, to_row

__all__ = ["IdentityUnitOfWork", "PostgresIdentityStore", "PostgresSettingsStore"]

# Held while super_admins are counted for a demotion or a deletion (see `count_super_admins`); distinct from
# the relay's, the migrator's and the signing keys' locks in the same database.
_SUPER_ADMINS_LOCK = 0x73_75_70_65_72  # "super"
_USER_COLUMNS = (
    "id::text, email, name, image, avatar_asset_id::text, role, email_verified, "
    "password_hash IS NOT NULL AS has_password, disabled_at IS NOT NULL AS disabled, created_at, updated_at"
)
_UPDATABLE = {
    "email_verified",
    "role",
    "name",
    "image",
    "avatar_asset_id",
    "disabled_at",
    "disabled_reason",
    "deleted_at",
}
_SESSION_COLUMNS = (
    "id::text, user_id::text, created_at, last_refreshed_at, expires_at, ip_address, user_agent, revoked_at"
)

SELECT_USER_BY_ID = f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s AND deleted_at IS NULL"
SELECT_USER_BY_EMAIL = f"SELECT {_USER_COLUMNS} FROM users WHERE email = %s AND deleted_at IS NULL"
INSERT_USER = """
INSERT INTO users (id, email, name, image, role, email_verified, password_hash, created_at, updated_at)
VALUES (%(id)s, %(email)s, %(name)s, %(image)s, %(role)s, %(email_verified)s, %(password_hash)s,
        %(created_at)s, %(updated_at)s)
"""
# Newest first, by the unique (created_at, id) the cursors carry; a filter given as NULL is not applied.
# The order names the table's columns: a bare `id` would be the text the SELECT makes of it (sorted as text,
# by a sort instead of users_created_at_idx, and only by luck in the uuid order the cursor compares in).
SEARCH_USERS = f"""
SELECT {_USER_COLUMNS} FROM users u
WHERE deleted_at IS NULL
  AND (%(pattern)s::text IS NULL OR email ILIKE %(pattern)s OR name ILIKE %(pattern)s)
  AND (%(role)s::text IS NULL OR role = %(role)s)
  AND (%(after_created)s::timestamptz IS NULL OR (created_at, id) < (%(after_created)s, %(after_id)s::uuid))
ORDER BY u.created_at DESC, u.id DESC LIMIT %(limit)s
"""
INSERT_SESSION = """
INSERT INTO sessions (id, user_id, expires_at, ip_address, user_agent, created_at, last_refreshed_at)
VALUES (%(id)s, %(user_id)s, %(expires_at)s, %(ip_address)s, %(user_agent)s, %(created_at)s,
        %(last_refreshed_at)s)
"""
INSERT_REFRESH_TOKEN = "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (%s, %s, %s)"
SELECT_SESSION_BY_REFRESH = f"""
SELECT {", ".join("s." + c.strip() for c in _SESSION_COLUMNS.split(","))}, r.rotated_at
FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = %s
"""
RETIRE_REFRESH_TOKEN = """
UPDATE refresh_tokens SET rotated_at = %s WHERE token_hash = %s AND session_id = %s AND rotated_at IS NULL
RETURNING 1
"""
REVOKE_SESSION = """
UPDATE sessions SET revoked_at = %s, revoked_reason = %s WHERE id = %s AND revoked_at IS NULL
RETURNING 1
"""
REVOKE_USER_SESSIONS = """
UPDATE sessions SET revoked_at = %s, revoked_reason = %s WHERE user_id = %s AND revoked_at IS NULL
RETURNING id::text
"""
# Every session of the user but the one that asked (a password change keeps its own session signed in).
REVOKE_OTHER_SESSIONS = """
UPDATE sessions SET revoked_at = %s, revoked_reason = %s
WHERE user_id = %s AND id <> %s::uuid AND revoked_at IS NULL
RETURNING id::text
"""
# Newest first, by the unique (created_at, id) the cursors carry (index sessions_user_created_idx). The order
# names the table's columns: a bare `id` would be the text the SELECT makes of it, which no index holds.
SELECT_ACTIVE_SESSIONS = f"""
SELECT {_SESSION_COLUMNS} FROM sessions s
WHERE user_id = %(user_id)s AND revoked_at IS NULL AND expires_at > %(now)s
  AND (%(after_created)s::timestamptz IS NULL
       OR (s.created_at, s.id) < (%(after_created)s, %(after_id)s::uuid))
ORDER BY s.created_at DESC, s.id DESC LIMIT %(limit)s
"""
COUNT_ACTIVE_SESSIONS = """
SELECT count(*) AS n FROM sessions WHERE user_id = %s AND revoked_at IS NULL AND expires_at > %s
"""
SELECT_SETTING = "SELECT name, document, updated_at, updated_by FROM platform_settings WHERE name = %s"
UPSERT_SETTING = """
INSERT INTO platform_settings (name, document, updated_at, updated_by)
VALUES (%(name)s, %(document)s, %(updated_at)s, %(updated_by)s)
ON CONFLICT (name) DO UPDATE
SET document = EXCLUDED.document, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
"""
CONSUME_VERIFICATION = """
UPDATE verifications SET consumed_at = %(now)s
WHERE value = %(value)s AND consumed_at IS NULL AND expires_at > %(now)s AND identifier LIKE %(prefix)s
RETURNING split_part(identifier, ':', 2) AS user_id
"""
UPSERT_ACCOUNT = """
INSERT INTO accounts
    (id, user_id, provider_id, account_id, access_token, refresh_token, created_at, updated_at)
VALUES
    (gen_random_uuid(), %(user_id)s, %(provider)s, %(account_id)s, %(access)s, %(refresh)s, %(now)s, %(now)s)
ON CONFLICT (provider_id, account_id) DO UPDATE
SET access_token = EXCLUDED.access_token,
    refresh_token = COALESCE(EXCLUDED.refresh_token, accounts.refresh_token),
    updated_at = EXCLUDED.updated_at
"""
INSERT_MAIL = """
INSERT INTO outgoing_mail (id, recipient, subject, body, purpose, created_at)
VALUES (gen_random_uuid(), %s, %s, %s, %s, %s)
"""


def _user(row: dict[str, Any]) -> User:
    return User(**row)


def _like_literal(text: str) -> str:
    """`text` matched literally by LIKE: its backslashes, % and _ escaped (backslash is LIKE's escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _session(row: dict[str, Any]) -> SessionRecord:
    return from_row(SessionRecord, row)


class PostgresIdentityStore:
    def __init__(self, conn: psycopg.AsyncConnection, secrets: SecretBox) -> None:
        self._conn = conn
        self._secrets = secrets

    async def _one(self, sql: str, params: Any) -> dict[str, Any] | None:
        cursor = await self._conn.execute(sql, params)
        return await cursor.fetchone()

    async def add_user(self, user: User, password_hash: str | None) -> None:
        try:
            await self._conn.execute(INSERT_USER, {**user.model_dump(), "password_hash": password_hash})
        except psycopg.errors.UniqueViolation as error:
            # Two sign-ups for one address raced past the lookup; the index decides, the loser hears why.
            raise EmailAlreadyRegistered("an account with this email already exists") from error

    async def user_by_id(self, user_id: str, *, for_update: bool = False) -> User | None:
        try:
            row = await self._one(SELECT_USER_BY_ID + (" FOR UPDATE" if for_update else ""), (user_id,))
        except psycopg.errors.InvalidTextRepresentation:
            raise InvalidInput("not a user id") from None
        return _user(row) if row else None

    async def user_by_email(self, email: str, *, for_update: bool = False) -> User | None:
        row = await self._one(SELECT_USER_BY_EMAIL + (" FOR UPDATE" if for_update else ""), (email,))
        return _user(row) if row else None

    async def password_hash(self, user_id: str) -> str | None:
        row = await self._one("SELECT password_hash FROM users WHERE id = %s", (user_id,))
        return row["password_hash"] if row else None

    async def set_password_hash(self, user_id: str, password_hash: str | None, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = %s WHERE id = %s",
            (password_hash, now, user_id),
        )

    async def update_user(self, user_id: str, now: datetime, **changes: Any) -> User:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        assignments = ", ".join(f"{column} = %({column})s" for column in changes)
        row = await self._one(
            f"UPDATE users SET {assignments}, updated_at = %(now)s WHERE id = %(id)s "
            f"RETURNING {_USER_COLUMNS}",
            {**changes, "now": now, "id": user_id},
        )
        if row is None:
            raise LookupError(f"user {user_id} vanished")
        return _user(row)

    async def count_super_admins(self) -> int:
        """Counted under a lock held to the transaction's end: two super_admins demoting (or deleting)
        each other at once are decided one after the other, the second counting the first's change.
        Its own statement first: the count's snapshot must be taken after the wait."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SUPER_ADMINS_LOCK,))
        row = await self._one(
            "SELECT count(*) AS n FROM users WHERE role = 'super_admin' AND deleted_at IS NULL", ()
        )
        return int(row["n"]) if row else 0

    async def search_users(
        self, *, query: str | None, role: Role | None, limit: int, cursor: str | None
    ) -> UserPage:
        after_created, after_id = decode_cursor(cursor, datetime, uuid.UUID) if cursor else (None, None)
        rows = await self._conn.execute(
            SEARCH_USERS,
            {
                "pattern": f"%{_like_literal(query)}%" if query else None,
                "role": role,
                "after_created": after_created,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        users, next_cursor = page_of(
            [_user(row) for row in await rows.fetchall()], limit, key=lambda u: (u.created_at, u.id)
        )
        return UserPage(users=users, next_cursor=next_cursor)

    async def add_session(self, session: SessionRecord, refresh_token_hash: bytes) -> None:
        await self._conn.execute(INSERT_SESSION, to_row(session))
        await self._conn.execute(INSERT_REFRESH_TOKEN, (refresh_token_hash, session.id, session.created_at))

    async def session(self, session_id: str, *, for_update: bool = False) -> SessionRecord | None:
        try:
            row = await self._one(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = %s"
                + (" FOR UPDATE" if for_update else ""),
                (session_id,),
            )
        except psycopg.errors.InvalidTextRepresentation:
            return None
        return _session(row) if row else None

    async def session_by_refresh_hash(
        self, token_hash: bytes
    ) -> tuple[SessionRecord, datetime | None] | None:
        row = await self._one(SELECT_SESSION_BY_REFRESH, (token_hash,))
        return (_session(row), row["rotated_at"]) if row else None

    async def rotate_refresh_token(
        self, session_id: str, old_hash: bytes, new_hash: bytes, now: datetime
    ) -> bool:
        cursor = await self._conn.execute(RETIRE_REFRESH_TOKEN, (now, old_hash, session_id))
        if await cursor.fetchone() is None:
            return False
        await self._conn.execute(INSERT_REFRESH_TOKEN, (new_hash, session_id, now))
        await self._conn.execute(
            "UPDATE sessions SET last_refreshed_at = %s WHERE id = %s", (now, session_id)
        )
        return True

    async def revoke_session(self, session_id: str, reason: str, now: datetime) -> bool:
        cursor = await self._conn.execute(REVOKE_SESSION, (now, reason, session_id))
        return await cursor.fetchone() is not None

    async def revoke_user_sessions(self, user_id: str, reason: str, now: datetime) -> list[str]:
        cursor = await self._conn.execute(REVOKE_USER_SESSIONS, (now, reason, user_id))
        return [row["id"] for row in await cursor.fetchall()]

    async def revoke_other_sessions(
        self, user_id: str, keep_session_id: str, reason: str, now: datetime
    ) -> list[str]:
        cursor = await self._conn.execute(REVOKE_OTHER_SESSIONS, (now, reason, user_id, keep_session_id))
        return [row["id"] for row in await cursor.fetchall()]

    async def sessions_of(
        self, user_id: str, now: datetime, *, limit: int, cursor: str | None
    ) -> SessionPage:
        after_created, after_id = decode_cursor(cursor, datetime, uuid.UUID) if cursor else (None, None)
        rows = await self._conn.execute(
            SELECT_ACTIVE_SESSIONS,
            {
                "user_id": user_id,
                "now": now,
                "after_created": after_created,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        sessions, next_cursor = page_of(
            [_session(row) for row in await rows.fetchall()], limit, key=lambda s: (s.created_at, s.id)
        )
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    async def count_active_sessions(self, user_id: str, now: datetime) -> int:
        row = await self._one(COUNT_ACTIVE_SESSIONS, (user_id, now))
        return int(row["n"]) if row else 0

    async def add_verification(
        self, identifier: str, token_hash: bytes, expires_at: datetime, now: datetime
    ) -> None:
        await self._conn.execute(
            "INSERT INTO verifications (id, identifier, value, expires_at, created_at) "
            "VALUES (gen_random_uuid(), %s, %s, %s, %s)",
            (identifier, token_hash, expires_at, now),
        )

    async def consume_verification(self, token_hash: bytes, purpose: str, now: datetime) -> str | None:
        row = await self._one(
            CONSUME_VERIFICATION, {"now": now, "value": token_hash, "prefix": f"{purpose}:%"}
        )
        return row["user_id"] if row else None

    async def drop_verifications(self, identifier: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE verifications SET consumed_at = %s WHERE identifier = %s AND consumed_at IS NULL",
            (now, identifier),
        )

    async def account_user(self, provider: str, account_id: str) -> str | None:
        row = await self._one(
            "SELECT a.user_id::text AS user_id FROM accounts a JOIN users u ON u.id = a.user_id "
            "WHERE a.provider_id = %s AND a.account_id = %s AND u.deleted_at IS NULL",
            (provider, account_id),
        )
        return row["user_id"] if row else None

    async def link_account(
        self,
        user_id: str,
        provider: str,
        account_id: str,
        access_token: str,
        refresh_token: str | None,
        now: datetime,
    ) -> None:
        purpose = f"oauth:{provider}"
        await self._conn.execute(
            UPSERT_ACCOUNT,
            {
                "user_id": user_id,
                "provider": provider,
                "account_id": account_id,
                "access": self._secrets.encrypt(access_token.encode(), purpose=purpose + ":access"),
                "refresh": (
                    self._secrets.encrypt(refresh_token.encode(), purpose=purpose + ":refresh")
                    if refresh_token
                    else None
                ),
                "now": now,
            },
        )

    async def queue_mail(self, mail: OutgoingMail, now: datetime) -> None:
        body = self._secrets.encrypt(mail.body.encode(), purpose="mail-body")
        await self._conn.execute(INSERT_MAIL, (mail.recipient, mail.subject, body, mail.purpose, now))


class PostgresSettingsStore:
    """The platform settings identity keeps for other services, one `platform_settings` row per name."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def setting(self, name: SettingName) -> StoredSetting | None:
        cursor = await self._conn.execute(SELECT_SETTING, (name,))
        row = await cursor.fetchone()
        return from_row(StoredSetting, row) if row else None

    async def save_setting(self, setting: StoredSetting) -> None:
        await self._conn.execute(UPSERT_SETTING, to_row(setting, document=Jsonb(setting.document)))


class IdentityUnitOfWork(PostgresUnitOfWork):
    """One transaction with the identity stores bound to it. The kit's unit of work commits or rolls back,
    and writes what `publish` collected to the outbox just before the commit."""

    store: PostgresIdentityStore
    settings: PostgresSettingsStore

    def __init__(self, pool: AsyncConnectionPool, secrets: SecretBox) -> None:
        super().__init__(pool)
        self._secrets = secrets

    def bind(self, conn: psycopg.AsyncConnection) -> None:
        self.store = PostgresIdentityStore(conn, self._secrets)
        self.settings = PostgresSettingsStore(conn)
