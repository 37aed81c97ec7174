"""Mail: queued in `outgoing_mail` by the handlers' units of work, delivered here.

`sink` mode (development, tests) keeps every message in the table, readable through the dev mailbox.
`smtp` mode delivers queued messages with retries and then erases the body, which carries single-use
links that should not outlive their delivery.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from psycopg_pool import AsyncConnectionPool

from funmagic_kit.crypto import SecretBox

__all__ = ["DevMailbox", "SmtpDispatcher", "SmtpSettings"]

log = logging.getLogger(__name__)

_PURPOSE = "mail-body"
MAX_ATTEMPTS = 10


class DevMailbox:
    """Reads the messages the sink kept, newest first."""

    def __init__(self, pool: AsyncConnectionPool, secrets: SecretBox) -> None:
        self._pool = pool
        self._secrets = secrets

    async def messages_to(self, recipient: str, limit: int = 20) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id::text, recipient, subject, body, purpose, created_at FROM outgoing_mail "
                "WHERE recipient = %s ORDER BY created_at DESC LIMIT %s",
                (recipient, limit),
            )
            rows = await cursor.fetchall()
        return [
            {
                "id": row["id"],
                "to": row["recipient"],
                "subject": row["subject"],
                "purpose": row["purpose"],
                "created_at": row["created_at"].isoformat(),
                "body": self._secrets.decrypt(bytes(row["body"]), purpose=_PURPOSE).decode()
                if row["body"] is not None
                else None,
            }
            for row in rows
        ]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    sender: str


class SmtpDispatcher:
    """Delivers unsent mail, oldest first, one row lock per message (run it with `Periodic`)."""

    def __init__(self, pool: AsyncConnectionPool, secrets: SecretBox, smtp: SmtpSettings) -> None:
        self._pool = pool
        self._secrets = secrets
        self._smtp = smtp

    async def deliver_pending(self) -> int:
        delivered = 0
        while await self.deliver_one():
            delivered += 1
        return delivered

    async def deliver_one(self) -> bool:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT id, recipient, subject, body, attempts FROM outgoing_mail "
                "WHERE sent_at IS NULL AND attempts < %s ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                (MAX_ATTEMPTS,),
            )
            row = await cursor.fetchone()
            if row is None:
                return False
            body = self._secrets.decrypt(bytes(row["body"]), purpose=_PURPOSE).decode()
            try:
                await asyncio.to_thread(self._send, row["recipient"], row["subject"], body)
            except (OSError, smtplib.SMTPException) as error:
                await conn.execute(
                    "UPDATE outgoing_mail SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                    (f"{type(error).__name__}: {error}"[:300], row["id"]),
                )
                return False
            await conn.execute(
                "UPDATE outgoing_mail SET sent_at = now(), body = NULL, attempts = attempts + 1 "
                "WHERE id = %s",
                (row["id"],),
            )
            return True

    def _send(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self._smtp.host, self._smtp.port, timeout=15) as client:
            if self._smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if self._smtp.username:
                client.login(self._smtp.username, self._smtp.password)
            client.send_message(message)
